package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Defaults for HTTP delivery. Four attempts over about 3.5 s ride out a
// receiver's restart without holding a scheduled run for long.
const (
	DefaultAttempts  = 4
	DefaultBaseDelay = 500 * time.Millisecond
	DefaultTimeout   = 30 * time.Second
	// MaxRetryAfter caps a receiver's Retry-After so that a misbehaving
	// receiver cannot park the pipeline for an hour.
	MaxRetryAfter = time.Minute
)

// options is what the functional options set. One struct serves the
// Notifier and every channel; each reads the fields that concern it.
type options struct {
	client    *http.Client
	attempts  int
	baseDelay time.Duration
	timeout   time.Duration
	log       *slog.Logger
	redactor  *exec.Redactor
	now       func() time.Time
}

func defaultOptions() *options {
	return &options{
		client: &http.Client{
			// A 301/302 would turn the POST into a bodiless GET that a
			// receiver may answer with 200: a silent loss. Report it instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		attempts:  DefaultAttempts,
		baseDelay: DefaultBaseDelay,
		timeout:   DefaultTimeout,
		log:       slog.New(slog.DiscardHandler),
		redactor:  exec.NewRedactor(),
		now:       time.Now,
	}
}

func applyOptions(opts []Option) (*options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Option configures New, NewNotifier and the channel constructors. An option
// that does not concern what is being built is ignored.
type Option func(*options) error

// WithHTTPClient sets the client for webhook and Slack delivery. Its own
// Timeout, if any, applies in addition to the per-attempt timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return configErrorf("notify: WithHTTPClient: nil client")
		}
		o.client = c
		return nil
	}
}

// WithRetry sets how many times an HTTP delivery is attempted in all and the
// delay before the first retry, which doubles for each further retry.
func WithRetry(attempts int, baseDelay time.Duration) Option {
	return func(o *options) error {
		if attempts < 1 || baseDelay < 0 {
			return configErrorf("notify: WithRetry(%d, %s): need at least 1 attempt and a delay of 0 or more", attempts, baseDelay)
		}
		o.attempts, o.baseDelay = attempts, baseDelay
		return nil
	}
}

// WithTimeout bounds each HTTP attempt, so that a receiver that accepts the
// connection and never answers costs one attempt, not the whole run.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return configErrorf("notify: WithTimeout(%s): need a positive duration", d)
		}
		o.timeout = d
		return nil
	}
}

// WithLogger sets where deliveries, retries and skips are logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return configErrorf("notify: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithRedactor makes the Notifier hide these secrets in every message before
// any channel sees it: a stage's text may quote a command line or a log.
// New adds the webhook URLs and secrets it reads to the same redactor.
func WithRedactor(r *exec.Redactor) Option {
	return func(o *options) error {
		if r == nil {
			return configErrorf("notify: WithRedactor: nil redactor")
		}
		o.redactor = r
		return nil
	}
}

// WithClock sets the clock that stamps messages without a Time; tests use it
// to get stable file names.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return configErrorf("notify: WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// Notifier sends each message to all its channels. It is itself a Channel,
// so notifiers nest.
type Notifier struct {
	channels []Channel
	log      *slog.Logger
	redactor *exec.Redactor
	now      func() time.Time
}

var _ Channel = (*Notifier)(nil)

// NewNotifier returns a Notifier over channels. Wrap a channel with Filter to
// limit the events it receives.
func NewNotifier(channels []Channel, opts ...Option) (*Notifier, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	for i, ch := range channels {
		if ch == nil {
			return nil, configErrorf("notify: channel %d is nil", i)
		}
	}
	return &Notifier{channels: channels, log: o.log, redactor: o.redactor, now: o.now}, nil
}

// Name returns the names of the channels, for logs.
func (n *Notifier) Name() string {
	names := make([]string, len(n.channels))
	for i, ch := range n.channels {
		names[i] = ch.Name()
	}
	return "notify [" + strings.Join(names, ", ") + "]"
}

// Channels returns the channels, in order.
func (n *Notifier) Channels() []Channel { return append([]Channel(nil), n.channels...) }

// Send delivers m to every channel that accepts its event, all at once so
// that a slow receiver's retries do not delay the others. It returns the
// joined errors of every channel that failed, in channel order: one
// receiver's failure never hides another's, and never stops the others.
func (n *Notifier) Send(ctx context.Context, m Message) error {
	m = n.prepare(m)
	errs := make([]error, len(n.channels))
	var wg sync.WaitGroup
	for i, ch := range n.channels {
		if f, ok := ch.(eventFilter); ok && !f.Accepts(m.Event) {
			n.log.Debug("notify: channel skips event", "channel", ch.Name(), "event", m.Event, "branch", m.Branch)
			continue
		}
		wg.Go(func() {
			if err := ch.Send(ctx, m); err != nil {
				errs[i] = fmt.Errorf("notify %s for branch %s: %w", m.Event, m.Branch, err)
				n.log.Error("notify: delivery failed", "channel", ch.Name(), "event", m.Event, "branch", m.Branch, "err", errs[i])
				return
			}
			n.log.Info("notify: delivered", "channel", ch.Name(), "event", m.Event, "branch", m.Branch)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepare returns the message as channels see it: stamped, in UTC, with a
// one-line title and secrets hidden. It copies what it changes so that the
// caller's message and report structs are never modified.
func (n *Notifier) prepare(m Message) Message {
	if m.Time.IsZero() {
		m.Time = n.now()
	}
	// Round(0) drops the monotonic reading, which JSON cannot carry, so
	// the message read back from a file equals the one sent.
	m.Time = m.Time.UTC().Round(0)
	r := n.redactor
	m.Title = r.String(oneLine(m.Title))
	m.Text = r.String(m.Text)
	m.Status = r.String(m.Status)
	if m.Sync != nil {
		s := *m.Sync
		s.Resolution, s.Message = r.String(s.Resolution), r.String(s.Message)
		m.Sync = &s
	}
	if m.Build != nil {
		b := *m.Build
		b.Message = r.String(b.Message)
		m.Build = &b
	}
	if m.Attachments != nil {
		atts := make([]Attachment, len(m.Attachments))
		for i, a := range m.Attachments {
			// Only text is redacted: replacing bytes in a binary would
			// corrupt it, and logs, the likely carriers of secrets, are text.
			if strings.HasPrefix(a.ContentType, "text/") || strings.HasSuffix(a.ContentType, "json") || strings.HasSuffix(a.ContentType, "xml") {
				if red := r.String(string(a.Data)); red != string(a.Data) {
					a.Data = []byte(red)
				}
			}
			atts[i] = a
		}
		m.Attachments = atts
	}
	return m
}

// oneLine joins the lines of s with spaces, so that a title stays a subject.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
