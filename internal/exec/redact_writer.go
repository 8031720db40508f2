package exec

import (
	"bytes"
	"io"
	"sync"
)

// maxLine is how much of a line without an end RedactingWriter buffers
// before it writes part of it anyway.
const maxLine = 32 << 10

// RedactingWriter passes text through a Redactor on its way to another
// writer. It buffers up to the end of each line, so that neither a secret
// nor a URL split across two Writes escapes; a line longer than 32 KiB is
// written in pieces, holding back enough bytes that no registered secret is
// split. Call Close (or Flush) to write what is still buffered. It is safe
// for concurrent use.
type RedactingWriter struct {
	mu  sync.Mutex
	w   io.Writer
	r   *Redactor
	buf []byte
}

var _ io.WriteCloser = (*RedactingWriter)(nil)

// NewRedactingWriter returns a writer that redacts with r (nil: URL
// credentials and queries only) and writes to w.
func NewRedactingWriter(w io.Writer, r *Redactor) *RedactingWriter {
	return &RedactingWriter{w: w, r: r}
}

// Write buffers p and writes every complete line, redacted. It reports
// len(p) unless the underlying writer fails.
func (w *RedactingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	// A secret never holds a line end, so a cut after one splits none.
	cut := bytes.LastIndexAny(w.buf, "\n\r") + 1
	if len(w.buf)-cut > maxLine {
		cut = w.safeCut(len(w.buf) - max(w.r.longest()-1, 0))
	}
	if err := w.emit(cut); err != nil {
		return 0, err
	}
	return len(p), nil
}

// safeCut returns the largest position at or before cut that lies inside
// no occurrence of a secret. Everything after the first cut may be the
// start of a secret that the next Write completes, so it stays buffered; an
// occurrence that straddles the cut is complete, and the cut moves before it.
func (w *RedactingWriter) safeCut(cut int) int {
	// Prefer a cut at a blank near it, so that a URL is not split from
	// its query.
	if i := bytes.LastIndexAny(w.buf[:cut], " \t"); i >= 0 && cut-i <= 4<<10 {
		cut = i + 1
	}
	if w.r == nil {
		return cut
	}
	w.r.mu.RLock()
	defer w.r.mu.RUnlock()
	for moved := true; moved && cut > 0; {
		moved = false
		for _, p := range w.r.patterns {
			lo := max(cut-len(p)+1, 0)
			hi := min(cut+len(p)-1, len(w.buf))
			if i := bytes.Index(w.buf[lo:hi], []byte(p)); i >= 0 {
				cut, moved = lo+i, true
			}
		}
	}
	return cut
}

// emit writes buf[:n] redacted and keeps the rest.
func (w *RedactingWriter) emit(n int) error {
	if n <= 0 {
		return nil
	}
	s := w.r.String(string(w.buf[:n]))
	w.buf = append(w.buf[:0], w.buf[n:]...)
	_, err := io.WriteString(w.w, s)
	return err
}

// Flush writes everything buffered, redacted, even an unfinished line.
func (w *RedactingWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.emit(len(w.buf))
}

// Close flushes. It does not close the underlying writer, which belongs to
// the caller.
func (w *RedactingWriter) Close() error { return w.Flush() }
