package history

import (
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// entry is a test of a run about to be appended: what a month stores of it.
type entry struct {
	id       junit.ID
	kind     junit.Kind
	outcome  Outcome
	millis   int64
	message  string // normalised
	retry    Outcome
	retryMsg string
}

// entries reads what a run records: every spec that ran or skipped itself
// with a reason, and every suite node and runner step. A spec that the
// focus left out ("skipped", "pending") is not recorded: a conformance run
// lists some 7,000 of them. A test reported twice (a suite node of each
// pass) keeps its worst outcome.
func entries(run Run) []entry {
	if run.Result == nil {
		return nil
	}
	retried := run.Retried
	if retried == nil {
		retried = run.Result.Retried
	}
	var out []entry
	at := map[junit.ID]int{}
	for _, c := range run.Result.Cases {
		o := outcomeOf(c)
		if c.Kind == junit.Spec && o == Skipped && leftOut(c.Message) {
			continue
		}
		e := entry{id: c.ID(), kind: c.Kind, outcome: o, millis: c.Duration.Round(time.Millisecond).Milliseconds()}
		if o.Failed() || o == Skipped {
			e.message = Normalize(c.Message)
		}
		if first, ok := retried[e.id]; ok {
			e.retry = outcomeOf(first)
			if e.retry.Failed() {
				e.retryMsg = Normalize(first.Message)
			}
		}
		if i, ok := at[e.id]; ok {
			if worse(e.outcome, out[i].outcome) {
				out[i] = e
			}
			continue
		}
		at[e.id] = len(out)
		out = append(out, e)
	}
	return out
}

// leftOut reports ginkgo's message for a spec it did not select, or one
// marked pending, as opposed to "skipped - reason".
func leftOut(msg string) bool {
	msg = strings.TrimSpace(msg)
	return msg == "" || msg == "skipped" || msg == "pending"
}

// worse orders outcomes: failures, then a pass, then a skip, then absence.
func worse(a, b Outcome) bool { return rank(a) > rank(b) }

func rank(o Outcome) int {
	switch {
	case o.Failed():
		return 3
	case o == Passed:
		return 2
	case o == Skipped:
		return 1
	}
	return 0
}
