package notify

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWebhookSignatureVerifiesWithSecret(t *testing.T) {
	const secret = "s3cret-for-hmac"
	rc := newReceiver(t, nil)
	w, err := NewWebhook(rc.URL+"/hook", secret, fast(1)...)
	if err != nil {
		t.Fatal(err)
	}
	m := conflictMessage()
	if err := w.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	// Verify as a receiver would: recompute over the raw body.
	got := r.header.Get(HeaderSignature)
	if want := Sign([]byte(secret), r.body); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	if Sign([]byte("wrong-secret"), r.body) == got {
		t.Error("signature verifies with a wrong secret")
	}
	if ev := r.header.Get(HeaderEvent); ev != EventSyncConflict {
		t.Errorf("%s = %q", HeaderEvent, ev)
	}
	if id := r.header.Get(HeaderDelivery); len(id) != 36 {
		t.Errorf("%s = %q, want a UUID", HeaderDelivery, id)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var back Message
	if err := json.Unmarshal(r.body, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("receiver decoded\n%+v\nwant\n%+v", back, m)
	}
}

func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	rc := newReceiver(t, nil)
	w, err := NewWebhook(rc.URL, "", fast(1)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(background(t), conflictMessage()); err != nil {
		t.Fatal(err)
	}
	if sig := rc.requests()[0].header.Get(HeaderSignature); sig != "" {
		t.Errorf("unsigned webhook sent %s: %q", HeaderSignature, sig)
	}
}

func TestWebhookRetriesAfter503WithStableDeliveryID(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	w, err := NewWebhook(rc.URL, "secret-value", fast(4)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(background(t), conflictMessage()); err != nil {
		t.Fatalf("Send after a 503 then 200: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	id1, id2 := reqs[0].header.Get(HeaderDelivery), reqs[1].header.Get(HeaderDelivery)
	if id1 == "" || id1 != id2 {
		t.Errorf("delivery ids %q and %q, want the same across retries", id1, id2)
	}
	if string(reqs[0].body) != string(reqs[1].body) || reqs[0].header.Get(HeaderSignature) != reqs[1].header.Get(HeaderSignature) {
		t.Error("a retry sent a different body or signature")
	}
}

func TestWebhookHonoursRetryAfterOn429(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	// The base delay is 1ms: only Retry-After can explain a 1s wait.
	w, err := NewWebhook(rc.URL, "", fast(2)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(background(t), conflictMessage()); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 1, want about 1s", gap)
	}
}

func TestWebhook400IsNotRetriedAndReported(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		http.Error(w, "unknown event field", http.StatusBadRequest)
	})
	w, err := NewWebhook(rc.URL+"/hooks/receiver-token-abcdef", "secret-value", fast(4)...)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(background(t), conflictMessage())
	if err == nil {
		t.Fatal("Send succeeded against a receiver answering 400")
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1: a 400 must not be retried", n)
	}
	herr, ok := errors.AsType[*HTTPError](err)
	if !ok || herr.StatusCode != http.StatusBadRequest || herr.Temporary() {
		t.Errorf("error %v: want a final *HTTPError with status 400", err)
	}
	if !errors.Is(err, ErrDelivery) {
		t.Errorf("error %v: want errors.Is(err, ErrDelivery)", err)
	}
	msg := err.Error()
	for _, want := range []string{"webhook " + rc.URL + "/…", "400", "unknown event field", "1 of 4 attempts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "receiver-token-abcdef") {
		t.Errorf("error %q shows the URL's path", msg)
	}
}

func TestWebhookRedirectIsReportedNotFollowed(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	})
	w, err := NewWebhook(rc.URL, "", fast(3)...)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(background(t), conflictMessage())
	if herr, ok := errors.AsType[*HTTPError](err); !ok || herr.StatusCode != http.StatusFound {
		t.Errorf("error %v: want *HTTPError 302", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestWebhookUnreachableIsReportedRedacted(t *testing.T) {
	// Port 1: nothing listens there, and unlike a freed ephemeral port no
	// server started by a parallel test can take it.
	addr := "127.0.0.1:1"
	const (
		secret = "hmac-secret-do-not-print"
		path   = "/services/T000/B000/XXXXXXXXXXXXXXXX"
	)
	url := "http://" + addr + path + "?token=query-secret-value"
	w, err := NewWebhook(url, secret, fast(3)...)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(background(t), conflictMessage())
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"webhook http://" + addr + "/…", "3 of 3 attempts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	for _, leak := range []string{secret, "T000/B000", "query-secret-value", "token="} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q leaks %q", msg, leak)
		}
	}
	if !errors.Is(err, ErrDelivery) {
		t.Errorf("error %v: want errors.Is(err, ErrDelivery)", err)
	}
}

func TestWebhookTimeoutPerAttempt(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			time.Sleep(300 * time.Millisecond) // longer than the attempt may take
		}
		w.WriteHeader(http.StatusOK)
	})
	w, err := NewWebhook(rc.URL, "", WithRetry(2, time.Millisecond), WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(background(t), conflictMessage()); err != nil {
		t.Fatalf("Send: %v; want the hung first attempt to time out and the second to succeed", err)
	}
}

func TestWebhookStopsWhenContextEnds(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	w, err := NewWebhook(rc.URL, "", fast(4)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(background(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = w.Send(ctx, conflictMessage())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %s after its context ended", d)
	}
}

func TestSlackPostsText(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			http.Error(w, "upstream_timeout", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	s, err := NewSlack(rc.URL+"/services/T000/B000/XXXXXXXXXXXXXXXX", fast(3)...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Name(), "slack "+rc.URL+"/…"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	m := conflictMessage()
	m.Text += "echo ok > <file> && true\n"
	if err := s.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	var body map[string]string
	if err := json.Unmarshal(reqs[1].body, &body); err != nil {
		t.Fatal(err)
	}
	text := body["text"]
	for _, want := range []string{"*" + m.Title + "*", "pkg/kubelet/kubelet.go", "echo ok &gt; &lt;file&gt; &amp;&amp; true", "```", "merge.txt"} {
		if !strings.Contains(text, want) {
			t.Errorf("Slack text does not contain %q:\n%s", want, text)
		}
	}
	if len(body) != 1 {
		t.Errorf("Slack body has keys %v, want only text", body)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/xyz":   "https://hooks.slack.com/…",
		"https://user:pass@example.com/hook?sig=abc": "https://example.com/…",
		"http://127.0.0.1:8080":                      "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/":                     "http://127.0.0.1:8080",
		"not a url":                                  "[invalid URL]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 6, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 02 Jan 2025 06:00:10 GMT": 10 * time.Second,
		"Thu, 02 Jan 2025 05:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNewWebhookRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://example.com/x", "hooks.slack.com/services/x"} {
		if _, err := NewWebhook(u, ""); !errors.Is(err, ErrConfig) {
			t.Errorf("NewWebhook(%q) error %v, want ErrConfig", u, err)
		}
	}
}
