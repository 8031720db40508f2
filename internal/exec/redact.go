package exec

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Redactor removes secrets from text. The zero value redacts credentials and
// query strings in URLs only. A Redactor is safe for concurrent use.
type Redactor struct {
	mu sync.RWMutex
	// patterns are the registered secrets and their derived forms, longest
	// first, so that a long form is hidden whole before a shorter form
	// inside it could leave pieces of it behind.
	patterns []string
}

// NewRedactor returns a Redactor that also hides the given secret values.
// Empty values and values shorter than 4 bytes are ignored: hiding "a" would
// garble every message.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// minSecret is the shortest secret that is hidden.
const minSecret = 4

// minDerived is the shortest derived form that is hidden. An aligned base64
// core is a run of letters and digits; shorter than this it turns up by
// chance in digests and would garble them.
const minDerived = 6

// Add registers more secret values, with the forms they take on their way
// to a log (see derivedForms).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) < minSecret {
			continue
		}
		r.patterns = append(r.patterns, s)
		for _, d := range derivedForms(s) {
			if len(d) >= minDerived && d != s {
				r.patterns = append(r.patterns, d)
			}
		}
	}
	slices.SortFunc(r.patterns, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	r.patterns = slices.Compact(r.patterns)
}

// derivedForms returns the encodings under which a secret reaches text
// without being its literal self: a server or proxy that echoes a request
// header prints the base64 of a Basic credential, and a URL carries it
// percent-encoded.
func derivedForms(s string) []string {
	var out []string
	// The exact header value gitsync sends (Remote.authEnv), hidden whole.
	out = append(out, base64.StdEncoding.EncodeToString([]byte("x-access-token:"+s)))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, enc.EncodeToString([]byte(s)))
		raw := enc.WithPadding(base64.NoPadding)
		for k := 0; k < 3; k++ {
			out = append(out, base64Core(raw, s, k))
		}
	}
	q, p := url.QueryEscape(s), url.PathEscape(s)
	out = append(out, q, p, lowerHexEscapes(q), lowerHexEscapes(p))
	return out
}

// base64Core returns the part of the base64 of (k bytes + s + anything)
// that depends on s alone. base64 maps each 3 bytes to 4 characters, so s
// encodes three ways depending on where it starts in the encoded text; the
// characters that mix s with its neighbours are left out. Hiding all three
// cores hides s inside the base64 of "user:"+s, of a JSON blob, and so on.
func base64Core(enc *base64.Encoding, s string, k int) string {
	e := enc.EncodeToString(append(make([]byte, k), s...))
	// The first group holds k filler bytes: with k=1 its first 2
	// characters carry filler bits, with k=2 its first 3.
	skip := [3]int{0, 2, 3}[k]
	n := k + len(s)
	// A last partial group's final character mixes in what follows s.
	end := 4*(n/3) + [3]int{0, 1, 2}[n%3]
	if end <= skip {
		return ""
	}
	return e[skip:end]
}

// lowerHexEscapes writes the hex digits of %XX escapes in lower case, as
// some clients do.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = toLower(b[i+1]), toLower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// longest returns the length of the longest pattern, which bounds how much
// of a stream RedactingWriter must hold back.
func (r *Redactor) longest() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.patterns) == 0 {
		return 0
	}
	return len(r.patterns[0])
}

// userinfoRE matches the userinfo part of a URL: scheme://user:pass@host.
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@\s:]+)(:[^/@\s]*)?@`)

// queryRE matches a URL's query string (and any fragment after it), up to
// whitespace or a quote: presigned S3 links, webhook and OAuth URLs carry
// their credential there.
var queryRE = regexp.MustCompile("([a-zA-Z][a-zA-Z0-9+.-]*://[^\\s\"'`<>?]*)\\?[^\\s\"'`<>]*")

// authHeaderRE matches an HTTP Authorization header handed to git with -c.
var authHeaderRE = regexp.MustCompile(`(?i)(authorization:\s*(basic|bearer)\s+)\S+`)

// String returns s with every secret, URL credential and URL query replaced.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		for _, p := range r.patterns {
			s = strings.ReplaceAll(s, p, "[REDACTED]")
		}
		r.mu.RUnlock()
	}
	s = userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRE.FindStringSubmatch(m)
		// git@host style SSH users carry no secret; keep them readable.
		if sub[3] == "" && !strings.HasPrefix(sub[1], "http") {
			return m
		}
		return sub[1] + "[REDACTED]@"
	})
	s = queryRE.ReplaceAllString(s, "${1}?[REDACTED]")
	return authHeaderRE.ReplaceAllString(s, "${1}[REDACTED]")
}

// presignedRE matches a SigV4 presigned query: its signature is the
// link's whole purpose, time-limited and bound to one GET of one object.
var presignedRE = regexp.MustCompile(`(^|&)X-Amz-Signature=[0-9a-f]{64}(&|$)`)

// Link redacts a link meant for people, such as a test log's: secrets and
// URL credentials go as in String, but the query of an S3 presigned GET
// stays, since without it the link opens nothing. Any other query goes.
func (r *Redactor) Link(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.RawQuery == "" || !presignedRE.MatchString(u.RawQuery) || u.User != nil || u.Fragment != "" {
		return r.String(s)
	}
	q := u.RawQuery
	u.RawQuery = ""
	base := r.String(u.String())
	if r != nil {
		r.mu.RLock()
		for _, p := range r.patterns {
			q = strings.ReplaceAll(q, p, "[REDACTED]")
		}
		r.mu.RUnlock()
	}
	return base + "?" + q
}

// RedactURL returns u without password, token, query or fragment, for
// messages. A string that does not parse as a URL is redacted as text.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.User == nil && p.RawQuery == "" && !p.ForceQuery && p.Fragment == "") {
		return (*Redactor)(nil).String(u)
	}
	p.User = nil
	p.RawQuery, p.ForceQuery = "", false
	p.Fragment, p.RawFragment = "", ""
	return p.String()
}
