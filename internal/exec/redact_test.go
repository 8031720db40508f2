package exec

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const testToken = "ghp_T0kenValue-1234567890abcdef"

func TestRedactorHidesURLQueries(t *testing.T) {
	r := NewRedactor()
	for in, want := range map[string]string{
		"GET https://bucket.s3.example/log?X-Amz-Signature=abc&X-Amz-Credential=AKIA failed": "GET https://bucket.s3.example/log?[REDACTED] failed",
		`post "https://hooks.example/x?token=t0k": 500`:                                      `post "https://hooks.example/x?[REDACTED]": 500`,
		"https://u:p@h.example/a?b=c#frag":                                                   "https://[REDACTED]@h.example/a?[REDACTED]",
		"no url? none here":                                                                  "no url? none here",
		"https://h.example/a#frag":                                                           "https://h.example/a#frag",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"https://h.example/x?token=" + testToken:  "https://h.example/x",
		"https://h.example/x#access_token=t0k":    "https://h.example/x",
		"https://u:tok@h.example/x?a=b#c":         "https://h.example/x",
		"unix:///run/buildkit/buildkitd.sock":     "unix:///run/buildkit/buildkitd.sock",
		"https://h.example/with space?token=abcd": "https://h.example/with%20space",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// leaks reports whether s still shows secret, literally or in the base64
// (either alphabet, any alignment) of some run of it.
func leaks(s, secret string) bool {
	if strings.Contains(s, secret) {
		return true
	}
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/_-]+`).FindAllString(s, -1) {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			for skip := 0; skip < 4 && skip < len(run); skip++ {
				r := run[skip:]
				if len(r)%4 == 1 {
					r = r[:len(r)-1]
				}
				if b, err := enc.DecodeString(r); err == nil && bytes.Contains(b, []byte(secret)) {
					return true
				}
			}
		}
	}
	return false
}

func TestRedactorHidesDerivedForms(t *testing.T) {
	r := NewRedactor(testToken)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	ins := map[string]string{
		"basic header value gitsync sends": "echo: Authorization: Basic " + b64("x-access-token:"+testToken),
		"basic value in free text":         `{"seen":"` + b64("x-access-token:"+testToken) + `"}`,
		"user:token in free text":          "got credentials " + b64("user:"+testToken) + " from client",
		"base64 of the token alone":        "token=" + b64(testToken),
		"url-safe base64, offset 1":        "x " + base64.URLEncoding.EncodeToString([]byte("a"+testToken+"zz")),
		"url-safe base64, offset 2":        "x " + base64.RawURLEncoding.EncodeToString([]byte("ab"+testToken)),
		"percent-encoded":                  "password=" + url.QueryEscape(testToken+"/+ =") + "&x",
	}
	// The secret for the percent-encoded case holds bytes that need escaping.
	r.Add(testToken + "/+ =")
	for name, in := range ins {
		if !leaks(in, testToken) {
			t.Fatalf("%s: leaks does not see the token in %q", name, in)
		}
		got := r.String(in)
		if leaks(got, testToken) || !strings.Contains(got, "[REDACTED]") {
			t.Errorf("%s: String(%q) = %q still shows the token", name, in, got)
		}
		if name == "percent-encoded" && strings.Contains(got, url.QueryEscape(testToken)) {
			t.Errorf("%s: %q", name, got)
		}
	}
	if got := r.String("Basic " + b64("x-access-token:"+testToken)); got != "Basic [REDACTED]" {
		t.Errorf("the exact Basic value is not hidden whole: %q", got)
	}
	// Ordinary base64 and hex are left alone.
	for _, in := range []string{b64("hello, world: nothing secret here"), "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"} {
		if got := r.String(in); got != in {
			t.Errorf("String(%q) = %q", in, got)
		}
	}
}

func TestRedactingWriterCatchesSecretsSplitAcrossWrites(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + testToken))
	for _, tc := range []struct{ name, text, secret string }{
		{"token", "fetching with " + testToken + " now\n", testToken},
		{"basic", "Authorization: Basic " + basic + "\n", basic},
		{"url", "fatal: https://user:hunter2hunter2@example.com/k.git?sig=abc\n", "hunter2hunter2"},
		{"unfinished line", "last words " + testToken, testToken},
	} {
		want := NewRedactor(testToken).String(tc.text)
		start := strings.Index(tc.text, tc.secret)
		for i := start; i <= start+len(tc.secret); i++ {
			var out bytes.Buffer
			w := NewRedactingWriter(&out, NewRedactor(testToken))
			for _, part := range []string{tc.text[:i], tc.text[i:]} {
				if n, err := w.Write([]byte(part)); n != len(part) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != want || strings.Contains(out.String(), tc.secret) {
				t.Errorf("%s split at %d: wrote %q, want %q", tc.name, i, out.String(), want)
			}
		}
	}
}

func TestRedactingWriterWritesLinesAsTheyEnd(t *testing.T) {
	var out bytes.Buffer
	w := NewRedactingWriter(&out, NewRedactor(testToken))
	w.Write([]byte("step 1 done\nstep 2 "))
	if out.String() != "step 1 done\n" {
		t.Fatalf("after one line: %q", out.String())
	}
	w.Write([]byte("done\n"))
	if out.String() != "step 1 done\nstep 2 done\n" {
		t.Fatalf("after two lines: %q", out.String())
	}
}

func TestRedactingWriterSplitsALongLineOutsideSecrets(t *testing.T) {
	var out bytes.Buffer
	w := NewRedactingWriter(&out, NewRedactor(testToken))
	// A line with no end, longer than the writer buffers, with the token
	// at every offset around where it has to cut.
	var in strings.Builder
	for in.Len() < 3*maxLine {
		in.WriteString("x" + testToken)
	}
	chunk := 1000
	text := in.String()
	for i := 0; i < len(text); i += chunk {
		w.Write([]byte(text[i:min(i+chunk, len(text))]))
		if len(w.buf) > maxLine+chunk+len(testToken) {
			t.Fatalf("the writer holds %d bytes of an unfinished line", len(w.buf))
		}
	}
	w.Close()
	if strings.Contains(out.String(), testToken) || strings.Count(out.String(), "[REDACTED]") != strings.Count(text, testToken) {
		t.Fatalf("a token escaped in a long line")
	}
}

func TestRedactorAddIsIdempotent(t *testing.T) {
	r := NewRedactor(testToken, "other-secret-1")
	n := len(r.patterns)
	r.Add(testToken, "other-secret-1", testToken)
	if len(r.patterns) != n {
		t.Fatalf("adding the same secrets again grew the patterns from %d to %d", n, len(r.patterns))
	}
}

// TestRedactorLinkKeepsPresignedQueries checks that a presigned link for
// people keeps the signature it needs, and nothing else gets through.
func TestRedactorLinkKeepsPresignedQueries(t *testing.T) {
	sig := strings.Repeat("0a", 32)
	presigned := "https://s3.example/bucket/test/log.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261203%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261203T070000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=" + sig
	r := NewRedactor(testToken)
	for in, want := range map[string]string{
		presigned: presigned,
		"https://s3.example/b/log?token=" + testToken + "&X-Amz-Signature=" + sig: "https://s3.example/b/log?token=[REDACTED]&X-Amz-Signature=" + sig,
		"https://s3.example/b/log?X-Amz-Signature=short":                          "https://s3.example/b/log?[REDACTED]",
		"https://hooks.example/x?token=abc":                                       "https://hooks.example/x?[REDACTED]",
		"https://u:p@s3.example/b/log?X-Amz-Signature=" + sig:                     "https://[REDACTED]@s3.example/b/log?[REDACTED]",
		"/var/lib/hyperfork/logs/test/master/run/test.log":                        "/var/lib/hyperfork/logs/test/master/run/test.log",
	} {
		if got := r.Link(in); got != want {
			t.Errorf("Link(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}
