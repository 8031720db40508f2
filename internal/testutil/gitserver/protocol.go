package gitserver

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// peekUploadPackCommand reads the body of a POST to git-upload-pack and
// returns its counter key: the protocol v2 command ("ls-refs", "fetch",
// ...) or Fetch for v0/v1, whose upload-pack requests are always
// negotiations. The body is put back, with an explicit length, for
// http-backend to read.
//
// Reading the whole body is fine: upload-pack requests carry wants and
// haves, not objects, so they stay small even for a large repository.
func peekUploadPackCommand(r *http.Request) (string, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", fmt.Errorf("read upload-pack request: %w", err)
	}
	_ = r.Body.Close()
	// A chunked request reaches CGI without CONTENT_LENGTH; now that the
	// length is known, pass it so http-backend need not read to EOF.
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))

	plain := body
	// git gzips request bodies over 1 KiB (remote-curl.c).
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("gunzip upload-pack request: %w", err)
		}
		// The first pkt-line is all we need; a short read is enough.
		plain, err = io.ReadAll(io.LimitReader(zr, 4096))
		if err != nil && err != io.ErrUnexpectedEOF {
			return "", fmt.Errorf("gunzip upload-pack request: %w", err)
		}
	}
	line, ok := firstPktLine(plain)
	if ok {
		if cmd, found := strings.CutPrefix(line, "command="); found {
			return cmd, nil
		}
	}
	return Fetch, nil
}

// firstPktLine decodes the first pkt-line of b without its trailing
// newline. A flush or malformed packet yields ok == false.
func firstPktLine(b []byte) (string, bool) {
	if len(b) < 4 {
		return "", false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil || n < 4 || int(n) > len(b) {
		return "", false
	}
	return strings.TrimSuffix(string(b[4:n]), "\n"), true
}

// spoolChunked gives a request with a chunked body an explicit length by
// copying the body to a temp file in dir, because net/http/cgi refuses
// chunked bodies with 400 and git sends every push over http.postBuffer
// (1 MiB) chunked. A file, not memory: a benchmark push can be large.
// The returned cleanup removes the file.
func spoolChunked(r *http.Request, dir string) (cleanup func(), err error) {
	if r.ContentLength >= 0 && len(r.TransferEncoding) == 0 {
		return func() {}, nil
	}
	f, err := os.CreateTemp(dir, "body-*")
	if err != nil {
		return nil, err
	}
	cleanup = func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	n, err := io.Copy(f, r.Body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("spool request body: %w", err)
	}
	_ = r.Body.Close()
	r.Body = f
	r.ContentLength = n
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	return cleanup, nil
}
