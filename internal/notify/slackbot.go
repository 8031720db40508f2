package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// DefaultSlackAPI is the base URL of Slack's Web API.
const DefaultSlackAPI = "https://slack.com/api/"

// WithSlackAPI points the Slack bot channel at another Web API base URL
// than DefaultSlackAPI: a proxy in front of slack.com, or a test server on
// loopback. Method names are appended to it ("…/chat.postMessage").
func WithSlackAPI(base string) Option {
	return func(o *options) error {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return configErrorf("notify: WithSlackAPI(%s): need an http(s) URL with a host", RedactURL(base))
		}
		o.slackAPI = strings.TrimSuffix(base, "/") + "/"
		return nil
	}
}

// SlackBot is a channel that posts as a Slack app with a bot token: the
// message in Block Kit with chat.postMessage, and each attachment (the test
// log) uploaded into the message's thread with files.getUploadURLExternal,
// a POST of its bytes to the URL Slack returns, and
// files.completeUploadExternal. The token needs the chat:write and
// files:write scopes, and the app must be in the channel.
//
// Slack has no idempotency key and a bot cannot cheaply ask whether it
// already posted, so duplicates are avoided by what is retried:
//   - the uploads happen before the post and are invisible until completed,
//     so they are retried freely;
//   - chat.postMessage is retried only when Slack cannot have posted: the
//     request was never sent whole, or Slack answered 429 (rate limited
//     requests are not processed) or 503. A dropped connection or a 500
//     after the request went out is reported, not retried;
//   - once the post succeeded it is never repeated: a failure to attach the
//     log after it is ErrPartial, which the Notifier's Ledger records as
//     delivered, so a rerun does not post the message again.
//
// The message's context line shows its delivery id, so two posts of one
// event (a rerun without a ledger) are recognisable as the same.
type SlackBot struct {
	token    string
	channel  string
	o        *options
	redactor *exec.Redactor
}

var _ Channel = (*SlackBot)(nil)

// NewSlackBot returns a Slack bot channel posting to channel (an id such as
// C0123ABCD, or a name such as #builds) with token.
func NewSlackBot(token, channel string, opts ...Option) (*SlackBot, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, configErrorf("notify slack: the bot token is empty")
	}
	if channel = strings.TrimSpace(channel); channel == "" {
		return nil, configErrorf("notify slack: channel is empty; write the channel id (C0123ABCD) or name (#builds)")
	}
	return &SlackBot{token: token, channel: channel, o: o, redactor: exec.NewRedactor(token)}, nil
}

// Name returns "slack <channel>".
func (s *SlackBot) Name() string { return "slack " + s.channel }

// Send uploads m's attachments, posts m, then shares the uploads in the
// message's thread.
func (s *SlackBot) Send(ctx context.Context, m Message) error {
	delivery := DeliveryID(m)
	var files []slackFile
	for _, a := range m.Attachments {
		id, err := s.upload(ctx, m.Event, delivery, a)
		if err != nil {
			return err
		}
		files = append(files, slackFile{ID: id, Title: a.Name})
	}
	var posted slackPostAnswer
	err := retry(ctx, s.o, s.Name(), m.Event, delivery, func(ctx context.Context) (time.Duration, error) {
		return s.call(ctx, "chat.postMessage", jsonBody(slackPost{
			Channel: s.channel, Text: slackFallback(m), Blocks: slackBlocks(m, delivery),
			UnfurlLinks: false, UnfurlMedia: false,
		}), &posted)
	}, slackPostRetryable)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	comment := fmt.Sprintf("Log of %s on %s", m.Event, m.Branch)
	err = retry(ctx, s.o, s.Name(), m.Event, delivery, func(ctx context.Context) (time.Duration, error) {
		return s.call(ctx, "files.completeUploadExternal", jsonBody(slackComplete{
			Files: files, ChannelID: posted.Channel, ThreadTS: posted.TS, InitialComment: comment,
		}), nil)
	}, slackRetryable)
	if err != nil {
		return fmt.Errorf("%s: %w: the message was posted (ts %s) but its log was not shared: %w", s.Name(), ErrPartial, posted.TS, err)
	}
	return nil
}

// upload gets an upload URL for a and sends its bytes there, returning the
// file id. Until files.completeUploadExternal shares it, the file is seen
// by no one, so both steps are retried like any idempotent request.
func (s *SlackBot) upload(ctx context.Context, event, delivery string, a Attachment) (string, error) {
	var got struct {
		UploadURL string `json:"upload_url"`
		FileID    string `json:"file_id"`
	}
	form := url.Values{"filename": {a.Name}, "length": {strconv.Itoa(len(a.Data))}}
	err := retry(ctx, s.o, s.Name(), event, delivery, func(ctx context.Context) (time.Duration, error) {
		return s.call(ctx, "files.getUploadURLExternal", formBody(form), &got)
	}, slackRetryable)
	if err != nil {
		return "", err
	}
	u, perr := url.Parse(got.UploadURL)
	if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || got.FileID == "" {
		return "", fmt.Errorf("%s: %w: files.getUploadURLExternal gave no usable upload URL and file id", s.Name(), ErrDelivery)
	}
	// The upload URL is signed: a credential for this file, kept out of
	// errors and logs.
	s.redactor.Add(got.UploadURL, u.RawQuery)
	err = retry(ctx, s.o, s.Name(), event, delivery, func(ctx context.Context) (time.Duration, error) {
		return s.send(ctx, "upload of "+a.Name, got.UploadURL, "application/octet-stream", a.Data, false, nil)
	}, slackRetryable)
	if err != nil {
		return "", err
	}
	return got.FileID, nil
}

// slackPost is chat.postMessage's body.
type slackPost struct {
	Channel     string       `json:"channel"`
	Text        string       `json:"text"`
	Blocks      []slackBlock `json:"blocks"`
	UnfurlLinks bool         `json:"unfurl_links"`
	UnfurlMedia bool         `json:"unfurl_media"`
}

// slackPostAnswer is what chat.postMessage answers besides ok: the
// channel's id, which files.completeUploadExternal needs, and the message's
// ts, the thread to put the log in.
type slackPostAnswer struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

type slackFile struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type slackComplete struct {
	Files          []slackFile `json:"files"`
	ChannelID      string      `json:"channel_id"`
	ThreadTS       string      `json:"thread_ts,omitempty"`
	InitialComment string      `json:"initial_comment"`
}

type body struct {
	contentType string
	data        []byte
	err         error
}

func jsonBody(v any) body {
	b, err := json.Marshal(v)
	return body{contentType: "application/json; charset=utf-8", data: b, err: err}
}

// formBody is for files.getUploadURLExternal, which takes only form
// encoding.
func formBody(v url.Values) body {
	return body{contentType: "application/x-www-form-urlencoded", data: []byte(v.Encode())}
}

// call invokes a Web API method with the bot token and decodes the answer
// into out. Slack answers 200 with {"ok": false, "error": "..."} for most
// failures, so ok is checked, not only the status.
func (s *SlackBot) call(ctx context.Context, method string, b body, out any) (time.Duration, error) {
	if b.err != nil {
		return 0, &slackError{method: method, msg: "encode request: " + b.err.Error()}
	}
	var raw []byte
	wait, err := s.send(ctx, method, s.o.slackAPI+method, b.contentType, b.data, true, &raw)
	if err != nil {
		return wait, err
	}
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return 0, &slackError{method: method, written: true, msg: "answer is not JSON: " + s.redactor.String(oneLine(truncateUTF8(string(raw), 200)))}
	}
	if !answer.OK {
		e := &slackError{method: method, written: true, code: answer.Error}
		// ratelimited: not processed. The others are Slack's own transient
		// faults, after which the call may or may not have taken effect.
		e.notDone = answer.Error == "ratelimited"
		e.temporary = e.notDone || answer.Error == "internal_error" || answer.Error == "fatal_error" ||
			answer.Error == "service_unavailable" || answer.Error == "request_timeout"
		return 0, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, &slackError{method: method, written: true, msg: "decode answer: " + err.Error()}
		}
	}
	return 0, nil
}

// send POSTs data to target once. With auth it carries the bot token; the
// upload URL gets none, since it is signed and may be another host. It
// returns the answer's Retry-After for a 429 or 503.
func (s *SlackBot) send(ctx context.Context, what, target, contentType string, data []byte, auth bool, answer *[]byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.timeout)
	defer cancel()
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { written.Store(info.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(data))
	if err != nil {
		return 0, &slackError{method: what, msg: s.redactor.String(err.Error())}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "hyperfork-notify")
	if auth {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.o.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, &slackError{method: what, written: written.Load(), temporary: true, msg: "no answer: " + s.redactor.String(err.Error())}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if answer != nil {
			*answer = raw
		}
		return 0, nil
	}
	e := &slackError{method: what, written: true, status: resp.StatusCode, msg: s.redactor.String(oneLine(truncateUTF8(string(raw), 200)))}
	e.notDone = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
	e.temporary = e.notDone || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500
	var wait time.Duration
	if e.notDone {
		wait = parseRetryAfter(resp.Header.Get("Retry-After"), s.o.now())
	}
	return wait, e
}

// slackError is one failed Slack request.
type slackError struct {
	method string
	status int    // HTTP status, if not 2xx
	code   string // Slack's error code, for ok: false
	msg    string
	// written: the request went out whole, so Slack may have acted on it.
	written bool
	// notDone: Slack said it did not act on the request.
	notDone bool
	// temporary: trying again later can help; otherwise the failure is
	// final (a bad token, a channel the app is not in).
	temporary bool
}

func (e *slackError) Error() string {
	var b strings.Builder
	b.WriteString(e.method)
	if e.status != 0 {
		fmt.Fprintf(&b, ": Slack answered %d %s", e.status, http.StatusText(e.status))
	}
	if e.code != "" {
		b.WriteString(": " + e.code)
		if hint := slackHints[e.code]; hint != "" {
			b.WriteString(" (" + hint + ")")
		}
	}
	if e.msg != "" {
		b.WriteString(": " + e.msg)
	}
	return b.String()
}

// slackHints say what to do about the errors a setup gets wrong.
var slackHints = map[string]string{
	"not_in_channel":    "invite the app to the channel: /invite @app",
	"channel_not_found": "check channel; a private channel needs the app invited",
	"invalid_auth":      "the token in tokenEnv is not valid",
	"not_authed":        "the token in tokenEnv is not valid",
	"missing_scope":     "give the app the chat:write and files:write scopes and reinstall it",
	"token_revoked":     "the token in tokenEnv was revoked; install the app again",
}

// slackRetryable is the rule for requests that are safe to repeat: every
// temporary failure.
func slackRetryable(err error) bool {
	e, ok := errors.AsType[*slackError](err)
	return ok && e.temporary
}

// slackPostRetryable is the rule for chat.postMessage, which posts again
// if repeated: only when Slack cannot have posted.
func slackPostRetryable(err error) bool {
	e, ok := errors.AsType[*slackError](err)
	return ok && e.temporary && (!e.written || e.notDone)
}
