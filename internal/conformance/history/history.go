// Package history keeps every conformance run's per-test results for ever,
// compactly, in the state store, and reads them back to say which failures
// are new, which persist, which tests flake and when a test broke.
//
// A branch's history is one document per calendar month (UTC) under
// history/<branch>/<YYYY-MM>.json.gz, listed by history/<branch>/index.json.
// A month is gzip'd JSON: the tests seen that month, once each; the
// normalised failure messages, once per cluster; and per run one byte per
// test for its outcome, its duration in milliseconds and, for failures, the
// index of its message. Append writes with compare-and-swap, so runners
// that share a store never lose each other's runs.
package history

import (
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// Run is one test run of a candidate, as the test stage hands it over.
type Run struct {
	// ID names the run uniquely in its branch; appending a run with an ID
	// already recorded replaces it.
	ID   string
	Time time.Time
	// Commit is the fork commit the candidate was built from; Candidate
	// is its digest (or ref@digest).
	Commit    string
	Candidate string
	// Result is the merged JUnit of all the run's passes; nil when the run
	// produced none.
	Result *junit.Result
	// Infra marks a run the infrastructure failed (the runner timed out
	// or died, the cluster did not come up). A run whose Result has
	// InfraFailures is infra whatever this says. InfraReason says why, for
	// people.
	Infra       bool
	InfraReason string
	// Retried maps each spec that was rerun to its outcome on the first
	// attempt; nil means Result.Retried.
	Retried map[junit.ID]junit.Case
}

// Outcome is a test's result in one run; it is stored as one byte.
type Outcome byte

// The outcomes. Absent is a test the run did not report (or reported only
// as left out by its focus).
const (
	Absent      Outcome = 0
	Passed      Outcome = 'P'
	Skipped     Outcome = 'S' // skipped itself, with a reason
	Failed      Outcome = 'F'
	TimedOut    Outcome = 'T'
	Aborted     Outcome = 'A'
	Panicked    Outcome = 'X'
	Interrupted Outcome = 'I'
	Errored     Outcome = 'E'
)

// Failed reports an outcome that is a failure of any kind.
func (o Outcome) Failed() bool {
	switch o {
	case Failed, TimedOut, Aborted, Panicked, Interrupted, Errored:
		return true
	}
	return false
}

// Status is the JUnit status the outcome came from; "" for Absent.
func (o Outcome) Status() junit.Status {
	switch o {
	case Passed:
		return junit.Passed
	case Skipped:
		return junit.Skipped
	case Failed, TimedOut, Aborted:
		return junit.Failed
	case Panicked, Interrupted, Errored:
		return junit.Error
	}
	return ""
}

func (o Outcome) String() string {
	switch o {
	case Absent:
		return "absent"
	case Passed:
		return "passed"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	case TimedOut:
		return "timedout"
	case Aborted:
		return "aborted"
	case Panicked:
		return "panicked"
	case Interrupted:
		return "interrupted"
	case Errored:
		return "error"
	}
	return "Outcome(" + string(rune(o)) + ")"
}

// outcomeOf maps a JUnit case to its outcome.
func outcomeOf(c junit.Case) Outcome {
	switch c.Status {
	case junit.Passed:
		return Passed
	case junit.Skipped:
		return Skipped
	case junit.Failed:
		switch c.FailureType {
		case "timedout":
			return TimedOut
		case "aborted":
			return Aborted
		}
		return Failed
	case junit.Error:
		switch c.FailureType {
		case "panicked":
			return Panicked
		case "interrupted":
			return Interrupted
		}
		return Errored
	}
	return Absent
}

// validOutcome reports a byte that a document may hold.
func validOutcome(b byte) bool {
	switch Outcome(b) {
	case Passed, Skipped, Failed, TimedOut, Aborted, Panicked, Interrupted, Errored:
		return true
	}
	return false
}

// History is a branch's recorded runs, oldest first.
type History struct {
	Branch string
	// Tests are every test the loaded runs reported; a Record's Entries are
	// indexed like Tests.
	Tests []Test
	// Clusters are the normalised failure messages; Clusters[0] is "" and
	// stands for no message.
	Clusters []string
	Runs     []Record

	index map[junit.ID]int
}

// Test is a test, suite node or runner step seen in the history.
type Test struct {
	junit.ID
	Kind junit.Kind
}

// Record is one recorded run.
type Record struct {
	ID          string
	Time        time.Time
	Commit      string
	Candidate   string
	Infra       bool
	InfraReason string
	// Entries are indexed like History.Tests; tests past the end are
	// absent from the run.
	Entries []Entry
}

// Entry returns the run's entry for a test; the zero Entry (Absent) when
// the run did not report it.
func (r *Record) Entry(test int) Entry {
	if test < 0 || test >= len(r.Entries) {
		return Entry{}
	}
	return r.Entries[test]
}

// Entry is one test in one run.
type Entry struct {
	Outcome  Outcome
	Duration time.Duration // to the millisecond
	// Cluster indexes History.Clusters: the normalised message of a
	// failure or skip; 0 for none.
	Cluster int
	// Retry is the outcome of the first attempt when the test was rerun
	// (Absent when it was not), RetryCluster its message.
	Retry        Outcome
	RetryCluster int
}

// Flaked reports a test that failed and then passed on the rerun.
func (e Entry) Flaked() bool { return e.Outcome == Passed && e.Retry.Failed() }

// TestIndex finds a test by its ID.
func (h *History) TestIndex(id junit.ID) (int, bool) {
	i, ok := h.index[id]
	return i, ok
}

// Message is the normalised message of cluster i.
func (h *History) Message(i int) string {
	if i <= 0 || i >= len(h.Clusters) {
		return ""
	}
	return h.Clusters[i]
}

// RunRef names a recorded run.
type RunRef struct {
	Index     int // in History.Runs
	ID        string
	Time      time.Time
	Commit    string
	Candidate string
}

// Ref names run i.
func (h *History) Ref(i int) RunRef {
	r := &h.Runs[i]
	return RunRef{Index: i, ID: r.ID, Time: r.Time, Commit: r.Commit, Candidate: r.Candidate}
}
