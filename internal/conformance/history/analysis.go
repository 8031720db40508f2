package history

import (
	"cmp"
	"slices"
	"strings"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// verdict is what one run says about one test once infrastructure
// failures are set aside.
type verdict int

const (
	noVerdict verdict = iota // absent, skipped, or a failure that does not count
	pass
	fail
	flake // failed, then passed on the rerun
)

// verdict reads run i for test t. A failure in an infra run does not count
// against the test; a pass there does.
func (h *History) verdict(i, t int) verdict {
	e := h.Runs[i].Entry(t)
	switch {
	case e.Flaked():
		return flake
	case e.Outcome == Passed:
		return pass
	case e.Outcome.Failed() && !h.Runs[i].Infra:
		return fail
	}
	return noVerdict
}

// Flakiness is a test's flakiness over the loaded runs.
type Flakiness struct {
	Test int
	// Percent is TestGrid's flip flakiness, 0 to 100: Flips out of
	// Considered runs.
	Percent    float64
	Flips      int
	Considered int
	// Flakes counts the runs in which the test failed and passed on the
	// rerun.
	Flakes int
}

// ignoreFailuresInARow is TestGrid's: a run of this many failures or more
// is a breakage, not flakiness, and is left out.
const ignoreFailuresInARow = 3

// Flakiness computes test t's flakiness the way TestGrid does
// (GoogleCloudPlatform/testgrid, pkg/summarizer/flakiness.go and
// pkg/summarizer/analyzers/flipanalyzer.go, calculateFlipFlakiness):
//
//   - a run counts when the test passed, failed, or flaked (failed, then
//     passed on the rerun); absent and skipped runs do not, nor failures in
//     infra runs, nor failures in runs in which no test passed at all
//     (TestGrid's "failing columns"; only when the history has more than
//     one test);
//   - a run of 3 or more consecutive failures is left out entirely;
//   - of the runs that count, a flip is a failure that follows a pass (or
//     starts the history), and every flake;
//   - Percent = 100 × flips / counted runs.
//
// So it is the share of runs in which the test flipped to failing relative
// to the previous counted run, rather than every change of status: a test
// that fails once between passes has one flip, not two.
func (h *History) Flakiness(t int) Flakiness {
	return h.flakiness(t, h.failingColumns())
}

func (h *History) flakiness(t int, failing []bool) Flakiness {
	f := Flakiness{Test: t}
	var vs []verdict
	for i := range h.Runs {
		v := h.verdict(i, t)
		if v == fail && failing[i] {
			v = noVerdict
		}
		if v == flake {
			f.Flakes++
		}
		if v != noVerdict {
			vs = append(vs, v)
		}
	}
	lastPassing := true
	for i := 0; i < len(vs); {
		n := 0
		for i+n < len(vs) && vs[i+n] == fail {
			n++
		}
		if n >= ignoreFailuresInARow {
			i += n
			continue
		}
		f.Considered++
		switch vs[i] {
		case pass:
			lastPassing = true
		case flake:
			f.Flips++
			lastPassing = true
		case fail:
			if lastPassing {
				f.Flips++
			}
			lastPassing = false
		}
		i++
	}
	if f.Considered > 0 {
		f.Percent = 100 * float64(f.Flips) / float64(f.Considered)
	}
	return f
}

// failingColumns marks the runs in which no spec passed or flaked.
func (h *History) failingColumns() []bool {
	out := make([]bool, len(h.Runs))
	specs := 0
	for _, t := range h.Tests {
		if t.Kind == junit.Spec {
			specs++
		}
	}
	if specs <= 1 {
		return out
	}
	for i := range h.Runs {
		out[i] = true
		for t, e := range h.Runs[i].Entries {
			if h.Tests[t].Kind == junit.Spec && e.Outcome == Passed {
				out[i] = false
				break
			}
		}
	}
	return out
}

// Flakiest returns the specs with a flakiness above zero, flakiest first,
// at most n of them (all when n is 0 or less).
func (h *History) Flakiest(n int) []Flakiness {
	var out []Flakiness
	failing := h.failingColumns()
	for t, test := range h.Tests {
		if test.Kind != junit.Spec {
			continue
		}
		if f := h.flakiness(t, failing); f.Percent > 0 {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Flakiness) int {
		if c := cmp.Compare(b.Percent, a.Percent); c != 0 {
			return c
		}
		return strings.Compare(h.Tests[a.Test].Name, h.Tests[b.Test].Name)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// Streak is a run of failures of one test with no pass between them. Runs
// in which the test did not count (absent, skipped, failed in an infra run)
// neither extend nor end a streak; a flake ends it, since the candidate
// passed.
type Streak struct {
	Test int
	// First and Last are the first and the last failing run.
	First, Last RunRef
	// Failures counts the failing runs.
	Failures int
	// LastPassing is the newest run before First in which the test passed;
	// nil when it never did. With First it brackets the change that broke
	// the test.
	LastPassing *RunRef
	// Open means no pass followed: the test is failing still.
	Open bool
}

// Streaks returns test t's failure streaks, oldest first.
func (h *History) Streaks(t int) []Streak { return h.streaks(t, len(h.Runs)) }

// streaks is Streaks as of the runs before end.
func (h *History) streaks(t, end int) []Streak {
	var out []Streak
	var lastPass *RunRef
	var cur *Streak
	for i := range end {
		switch h.verdict(i, t) {
		case pass, flake:
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
			ref := h.Ref(i)
			lastPass = &ref
		case fail:
			if cur == nil {
				cur = &Streak{Test: t, First: h.Ref(i), LastPassing: lastPass}
			}
			cur.Last = h.Ref(i)
			cur.Failures++
		}
	}
	if cur != nil {
		cur.Open = true
		out = append(out, *cur)
	}
	return out
}

// Current is test t's open streak: it failed in the newest run that
// counted for it.
func (h *History) Current(t int) (Streak, bool) {
	s := h.Streaks(t)
	if len(s) == 0 || !s[len(s)-1].Open {
		return Streak{}, false
	}
	return s[len(s)-1], true
}

// Class is how a failure in a run reads against the history.
type Class string

const (
	// New: the test passed the last time it counted, or never ran before.
	New Class = "new"
	// Persistent: the test failed the last time it counted too.
	Persistent Class = "persistent"
	// Flaky: the test failed, then passed on the rerun; the candidate
	// passes, the flake stays on record.
	Flaky Class = "flaky"
	// Infra: the failure is in an infra run and says nothing about the
	// test.
	Infra Class = "infra"
)

// Failure is one classified failure of a run.
type Failure struct {
	Test    int
	Class   Class
	Outcome Outcome // for a flake, the first attempt's
	Cluster int
	// Streak is, for New and Persistent, the streak this failure is part
	// of: its First and LastPassing bracket the change that broke the test.
	Streak Streak
}

// Classification is a run's failures read against the runs before it.
type Classification struct {
	Run RunRef
	// Infra marks a run the infrastructure failed; InfraReasons say where
	// (a suite node or runner step that failed, a spec interrupted or
	// stopped by the suite's timeout, the runner's own reason).
	Infra        bool
	InfraReasons []string
	New          []Failure
	Persistent   []Failure
	Flaky        []Failure
	// InfraFailures are the spec failures of an infra run: none of them
	// counts against its test.
	InfraFailures []Failure
}

// Failed reports whether the candidate failed on its tests: a new or
// persistent failure in a run that is not infra.
func (c *Classification) Failed() bool {
	return !c.Infra && len(c.New)+len(c.Persistent) > 0
}

// Classify reads run i's spec failures against the runs before it.
func (h *History) Classify(i int) Classification {
	rec := &h.Runs[i]
	c := Classification{Run: h.Ref(i), Infra: rec.Infra}
	if rec.InfraReason != "" {
		c.InfraReasons = append(c.InfraReasons, rec.InfraReason)
	}
	// As junit's InfraFailures: kubetest2's Test step fails whenever a spec
	// does, and is the infrastructure's only when no spec failed.
	specFailed := false
	for t, e := range rec.Entries {
		if h.Tests[t].Kind == junit.Spec && e.Outcome.Failed() && !h.stoppedBySuite(e) {
			specFailed = true
		}
	}
	for t, e := range rec.Entries {
		test := h.Tests[t]
		if test.Kind != junit.Spec {
			if rec.Infra && e.Outcome.Failed() && !(test.Kind == junit.RunnerStep && test.Name == "Test" && specFailed) {
				c.InfraReasons = append(c.InfraReasons, test.Name+" "+e.Outcome.String())
			}
			continue
		}
		switch {
		case e.Flaked():
			c.Flaky = append(c.Flaky, Failure{Test: t, Class: Flaky, Outcome: e.Retry, Cluster: e.RetryCluster})
		case !e.Outcome.Failed():
		case rec.Infra:
			c.InfraFailures = append(c.InfraFailures, Failure{Test: t, Class: Infra, Outcome: e.Outcome, Cluster: e.Cluster})
			if h.stoppedBySuite(e) {
				c.InfraReasons = append(c.InfraReasons, test.Name+" "+e.Outcome.String())
			}
		default:
			f := Failure{Test: t, Class: New, Outcome: e.Outcome, Cluster: e.Cluster}
			if h.previous(i, t) == fail {
				f.Class = Persistent
			}
			s := h.streaks(t, i+1)
			f.Streak = s[len(s)-1]
			if f.Class == New {
				c.New = append(c.New, f)
			} else {
				c.Persistent = append(c.Persistent, f)
			}
		}
	}
	return c
}

// stoppedBySuite reports a spec interrupted, or stopped by the suite's
// timeout (ginkgo: "A suite timeout occurred"), rather than failed.
func (h *History) stoppedBySuite(e Entry) bool {
	return e.Outcome == Interrupted || (e.Outcome == TimedOut && strings.Contains(h.Message(e.Cluster), "A suite timeout occurred"))
}

// previous is test t's verdict in the newest run before i that counted.
func (h *History) previous(i, t int) verdict {
	for j := i - 1; j >= 0; j-- {
		if v := h.verdict(j, t); v != noVerdict {
			return v
		}
	}
	return noVerdict
}

// Names are the names of the failures' tests.
func (h *History) Names(fs []Failure) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = h.Tests[f.Test].Name
	}
	return out
}
