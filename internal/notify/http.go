package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// HTTP headers sent with every delivery, named after GitHub's webhook
// headers so that receivers written for GitHub adapt with a rename.
const (
	HeaderEvent     = "X-Hyperfork-Event"
	HeaderDelivery  = "X-Hyperfork-Delivery"
	HeaderSignature = "X-Hyperfork-Signature-256"
)

// Sign returns the signature header value for body: "sha256=" and the hex
// HMAC-SHA256 of the exact bytes with secret as key. A receiver recomputes it
// over the raw body it read and compares with hmac.Equal.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// RedactURL returns only scheme://host of u, and "/…" if u has more: a
// webhook URL is itself a credential (Slack's is), so no path, query or
// user ever reaches a log or an error.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return "[invalid URL]"
	}
	s := p.Scheme + "://" + p.Host
	if (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.Fragment != "" {
		s += "/…"
	}
	return s
}

// HTTPError is a receiver's answer other than 2xx.
type HTTPError struct {
	// URL is the receiver's URL, redacted by RedactURL.
	URL        string
	StatusCode int
	// Body is the start of the answer, secrets removed: receivers often
	// say there why they refused.
	Body string
}

// Error returns the status and what the receiver said.
func (e *HTTPError) Error() string {
	// The URL is left out: the channel's name, which starts every
	// delivery error, already shows it.
	msg := fmt.Sprintf("receiver answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Temporary reports whether trying again later can help: the receiver was
// overloaded, rate-limited us or failed inside.
func (e *HTTPError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout || e.StatusCode >= 500
}

// poster POSTs a body with retries. Webhook and Slack share it so that both
// retry, time out and redact the same way.
type poster struct {
	name     string // the channel's Name, for errors and logs
	url      string
	secret   []byte
	redactor *exec.Redactor
	o        *options
}

func newPoster(kind, rawURL, secret string, o *options) (*poster, error) {
	p, err := url.Parse(rawURL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return nil, configErrorf("notify %s: URL %s is not an http(s) URL with a host", kind, RedactURL(rawURL))
	}
	return &poster{
		name:     kind + " " + RedactURL(rawURL),
		url:      rawURL,
		secret:   []byte(secret),
		redactor: exec.NewRedactor(rawURL, secret, p.RawQuery, tokenLike(p.Path)),
		o:        o,
	}, nil
}

// tokenLike returns the URL path if it is long enough to be a token (as in
// Slack's /services/T…/B…/…), so that a receiver echoing it is redacted,
// and "" for a short path such as "/hook" whose redaction would garble
// ordinary words.
func tokenLike(path string) string {
	if path = strings.TrimPrefix(path, "/"); len(path) >= 16 {
		return path
	}
	return ""
}

// post delivers body for m's event. The delivery id is m's stable one (see
// DeliveryID), the same for every attempt and every run, so that a receiver
// that got an attempt whose answer was lost can drop the duplicate.
func (p *poster) post(ctx context.Context, m Message, body []byte) error {
	delivery := DeliveryID(m)
	return retry(ctx, p.o, p.name, m.Event, delivery, func(ctx context.Context) (time.Duration, error) {
		return p.attempt(ctx, m.Event, delivery, body)
	}, retryable)
}

// attempt makes one request. It returns the receiver's Retry-After, if any.
// Errors never carry the URL: net/http's own errors quote it in full, so
// they are unwrapped down to the network error and redacted.
func (p *poster) attempt(ctx context.Context, event, delivery string, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, &netError{err: errors.New(p.redactor.String(err.Error()))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hyperfork-notify")
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, delivery)
	if len(p.secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(p.secret, body))
	}
	resp, err := p.o.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, &netError{err: errors.New(p.redactor.String(err.Error()))}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	herr := &HTTPError{
		URL:        RedactURL(p.url),
		StatusCode: resp.StatusCode,
		Body:       p.redactor.String(oneLine(string(snippet))),
	}
	var wait time.Duration
	if herr.Temporary() {
		wait = parseRetryAfter(resp.Header.Get("Retry-After"), p.o.now())
	}
	return wait, herr
}

// netError is a failure to get any answer: refused, reset, timed out. Those
// are worth retrying.
type netError struct{ err error }

func (e *netError) Error() string { return "no answer: " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

func retryable(err error) bool {
	if _, ok := errors.AsType[*netError](err); ok {
		return true
	}
	if h, ok := errors.AsType[*HTTPError](err); ok {
		return h.Temporary()
	}
	return false
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
