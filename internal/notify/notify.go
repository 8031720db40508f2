// Package notify delivers one typed message, built once by the pipeline, to
// many channels: a folder of JSON files, signed webhooks, Slack, email and
// GitHub's job summary. Every stage speaks the same Message so that a
// receiver written for one event can read all of them, and so that adding a
// channel never touches a stage.
package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// Events. The value is "<stage>.<outcome>", which is what a receiver
// switches on (the X-Hyperfork-Event header carries it too) and what a
// channel's event filter names. The set is small on purpose: one event per
// outcome a person must act on or wants to know about, not one per step.
const (
	// EventSyncConflict: upstream does not merge cleanly; the fork branch
	// was left untouched and Text says which paths, which commits and the
	// commands that finish the merge by hand.
	EventSyncConflict = "sync.conflict"
	// EventSyncError: sync failed for another reason (fetch, push lease).
	EventSyncError = "sync.error"
	// EventBuildError: the build or the push of the candidate failed.
	EventBuildError = "build.error"
	// EventTestFailed: tests ran and some failed; nothing was published.
	EventTestFailed = "test.failed"
	// EventTestError: the tests could not run (cluster, runner, timeout);
	// nothing was published, and the fault is not the fork's code.
	EventTestError = "test.error"
	// EventReleasePublished: every test passed and the tested digest got its
	// stable tags. Image is the published ref@digest; Pushed is true.
	EventReleasePublished = "release.published"
	// EventReleaseFailed: tests passed but publishing failed, so Pushed
	// says whether anything reached the registry.
	EventReleaseFailed = "release.failed"
)

var knownEvents = []string{
	EventSyncConflict, EventSyncError, EventBuildError, EventTestFailed,
	EventTestError, EventReleasePublished, EventReleaseFailed,
}

// Events returns every event this package defines, so that config
// validation can reject a typo in a channel's event filter.
func Events() []string { return slices.Clone(knownEvents) }

// ValidEventFilter reports whether pattern names a known event, either
// exactly or as "<stage>.*".
func ValidEventFilter(pattern string) bool {
	return slices.ContainsFunc(knownEvents, func(e string) bool { return matchEvent(pattern, e) })
}

// matchEvent reports whether an event filter entry selects event. "sync.*"
// selects every sync event so that a filter survives new outcomes.
func matchEvent(pattern, event string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasSuffix(prefix, ".") && strings.HasPrefix(event, prefix)
	}
	return pattern == event
}

// Message is the one notification every stage sends. It is plain data and
// serializes to JSON with stable camelCase keys (the report's style); the
// webhook body and the file channel's files are exactly this JSON.
type Message struct {
	// Event is one of the Event constants.
	Event string `json:"event"`
	// Branch is the fork branch the message is about.
	Branch string `json:"branch"`
	// Title is one line for a subject or a chat preview. Line breaks are
	// replaced by spaces before sending.
	Title string `json:"title"`
	// Text is the plain-text body for people: for a conflict, the conflicted
	// paths, the commits per path and the commands that resolve it.
	Text string `json:"text"`
	// Status is the stage status from the report ("conflict", "failed", ...).
	Status string `json:"status,omitempty"`
	// ID names the event, the same on every run that would announce it
	// again, so that every channel gives it one stable delivery id (see
	// DeliveryID): the publish stage sets "<branch>/<event>/<fork commit>",
	// for example. Empty: the Notifier derives it from the message's
	// content without its time and attachments. An event that can happen
	// again with the same content (the same sync error after a recovery)
	// must name its occurrence, or receivers drop it as a duplicate.
	ID string `json:"id,omitempty"`

	// ForkCommit and UpstreamCommit are the full hashes the message is
	// about: the fork branch's commit that was built and tested, and the
	// upstream commit merged into it.
	ForkCommit     string `json:"forkCommit,omitempty"`
	UpstreamCommit string `json:"upstreamCommit,omitempty"`
	// Counts are the test outcomes, when tests ran.
	Counts *Counts `json:"counts,omitempty"`
	// NewFailures are the tests that failed in this run and passed before,
	// each with the commits suspected of breaking it. Channels show the
	// first ones and say how many more there are.
	NewFailures []Failure `json:"newFailures,omitempty"`

	// Pushed says whether the image was published: its tested digest got
	// its stable tags in the registry.
	Pushed bool `json:"pushed"`
	// Reason says why nothing was published, when Pushed is false and
	// publishing was in question ("2 new failures", "tests errored").
	Reason string `json:"reason,omitempty"`
	// Image is the image as ref@digest, when there is one.
	Image string `json:"image,omitempty"`
	// Tags are the tags the digest got (v1.37.2-12_0123abcd, release-1.37),
	// names only: Image's repository is theirs.
	Tags []string `json:"tags,omitempty"`
	// LogURL links to the test log for people, for channels that cannot
	// carry the log itself or when it is over their size limit.
	LogURL string `json:"logURL,omitempty"`

	// The stage outcomes, as in the JSON report, for receivers that want
	// structure rather than text.
	Sync    *report.Sync    `json:"sync,omitempty"`
	Build   *report.Build   `json:"build,omitempty"`
	Test    *report.Test    `json:"test,omitempty"`
	Publish *report.Publish `json:"publish,omitempty"`

	// Attachments are files sent along, such as the test log.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Time is when the event happened; the Notifier sets it if zero and
	// always sends it in UTC.
	Time time.Time `json:"time"`
}

// Attachment is a file sent with a message. Data is base64 in JSON.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	Data        []byte `json:"data"`
}

// Counts are a test run's outcomes. Flaky tests failed and then passed on a
// retry; they count in Passed too, as the report counts them.
type Counts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Flaky   int `json:"flaky"`
	Skipped int `json:"skipped"`
}

// Failure is a test that newly fails, with its suspect range: the commits
// between the last run where it passed and this one.
type Failure struct {
	// Test is the spec's full name.
	Test string `json:"test"`
	// Message is the start of the failure message, one line.
	Message string `json:"message,omitempty"`
	// Suspects are the commits of the range, newest first.
	Suspects []Commit `json:"suspects,omitempty"`
}

// Commit is one commit of a suspect range.
type Commit struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
	// Side is SideUpstream or SideCarry.
	Side string `json:"side"`
}

// Sides of a suspect commit: it came from upstream, or it is one of the
// fork's own carried patches, which is usually where to look first.
const (
	SideUpstream = "upstream"
	SideCarry    = "carry"
)

// Channel delivers messages to one destination. Send must be safe for
// concurrent use, and its error must start with the channel's Name so that
// a joined error from several channels says which one failed.
type Channel interface {
	// Name identifies the channel in logs and errors, such as
	// "webhook https://example.com/…". It never contains a secret.
	Name() string
	// Send delivers m, retrying as the channel sees fit, and returns only
	// when m was delivered, was given up on, or ctx ended.
	Send(ctx context.Context, m Message) error
}

// Sentinel errors, wrapped by the errors that New and the channels return so
// that callers can use errors.Is.
var (
	// ErrUnsupported: a channel type that is planned but not built yet. Every
	// type of Spec is built now; the sentinel stays for callers that test it.
	ErrUnsupported = errors.New("not supported yet")
	// ErrConfig: a channel spec or option is invalid.
	ErrConfig = errors.New("invalid notify configuration")
	// ErrDelivery: a channel gave up delivering a message.
	ErrDelivery = errors.New("delivery failed")
	// ErrPartial: a channel delivered the message but not all of it (the
	// log upload after a Slack post failed). It wraps ErrDelivery, so it is
	// reported like any failure, but the message must not be sent again:
	// a Ledger records it as delivered.
	ErrPartial = fmt.Errorf("%w: message delivered without its attachments", ErrDelivery)
)

// configError is an ErrConfig whose message is only its own text, so that
// a message for people does not start with the sentinel's words.
type configError struct{ msg string }

func (e *configError) Error() string        { return e.msg }
func (e *configError) Is(target error) bool { return target == ErrConfig }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// eventFilter is the optional capability a Channel has when it receives only
// some events. The Notifier discovers it with a type assertion so that a
// skipped channel is logged as skipped, not as delivered.
type eventFilter interface {
	Accepts(event string) bool
}

// Filtered is a Channel that passes on only the events it names.
type Filtered struct {
	Channel
	// Events are event names or "<stage>.*" patterns; empty means all.
	Events []string
}

var (
	_ Channel     = (*Filtered)(nil)
	_ eventFilter = (*Filtered)(nil)
)

// Filter wraps ch so that it receives only the given events (exact names or
// "<stage>.*"). With no events it returns ch itself.
func Filter(ch Channel, events ...string) Channel {
	if len(events) == 0 {
		return ch
	}
	return &Filtered{Channel: ch, Events: slices.Clone(events)}
}

// Accepts reports whether the filter lets event through.
func (f *Filtered) Accepts(event string) bool {
	return len(f.Events) == 0 || slices.ContainsFunc(f.Events, func(p string) bool { return matchEvent(p, event) })
}

// Send passes m to the wrapped channel if its event is accepted, and
// otherwise does nothing: a filtered-out event is not a failure.
func (f *Filtered) Send(ctx context.Context, m Message) error {
	if !f.Accepts(m.Event) {
		return nil
	}
	return f.Channel.Send(ctx, m)
}
