package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const (
	testSlackToken   = "xoxb-1111-2222-hyperforktesttoken"
	testSlackChannel = "C0HYPERFK"
	testSlackTS      = "1735797600.000100"
)

// slackCall is one request the Slack API server received.
type slackCall struct {
	method string // Web API method, or "upload"
	auth   string
	ctype  string
	body   []byte
}

// slackServer is an HTTP server on loopback that speaks the four Web API
// calls the bot channel makes, as Slack documents them: bearer token,
// {"ok": ...} answers, an upload URL on its own path that takes the raw
// bytes. fault, if set, may answer the n-th call of a method instead.
type slackServer struct {
	*httptest.Server
	fault func(method string, n int, w http.ResponseWriter) bool

	mu      sync.Mutex
	calls   []slackCall
	counts  map[string]int
	uploads map[string][]byte
	pending map[string]int // file id → announced length
}

func newSlackServer(t *testing.T) *slackServer {
	t.Helper()
	s := &slackServer{counts: map[string]int{}, uploads: map[string][]byte{}, pending: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *slackServer) api() Option { return WithSlackAPI(s.URL + "/api/") }

func (s *slackServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if strings.HasPrefix(r.URL.Path, "/upload/") {
		method = "upload"
	}
	s.mu.Lock()
	s.calls = append(s.calls, slackCall{method: method, auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"), body: body})
	s.counts[method]++
	n := s.counts[method]
	s.mu.Unlock()
	if s.fault != nil && s.fault(method, n, w) {
		return
	}
	answer := func(v map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	if method != "upload" && r.Header.Get("Authorization") != "Bearer "+testSlackToken {
		answer(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	switch method {
	case "files.getUploadURLExternal":
		form, err := url.ParseQuery(string(body))
		if err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			answer(map[string]any{"ok": false, "error": "invalid_form_data"})
			return
		}
		var length int
		_, _ = fmt.Sscan(form.Get("length"), &length)
		if form.Get("filename") == "" || length == 0 {
			answer(map[string]any{"ok": false, "error": "missing_argument"})
			return
		}
		s.mu.Lock()
		id := fmt.Sprintf("F%04d", len(s.pending)+1)
		s.pending[id] = length
		s.mu.Unlock()
		answer(map[string]any{"ok": true, "upload_url": s.URL + "/upload/v1/" + id + "?sig=upload-signature-secret", "file_id": id})
	case "upload":
		id := strings.TrimPrefix(r.URL.Path, "/upload/v1/")
		s.mu.Lock()
		want, ok := s.pending[id]
		if ok && want == len(body) {
			s.uploads[id] = body
		}
		s.mu.Unlock()
		if !ok || want != len(body) {
			http.Error(w, "bad upload", http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintf(w, "OK - %d", len(body))
	case "chat.postMessage":
		var p struct {
			Channel string            `json:"channel"`
			Blocks  []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Channel == "" || len(p.Blocks) == 0 || len(p.Blocks) > 50 {
			answer(map[string]any{"ok": false, "error": "invalid_blocks"})
			return
		}
		answer(map[string]any{"ok": true, "channel": testSlackChannel, "ts": testSlackTS})
	case "files.completeUploadExternal":
		var c struct {
			Files []struct {
				ID string `json:"id"`
			} `json:"files"`
			ChannelID string `json:"channel_id"`
		}
		if err := json.Unmarshal(body, &c); err != nil || c.ChannelID != testSlackChannel || len(c.Files) == 0 {
			answer(map[string]any{"ok": false, "error": "invalid_arguments"})
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, f := range c.Files {
			if _, ok := s.uploads[f.ID]; !ok {
				answer(map[string]any{"ok": false, "error": "file_not_found"})
				return
			}
		}
		answer(map[string]any{"ok": true})
	default:
		answer(map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (s *slackServer) record() []slackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slackCall(nil), s.calls...)
}

func (s *slackServer) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

func methods(calls []slackCall) string {
	var ms []string
	for _, c := range calls {
		ms = append(ms, c.method)
	}
	return strings.Join(ms, " ")
}

func TestSlackBotPostsBlocksAndUploadsLogInThread(t *testing.T) {
	srv := newSlackServer(t)
	var logs bytes.Buffer
	n, err := New([]Spec{{Type: TypeSlack, TokenEnv: "SLACK_BOT_TOKEN", Channel: "#builds"}},
		env(map[string]string{"SLACK_BOT_TOKEN": testSlackToken}),
		srv.api(), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Channels()[0].Name(); got != "slack #builds" {
		t.Errorf("Name() = %q", got)
	}
	log := testLog(200 << 10)
	m := failedMessage(log)
	if err := n.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	calls := srv.record()
	if got, want := methods(calls), "files.getUploadURLExternal upload chat.postMessage files.completeUploadExternal"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	for _, c := range calls {
		want := "Bearer " + testSlackToken
		if c.method == "upload" {
			want = "" // the upload URL is signed; the token stays with slack.com
		}
		if c.auth != want {
			t.Errorf("%s: Authorization %q, want %q", c.method, c.auth, want)
		}
	}
	if !bytes.Equal(calls[1].body, log) {
		t.Errorf("uploaded %d bytes that differ from the %d-byte log", len(calls[1].body), len(log))
	}
	if !strings.Contains(string(calls[0].body), fmt.Sprintf("length=%d", len(log))) || !strings.Contains(string(calls[0].body), "filename=test.log") {
		t.Errorf("getUploadURLExternal form %q", calls[0].body)
	}
	var post struct {
		Channel string `json:"channel"`
		Text    string `json:"text"`
		Blocks  []struct {
			Type     string         `json:"type"`
			Text     *slackTextObj  `json:"text"`
			Fields   []slackTextObj `json:"fields"`
			Elements []slackTextObj `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(calls[2].body, &post); err != nil {
		t.Fatal(err)
	}
	if post.Channel != "#builds" || !strings.Contains(post.Text, "not published: 2 new failures") {
		t.Errorf("post to %q with text %q", post.Channel, post.Text)
	}
	if b := post.Blocks[0]; b.Type != "header" || b.Text.Type != "plain_text" || b.Text.Text != m.Title {
		t.Errorf("first block %+v, want the title as header", b)
	}
	var texts []string
	for _, b := range post.Blocks {
		if b.Text != nil {
			texts = append(texts, b.Text.Text)
		}
		for _, f := range append(b.Fields, b.Elements...) {
			texts = append(texts, f.Text)
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"*Tests*\n410 passed, 2 failed, 1 flaky, 37 skipped", "*Published*\nno: 2 new failures", "`" + m.Image + "`",
		"<" + m.LogURL + "|", "`" + m.NewFailures[0].Test + "`", "`111111111111` upstream: kube-proxy: reorder &lt;nft&gt; rules &amp; chains",
		"New failures (2)", "delivery `" + DeliveryID(m) + "`",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("blocks lack %q:\n%s", want, all)
		}
	}
	var done slackComplete
	if err := json.Unmarshal(calls[3].body, &done); err != nil {
		t.Fatal(err)
	}
	if done.ChannelID != testSlackChannel || done.ThreadTS != testSlackTS || len(done.Files) != 1 || done.Files[0].Title != "test.log" || done.InitialComment == "" {
		t.Errorf("completeUploadExternal %+v: want the file in the message's thread with a comment", done)
	}
	if strings.Contains(logs.String(), testSlackToken) || strings.Contains(logs.String(), "upload-signature-secret") {
		t.Errorf("a credential reached the log:\n%s", logs.String())
	}
}

func TestSlackBotWithoutAttachmentOnlyPosts(t *testing.T) {
	srv := newSlackServer(t)
	s, err := NewSlackBot(testSlackToken, testSlackChannel, srv.api())
	if err != nil {
		t.Fatal(err)
	}
	m := conflictMessage()
	m.Attachments = nil
	if err := s.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	if got := methods(srv.record()); got != "chat.postMessage" {
		t.Errorf("calls %q, want only chat.postMessage", got)
	}
}

// TestSlackBotRetriesPostOnlyWhenSlackDidNotPost: a rate-limited post is
// retried (Slack did not process it); a post whose answer was lost, or that
// Slack failed inside, is not, since repeating it could post twice.
func TestSlackBotRetriesPostOnlyWhenSlackDidNotPost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  func(w http.ResponseWriter)
		posts  int
		wantOK bool
	}{
		{"429", func(w http.ResponseWriter) { http.Error(w, "rate limited", http.StatusTooManyRequests) }, 2, true},
		{"ratelimited", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`)) }, 2, true},
		{"503", func(w http.ResponseWriter) { http.Error(w, "unavailable", http.StatusServiceUnavailable) }, 2, true},
		{"500", func(w http.ResponseWriter) { http.Error(w, "oops", http.StatusInternalServerError) }, 1, false},
		{"internal_error", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"ok":false,"error":"internal_error"}`)) }, 1, false},
		{"dropped", func(w http.ResponseWriter) {
			// The request arrived whole, the answer never leaves: the
			// fault a real Slack cannot be asked to show.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSlackServer(t)
			srv.fault = func(method string, n int, w http.ResponseWriter) bool {
				if method == "chat.postMessage" && n == 1 {
					tc.fault(w)
					return true
				}
				return false
			}
			s, err := NewSlackBot(testSlackToken, testSlackChannel, append(fast(3), srv.api())...)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(background(t), failedMessage(testLog(1000)))
			if (err == nil) != tc.wantOK {
				t.Fatalf("Send: %v, want ok=%v", err, tc.wantOK)
			}
			if got := srv.count("chat.postMessage"); got != tc.posts {
				t.Errorf("%d posts, want %d", got, tc.posts)
			}
			if !tc.wantOK {
				if got := srv.count("files.completeUploadExternal"); got != 0 {
					t.Errorf("the log was shared %d times after a failed post", got)
				}
				if !errors.Is(err, ErrDelivery) || errors.Is(err, ErrPartial) || strings.Contains(err.Error(), testSlackToken) {
					t.Errorf("error %q: want ErrDelivery, not ErrPartial, without the token", err)
				}
			}
		})
	}
}

// memLedger is a Ledger in memory, as the pipeline's is in its state store.
type memLedger struct {
	mu   sync.Mutex
	done map[string]bool
}

func (l *memLedger) Delivered(_ context.Context, channel, delivery string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done[channel+" "+delivery], nil
}

func (l *memLedger) Record(_ context.Context, channel, delivery string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = map[string]bool{}
	}
	l.done[channel+" "+delivery] = true
	return nil
}

// TestSlackBotLogShareFailureIsPartialAndNotReposted: once the message is
// posted, failing to share the log is reported as ErrPartial, and a rerun
// with the ledger posts nothing again.
func TestSlackBotLogShareFailureIsPartialAndNotReposted(t *testing.T) {
	srv := newSlackServer(t)
	srv.fault = func(method string, _ int, w http.ResponseWriter) bool {
		if method == "files.completeUploadExternal" {
			http.Error(w, "down", http.StatusBadGateway)
			return true
		}
		return false
	}
	ledger := &memLedger{}
	n, err := New([]Spec{{Type: TypeSlack, TokenEnv: "T", Channel: "#builds"}}, env(map[string]string{"T": testSlackToken}),
		append(fast(3), srv.api(), WithLedger(ledger))...)
	if err != nil {
		t.Fatal(err)
	}
	m := failedMessage(testLog(5000))
	err = n.Send(background(t), m)
	if !errors.Is(err, ErrPartial) || !strings.Contains(err.Error(), "the message was posted") {
		t.Fatalf("error %v: want ErrPartial", err)
	}
	if posts, shares := srv.count("chat.postMessage"), srv.count("files.completeUploadExternal"); posts != 1 || shares != 3 {
		t.Errorf("%d posts and %d share attempts, want 1 and 3", posts, shares)
	}
	before := len(srv.record())
	if err := n.Send(background(t), m); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if after := len(srv.record()); after != before {
		t.Errorf("the rerun made %d more calls, want none", after-before)
	}
}

func TestSlackBotFinalErrorSaysWhatToDo(t *testing.T) {
	srv := newSlackServer(t)
	srv.fault = func(method string, _ int, w http.ResponseWriter) bool {
		if method == "chat.postMessage" {
			_, _ = w.Write([]byte(`{"ok":false,"error":"not_in_channel"}`))
			return true
		}
		return false
	}
	s, err := NewSlackBot(testSlackToken, "#builds", append(fast(3), srv.api())...)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(background(t), conflictMessage())
	if err == nil || !strings.Contains(err.Error(), "not_in_channel (invite the app to the channel") || !strings.Contains(err.Error(), "1 of 3 attempts") {
		t.Errorf("error %v: want the Slack error, its fix, and no retry", err)
	}
}
