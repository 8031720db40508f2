package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Webhook is a channel that POSTs each message as JSON (the Message itself)
// to a URL. With a secret, the X-Hyperfork-Signature-256 header carries the
// HMAC-SHA256 of the exact body, as GitHub signs its webhooks; every
// request also carries X-Hyperfork-Event and X-Hyperfork-Delivery, the
// event's stable id (DeliveryID): the same across the retries of one message
// and across runs that announce the same event, so a receiver drops repeats.
//
// 5xx, 408, 429 and network errors are retried with exponential backoff (a
// Retry-After header is honoured, up to MaxRetryAfter); any other answer is
// final, since sending the same body again cannot change it. Redirects are
// not followed. Errors show the URL as scheme://host/… only.
type Webhook struct {
	p *poster
}

var _ Channel = (*Webhook)(nil)

// NewWebhook returns a Webhook channel posting to url, signing with secret
// unless it is empty.
func NewWebhook(url, secret string, opts ...Option) (*Webhook, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	p, err := newPoster("webhook", url, secret, o)
	if err != nil {
		return nil, err
	}
	return &Webhook{p: p}, nil
}

// Name returns "webhook scheme://host/…".
func (w *Webhook) Name() string { return w.p.name }

// Send posts m and returns when the receiver accepted it or was given up on.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%s: encode %s message: %w", w.Name(), m.Event, err)
	}
	return w.p.post(ctx, m, body)
}

// slackTextLimit keeps a message under Slack's 40,000-character limit for
// the text field, with room for the title and the truncation note.
const slackTextLimit = 38000

// Slack is a channel that posts to a Slack incoming webhook: {"text": ...}
// with the title in bold, the facts (commits, counts, image, tags, log
// link) and new failures as lines, and the body in a code block, since
// conflict resolutions are commands that must survive copy and paste.
// Attachments are listed by name only; incoming webhooks cannot carry
// files (SlackBot can). Retries are
// those of Webhook. Slack does not verify signatures, so there is no secret;
// the URL is the secret, and errors show only its host.
type Slack struct {
	p *poster
}

var _ Channel = (*Slack)(nil)

// NewSlack returns a Slack channel posting to the incoming-webhook url.
func NewSlack(url string, opts ...Option) (*Slack, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	p, err := newPoster("slack", url, "", o)
	if err != nil {
		return nil, err
	}
	return &Slack{p: p}, nil
}

// Name returns "slack scheme://host/…".
func (s *Slack) Name() string { return s.p.name }

// Send posts m's text to Slack.
func (s *Slack) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(struct {
		Text string `json:"text"`
	}{SlackText(m)})
	if err != nil {
		return fmt.Errorf("%s: encode %s message: %w", s.Name(), m.Event, err)
	}
	return s.p.post(ctx, m, body)
}

// slackEscaper escapes the three characters Slack's mrkdwn reserves, so that
// a path like <nil> or a shell redirect shows as written.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackText returns the text the Slack channel posts for m.
func SlackText(m Message) string {
	var b strings.Builder
	v := newView(m)
	fmt.Fprintf(&b, "*%s*", slackEscaper.Replace(v.Title))
	for _, f := range v.Facts {
		if f.Label == "Branch" {
			continue // the title names it
		}
		val := slackEscaper.Replace(f.Value)
		if f.Code {
			val = slackCode(f.Value)
		}
		fmt.Fprintf(&b, "\n%s: %s", f.Label, val)
	}
	if len(v.Failures) > 0 {
		fmt.Fprintf(&b, "\nNew failures (%d):", v.FailureCount())
		for _, f := range v.Failures {
			fmt.Fprintf(&b, "\n• %s", slackCode(f.Test))
			for _, c := range f.Suspects {
				fmt.Fprintf(&b, "\n      %s %s: %s", slackCode(shortHash(c.Hash)), c.Side, slackEscaper.Replace(oneLine(c.Subject)))
			}
		}
		if v.MoreFailures > 0 {
			fmt.Fprintf(&b, "\nand %d more", v.MoreFailures)
		}
	}
	if text := strings.TrimRight(m.Text, "\n"); text != "" {
		if len(text) > slackTextLimit {
			text = truncateUTF8(text, slackTextLimit) + "\n… (truncated; the full text is in the file channel and the report)"
		}
		// Three backticks inside would end the block early.
		text = strings.ReplaceAll(text, "```", "'''")
		fmt.Fprintf(&b, "\n```\n%s\n```", slackEscaper.Replace(text))
	}
	for _, a := range m.Attachments {
		fmt.Fprintf(&b, "\nAttached: %s (%d bytes, not sent to Slack)", slackEscaper.Replace(a.Name), len(a.Data))
	}
	return b.String()
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
