package junit

import (
	"io"
	"sort"
	"unicode/utf8"
)

// cleanReader passes XML through with everything encoding/xml refuses
// replaced by U+FFFD: bytes that are not UTF-8, characters XML 1.0 does not
// allow (control characters such as the ESC of a colour code, U+FFFE,
// U+FFFF) and character references to them (&#x1B;). Go's decoder stops at
// the first of these ("invalid UTF-8", "illegal character code"), and a
// test's output can hold any of them. Newlines are never touched, so line
// numbers stay right; byte offsets are mapped back through shifts.
type cleanReader struct {
	r     io.Reader
	buf   []byte // raw input not yet cleaned: an incomplete rune or reference
	out   []byte // cleaned, not yet read
	eof   bool
	err   error
	nOut  int64 // bytes cleaned so far
	delta int64 // nOut minus the raw bytes they came from
	// shifts records where delta changed, in cleaned offsets, so that an
	// error's offset can be given in the file's own bytes. Past maxShifts
	// changes offsets are given in cleaned bytes (exact says so).
	shifts []shift
	exact  bool
}

type shift struct{ at, delta int64 }

const (
	cleanChunk = 64 << 10
	maxShifts  = 1 << 16
	// maxRef bounds a character reference worth reading: "&#x10FFFF;" and
	// a few leading zeros. Longer ones are passed on for the decoder to
	// judge.
	maxRef = 16
)

const replacement = "\uFFFD"

func newCleanReader(r io.Reader) *cleanReader {
	return &cleanReader{r: r, exact: true}
}

func (c *cleanReader) Read(p []byte) (int, error) {
	if err := c.more(); err != nil {
		return 0, err
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// ReadByte lets encoding/xml read the cleaned bytes directly rather than
// through a bufio.Reader of its own.
func (c *cleanReader) ReadByte() (byte, error) {
	if len(c.out) == 0 {
		if err := c.more(); err != nil {
			return 0, err
		}
	}
	b := c.out[0]
	c.out = c.out[1:]
	return b, nil
}

// more cleans input until there is output or an error.
func (c *cleanReader) more() error {
	for len(c.out) == 0 {
		if c.err != nil {
			return c.err
		}
		if c.eof {
			if len(c.buf) == 0 {
				c.err = io.EOF
				continue
			}
		} else {
			c.fill()
		}
		c.clean()
	}
	return nil
}

// fill appends the next chunk of raw input to buf.
func (c *cleanReader) fill() {
	if cap(c.buf)-len(c.buf) < cleanChunk {
		nb := make([]byte, len(c.buf), len(c.buf)+cleanChunk)
		copy(nb, c.buf)
		c.buf = nb
	}
	n, err := c.r.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if err == io.EOF {
		c.eof = true
	} else if err != nil {
		c.err = err
		c.eof = true
	}
}

// clean moves what can be decided of buf to out; a tail that may be the
// start of a rune or a reference waits for more input unless the input
// has ended.
func (c *cleanReader) clean() {
	in := c.buf
	out := make([]byte, 0, len(in)+len(in)/16)
	i := 0
scan:
	for i < len(in) {
		// The common case: a run of plain ASCII.
		j := i
		for j < len(in) && plain(in[j]) {
			j++
		}
		out = append(out, in[i:j]...)
		i = j
		if i == len(in) {
			break
		}
		b := in[i]
		switch {
		case b == '&':
			n, ok, complete := charRef(in[i:])
			if !complete && !c.eof {
				break scan
			}
			if !ok {
				out = append(out, '&')
				i++
				continue
			}
			out = c.replace(out, n)
			i += n
		case b < utf8.RuneSelf:
			// A control character other than tab, newline, return.
			out = c.replace(out, 1)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				if !utf8.FullRune(in[i:]) && !c.eof {
					break scan
				}
				out = c.replace(out, 1)
				i++
				continue
			}
			if !xmlChar(r) {
				out = c.replace(out, size)
			} else {
				out = append(out, in[i:i+size]...)
			}
			i += size
		}
	}
	c.nOut += int64(len(out))
	c.out = out
	rest := copy(c.buf, in[i:])
	c.buf = c.buf[:rest]
}

// replace writes U+FFFD for n raw bytes and records the change in length.
func (c *cleanReader) replace(out []byte, n int) []byte {
	out = append(out, replacement...)
	if d := int64(len(replacement) - n); d != 0 {
		c.delta += d
		if len(c.shifts) < maxShifts {
			c.shifts = append(c.shifts, shift{at: c.nOut + int64(len(out)), delta: c.delta})
		} else {
			c.exact = false
		}
	}
	return out
}

// rawOffset maps an offset in the cleaned stream to the file's own bytes;
// exact is false when too many replacements were made to keep track.
func (c *cleanReader) rawOffset(off int64) (raw int64, exact bool) {
	i := sort.Search(len(c.shifts), func(i int) bool { return c.shifts[i].at > off })
	if i == 0 {
		return off, true
	}
	// Past the last recorded change there may be unrecorded ones.
	return off - c.shifts[i-1].delta, c.exact || i < len(c.shifts)
}

// plain reports an ASCII byte that needs no look: printable, tab, newline,
// return, and not the '&' that may start a character reference.
func plain(b byte) bool {
	return (b >= 0x20 && b < utf8.RuneSelf && b != '&') || b == '\t' || b == '\n' || b == '\r'
}

// charRef looks at s, which starts with '&'. It returns the length of a
// character reference to a character XML forbids (ok), or ok false for
// anything else. complete is false when s ends before the reference could
// be judged.
func charRef(s []byte) (n int, ok, complete bool) {
	if len(s) < 2 {
		return 0, false, false
	}
	if s[1] != '#' {
		return 0, false, true
	}
	i, base := 2, 10
	if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
		i, base = 3, 16
	}
	start := i
	v := 0
	for ; i < len(s) && i < maxRef; i++ {
		d := digit(s[i], base)
		if d < 0 {
			break
		}
		if v <= utf8.MaxRune {
			v = v*base + d
		}
	}
	if i == len(s) && i < maxRef {
		return 0, false, false
	}
	if i == start || i >= len(s) || s[i] != ';' {
		return 0, false, true
	}
	if v > utf8.MaxRune || !xmlChar(rune(v)) {
		return i + 1, true, true
	}
	return 0, false, true
}

func digit(b byte, base int) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case base == 16 && b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	case base == 16 && b >= 'A' && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// xmlChar is XML 1.0's Char production.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}
