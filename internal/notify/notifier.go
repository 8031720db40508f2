package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/killpoint"
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
	ledger    Ledger
	// Channel-specific: see WithTLSConfig, WithSlackAPI and WithStdout.
	tlsConfig *tls.Config
	slackAPI  string
	stdout    io.Writer
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
		slackAPI:  DefaultSlackAPI,
		stdout:    os.Stdout,
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

// WithLedger makes the Notifier skip a channel that already delivered a
// message's event (by DeliveryID) and record each delivery, so that a run
// that retries after some channels failed sends only to those. Without it,
// the caller's own dedupe decides whether to send again, to all channels.
func WithLedger(l Ledger) Option {
	return func(o *options) error {
		if l == nil {
			return configErrorf("notify: WithLedger: nil ledger")
		}
		o.ledger = l
		return nil
	}
}

// Ledger remembers which channel delivered which event. The pipeline keeps
// it in its state store, beside the branch's other records, so that it
// survives the run; a channel's Name identifies it there.
type Ledger interface {
	// Delivered reports whether channel already delivered the event with
	// this delivery id.
	Delivered(ctx context.Context, channel, delivery string) (bool, error)
	// Record notes that channel delivered it.
	Record(ctx context.Context, channel, delivery string) error
}

// Notifier sends each message to all its channels. It is itself a Channel,
// so notifiers nest.
type Notifier struct {
	channels []Channel
	log      *slog.Logger
	redactor *exec.Redactor
	now      func() time.Time
	ledger   Ledger
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
	return &Notifier{channels: channels, log: o.log, redactor: o.redactor, now: o.now, ledger: o.ledger}, nil
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
// With a Ledger, a channel that already delivered m's event is skipped.
func (n *Notifier) Send(ctx context.Context, m Message) error {
	m = n.prepare(m)
	delivery := DeliveryID(m)
	errs := make([]error, len(n.channels))
	var wg sync.WaitGroup
	for i, ch := range n.channels {
		log := n.log.With("channel", ch.Name(), "event", m.Event, "branch", m.Branch, "delivery", delivery)
		if f, ok := ch.(eventFilter); ok && !f.Accepts(m.Event) {
			log.Debug("notify: channel skips event")
			continue
		}
		wg.Go(func() {
			if n.delivered(ctx, log, ch, delivery) {
				log.Info("notify: already delivered by an earlier run; not sent again")
				return
			}
			err := ch.Send(ctx, m)
			if err == nil || errors.Is(err, ErrPartial) {
				// Crash tests: delivered, not in the ledger.
				killpoint.Reach("notify.delivered")
				n.record(ctx, log, ch, delivery)
			}
			if err != nil {
				errs[i] = fmt.Errorf("notify %s for branch %s: %w", m.Event, m.Branch, err)
				log.Error("notify: delivery failed", "err", errs[i])
				return
			}
			log.Info("notify: delivered")
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// delivered asks the ledger whether ch already delivered the event. A
// ledger that cannot answer means sending: a duplicate is better than a
// message lost.
func (n *Notifier) delivered(ctx context.Context, log *slog.Logger, ch Channel, delivery string) bool {
	if n.ledger == nil {
		return false
	}
	done, err := n.ledger.Delivered(ctx, ch.Name(), delivery)
	if err != nil {
		log.Warn("notify: cannot read the delivery ledger; sending", "err", err)
		return false
	}
	return done
}

// record notes a delivery. Failing to costs a possible duplicate on a rerun,
// not a message, so it is logged rather than failing the delivery.
func (n *Notifier) record(ctx context.Context, log *slog.Logger, ch Channel, delivery string) {
	if n.ledger == nil {
		return
	}
	if err := n.ledger.Record(ctx, ch.Name(), delivery); err != nil {
		log.Warn("notify: cannot record the delivery; a rerun may send it again", "err", err)
	}
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
	m.Reason = r.String(m.Reason)
	m.LogURL = r.Link(m.LogURL) // a presigned link keeps its signature
	if m.NewFailures != nil {
		fs := make([]Failure, len(m.NewFailures))
		for i, f := range m.NewFailures {
			f.Message = r.String(f.Message)
			fs[i] = f
		}
		m.NewFailures = fs
	}
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
	if m.ID == "" {
		// Set once here so that every channel, and the file channel's
		// record, carry the same id.
		m.ID = DeliveryID(m)
	}
	return m
}

// oneLine joins the lines of s with spaces, so that a title stays a subject.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
