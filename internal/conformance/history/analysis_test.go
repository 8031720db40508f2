package history

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// A branch's runs, from the recorded fixtures, through a real store: a
// failure is new, then persistent, then fixed; a flake; infra runs whose
// failures do not count against their tests.
func TestSequence(t *testing.T) {
	s := folder(t)
	flakeAndFail := map[string]junit.Status{basicEndpoint: junit.Passed, rollover: junit.Failed}
	mustAppend(t, s, "master",
		run("d1", 1, fixture(t, "passing.xml")),
		run("d2", 2, junit.Merge(fixture(t, "failures.xml"), rerun(flakeAndFail))),
		run("d3", 3, junit.Merge(fixture(t, "failures.xml"), rerun(flakeAndFail))),
		run("d4", 4, fixture(t, "before-suite-failed.xml")),
		run("d5", 5, fixture(t, "interrupted.xml")),
		run("d6", 6, fixture(t, "passing.xml")),
		run("d7", 7, fixture(t, "failures.xml")),
	)
	h := mustLoad(t, s, "master", 0)
	ro, be := testIndex(t, h, rollover), testIndex(t, h, basicEndpoint)

	// d2: rollover is new, broken between d1 and d2; basicEndpoint flaked.
	c := h.Classify(1)
	if got := h.Names(c.New); !slices.Equal(got, []string{rollover}) || c.Failed() == false || c.Infra {
		t.Errorf("d2 new = %q (failed %t, infra %t)", got, c.Failed(), c.Infra)
	}
	if st := c.New[0].Streak; st.First.ID != "d2" || st.LastPassing == nil || st.LastPassing.ID != "d1" || st.LastPassing.Commit != "commit-d1" || !st.Open {
		t.Errorf("d2 rollover streak = %+v", st)
	}
	if got := h.Names(c.Flaky); !slices.Equal(got, []string{basicEndpoint}) || c.Flaky[0].Outcome != Failed {
		t.Errorf("d2 flaky = %q %+v", got, c.Flaky)
	}
	if !strings.Contains(h.Message(c.Flaky[0].Cluster), "dial tcp <ip>:<port>: connect: connection refused") {
		t.Errorf("the flake's first message = %q", h.Message(c.Flaky[0].Cluster))
	}

	// d3: rollover persists, since d2.
	c = h.Classify(2)
	if got := h.Names(c.Persistent); !slices.Equal(got, []string{rollover}) || len(c.New) != 0 {
		t.Errorf("d3 persistent = %q, new = %q", got, h.Names(c.New))
	}
	if st := c.Persistent[0].Streak; st.First.ID != "d2" || st.Failures != 2 || st.LastPassing.ID != "d1" {
		t.Errorf("d3 streak = %+v", st)
	}

	// d4, d5: infra; nothing new, nothing persistent.
	c = h.Classify(3)
	if !c.Infra || c.Failed() || !slices.Equal(c.InfraReasons, []string{"[SynchronizedBeforeSuite] failed"}) {
		t.Errorf("d4 = infra %t, reasons %q", c.Infra, c.InfraReasons)
	}
	c = h.Classify(4)
	if !c.Infra || c.Failed() || !slices.Equal(h.Names(c.InfraFailures), []string{basicEndpoint}) ||
		!slices.Equal(c.InfraReasons, []string{basicEndpoint + " interrupted"}) {
		t.Errorf("d5 = infra %t, failures %q, reasons %q", c.Infra, h.Names(c.InfraFailures), c.InfraReasons)
	}

	// d6: fixed; d7 broke it again.
	if got := h.Streaks(ro); len(got) != 2 || got[0].First.ID != "d2" || got[0].Last.ID != "d3" || got[0].Failures != 2 || got[0].Open ||
		got[1].First.ID != "d7" || got[1].LastPassing.ID != "d6" || !got[1].Open {
		t.Errorf("rollover streaks = %+v", got)
	}

	// d7: basicEndpoint fails; its last pass is d6, the interrupted d5
	// does not count.
	c = h.Classify(6)
	if got := h.Names(c.New); !slices.Equal(got, []string{rollover, basicEndpoint}) {
		t.Errorf("d7 new = %q", got)
	}
	cur, open := h.Current(be)
	if !open || cur.First.ID != "d7" || cur.LastPassing.ID != "d6" {
		t.Errorf("basicEndpoint now = %+v", cur)
	}

	// Flips: basicEndpoint passed, flaked twice, (infra), passed, failed:
	// 3 of 5 runs; rollover passed, failed twice, passed, failed: 2 of 5.
	if f := h.Flakiness(be); f.Flips != 3 || f.Considered != 5 || f.Flakes != 2 || math.Abs(f.Percent-60) > 1e-9 {
		t.Errorf("basicEndpoint flakiness = %+v", f)
	}
	if f := h.Flakiness(ro); f.Flips != 2 || f.Considered != 5 {
		t.Errorf("rollover flakiness = %+v", f)
	}
	top := h.Flakiest(1)
	if len(top) != 1 || top[0].Test != be {
		t.Errorf("Flakiest(1) = %+v", top)
	}
}

// TestGrid's flip flakiness on made-up rows.
func TestFlakinessTestGrid(t *testing.T) {
	tests := []struct {
		name            string
		runs            []string // spec A and a spec B that always passes
		flips, consider int
	}{
		{"steady", []string{"PP", "PP", "PP"}, 0, 3},
		{"alternating", []string{"PP", "FP", "PP", "FP", "PP"}, 2, 5},
		{"two in a row is one flip", []string{"PP", "FP", "FP", "PP"}, 1, 4},
		{"three in a row is a breakage", []string{"PP", "FP", "FP", "FP", "PP"}, 0, 2},
		{"a first failure flips", []string{"FP", "PP"}, 1, 2},
		{"a flake always flips", []string{"PP", "KP", "PP"}, 1, 3},
		{"absent and skipped do not count", []string{"PP", "-P", "SP", "FP"}, 1, 2},
		{"infra failures do not count", []string{"PP", "!FP", "PP"}, 0, 2},
		{"infra passes do", []string{"PP", "!PF", "PP"}, 0, 3},
		{"no spec passed: that run's failures do not count", []string{"PP", "FF", "PP"}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := synthetic(tt.runs...).Flakiness(0)
			if f.Flips != tt.flips || f.Considered != tt.consider {
				t.Errorf("flips %d of %d, want %d of %d", f.Flips, f.Considered, tt.flips, tt.consider)
			}
			want := 0.0
			if tt.consider > 0 {
				want = 100 * float64(tt.flips) / float64(tt.consider)
			}
			if math.Abs(f.Percent-want) > 1e-9 {
				t.Errorf("Percent = %v, want %v", f.Percent, want)
			}
		})
	}
}

// A test that fails the first time it runs is new, with no last pass; a
// streak is not broken by runs that do not count.
func TestClassifyFirstAppearanceAndGaps(t *testing.T) {
	h := synthetic("P", "PF", "P-", "PS", "!PF", "PF")
	c := h.Classify(1)
	if len(c.New) != 1 || c.New[0].Test != 1 || c.New[0].Streak.LastPassing != nil {
		t.Errorf("first appearance: %+v", c.New)
	}
	c = h.Classify(5)
	if len(c.Persistent) != 1 || c.Persistent[0].Streak.First.ID != "r2" || c.Persistent[0].Streak.Failures != 2 {
		t.Errorf("after gaps and an infra run: %+v", c)
	}
	if s := h.Streaks(1); len(s) != 1 || !s[0].Open || s[0].Last.ID != "r6" {
		t.Errorf("streaks = %+v", s)
	}
}

// Where an infra run failed: kubetest2's failed Test step beside failing
// specs is no infrastructure failure; the suite's timeout and a failed Up
// are, and the runner's own reason comes first.
func TestClassifyInfraReasons(t *testing.T) {
	s := folder(t)
	up := run("c", 3, fixture(t, "junit_runner-up-failed.xml"))
	up.Infra, up.InfraReason = true, "test.timeout of 3h0m0s passed: the process group was killed"
	mustAppend(t, s, "master",
		run("a", 1, fixture(t, "failures.xml", "junit_runner-test-failed.xml")),
		run("b", 2, fixture(t, "timeout.xml")),
		up)
	h := mustLoad(t, s, "master", 0)

	c := h.Classify(0)
	if c.Infra || len(c.InfraReasons) != 0 || len(c.New) != 2 || !c.Failed() {
		t.Errorf("specs failed: infra %t %q, new %q", c.Infra, c.InfraReasons, h.Names(c.New))
	}
	c = h.Classify(1)
	job := "[It] [sig-apps] Job should run a job to completion when tasks sometimes fail and are locally restarted [Conformance]"
	if !c.Infra || c.Failed() || !slices.Equal(c.InfraReasons, []string{job + " timedout"}) || len(c.InfraFailures) != 2 {
		t.Errorf("suite timeout: infra %t, reasons %q, failures %q", c.Infra, c.InfraReasons, h.Names(c.InfraFailures))
	}
	c = h.Classify(2)
	if !c.Infra || !slices.Equal(c.InfraReasons, []string{up.InfraReason, "Up failed"}) {
		t.Errorf("Up failed: infra %t, reasons %q", c.Infra, c.InfraReasons)
	}
}
