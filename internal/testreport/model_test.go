package testreport

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// rowOf finds a test's row in a branch's matrix.
func rowOf(t *testing.T, b *branchView, name string) row {
	t.Helper()
	for _, r := range append(slices.Clone(b.Specs), b.Others...) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("branch %s has no row %q", b.Name, name)
	return row{}
}

func classes(r row) []string {
	out := make([]string, len(r.Cells))
	for i, c := range r.Cells {
		out[i] = c.Class
	}
	return out
}

func rep(class string, n int) []string { return slices.Repeat([]string{class}, n) }

func TestMatrixCellsNewestRunFirst(t *testing.T) {
	p := buildPage(knownInput(t))
	master := p.Branches[0]
	if len(master.Runs) != len(masterGrid) || master.Runs[0].ID != "master-12" || master.Runs[11].ID != "master-01" {
		t.Fatalf("runs are not newest first: %d runs, first %s", len(master.Runs), master.Runs[0].ID)
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		// Broken in run 7 and since; its failure in the infra run 5 is
		// the infrastructure's.
		{specs['B'], slices.Concat(rep(classFail, 6), []string{classPass, classInfra}, rep(classPass, 4))},
		{specs['C'], slices.Concat(rep(classPass, 2), []string{classFlaky}, rep(classPass, 6), []string{classFlaky}, rep(classPass, 2))},
		{specs['D'], slices.Concat(rep(classPass, 10), []string{""}, rep(classPass, 1))},
		{hostileName(t), slices.Concat(rep(classFail, 2), rep(classPass, 4), []string{classFlaky}, rep(classPass, 5))},
		{specs['F'], slices.Concat(rep(classPass, 8), []string{classSkip}, rep(classPass, 3))},
	} {
		if got := classes(rowOf(t, master, tc.name)); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	// Specs by name, then the suite node.
	var names []string
	for _, r := range master.Specs {
		names = append(names, r.Name)
	}
	if !slices.IsSorted(names) || len(master.Specs) != 6 {
		t.Errorf("spec rows not sorted by name: %q", names)
	}
	if len(master.Others) != 1 || master.Others[0].Kind != junit.SuiteNode {
		t.Errorf("other rows: %+v", master.Others)
	}
	if got := classes(master.Others[0])[7]; got != classInfra {
		t.Errorf("the failed BeforeSuite of the infra run 5 has class %q, want %q", got, classInfra)
	}
}

func TestCellTooltipsCarryTheNormalisedMessage(t *testing.T) {
	master := buildPage(knownInput(t)).Branches[0]
	b := rowOf(t, master, specs['B'])
	fail := b.Cells[0].Title
	for _, want := range []string{"failed · run #12 master-12 · 2026-03-12 03:00 UTC", "test-rollover-<rand> on <ip>:<port>", "deployment.go:<n> @ <time>"} {
		if !strings.Contains(fail, want) {
			t.Errorf("the tooltip of B's failure in run 12 lacks %q:\n%s", want, fail)
		}
	}
	if strings.Contains(fail, "172.18.") {
		t.Errorf("the tooltip holds the address the message had before normalising:\n%s", fail)
	}
	if infra := b.Cells[7].Title; !strings.Contains(infra, "infra run, not counted against the test") || !strings.Contains(infra, "[SynchronizedBeforeSuite] failed") {
		t.Errorf("the infra cell's tooltip does not say why it does not count:\n%s", infra)
	}
	if flaky := rowOf(t, master, specs['C']).Cells[2].Title; !strings.HasPrefix(flaky, "flaky: failed, then passed on the rerun") || !strings.Contains(flaky, "<rand>") {
		t.Errorf("the flaky cell's tooltip: %s", flaky)
	}
	if skip := rowOf(t, master, specs['F']).Cells[8].Title; !strings.Contains(skip, "needs two schedulable nodes") {
		t.Errorf("the skip cell's tooltip: %s", skip)
	}
	if pass := b.Cells[6].Title; pass != "" {
		t.Errorf("a pass carries a title in the file (the page adds it on hover): %q", pass)
	}
}

func TestRunsAreCountedAndClassified(t *testing.T) {
	runs := buildPage(knownInput(t)).Branches[0].Runs
	at := func(seq int) *runView { return runs[len(runs)-seq] }
	for _, tc := range []struct {
		seq                                              int
		status                                           string
		passed, flaky, failed, infra, skipped, new, pers int
	}{
		{seq: 1, status: "passed", passed: 6},
		{seq: 2, status: "passed", passed: 5},
		{seq: 3, status: "passed", passed: 5, flaky: 1},
		{seq: 4, status: "passed", passed: 5, skipped: 1},
		{seq: 5, status: "infra", passed: 5, infra: 1},
		{seq: 7, status: "failed", passed: 5, failed: 1, new: 1},
		{seq: 11, status: "failed", passed: 4, failed: 2, new: 1, pers: 1},
		{seq: 12, status: "failed", passed: 4, failed: 2, pers: 2},
	} {
		r := at(tc.seq)
		got := []int{r.Passed, r.Flaky, r.Failed, r.InfraFailed, r.Skipped, r.New, r.Persistent}
		want := []int{tc.passed, tc.flaky, tc.failed, tc.infra, tc.skipped, tc.new, tc.pers}
		if r.Status != tc.status || !slices.Equal(got, want) {
			t.Errorf("run %d: %s %v, want %s %v (passed, flaky, failed, infra, skipped, new, persistent)", tc.seq, r.Status, got, tc.status, want)
		}
	}
	if r := at(5); !strings.Contains(r.InfraReasons, "[SynchronizedBeforeSuite] failed") {
		t.Errorf("run 5's infra reasons: %q", r.InfraReasons)
	}
	if r := at(12); r.Log != "https://logs.example.test/master/12/log.txt?X-Amz-Signature=abc&X-Amz-Expires=3600" {
		t.Errorf("run 12's log: %v", r.Log)
	}
}

func TestChartHasABarPerRunOldestFirst(t *testing.T) {
	p := buildPage(knownInput(t))
	for _, b := range p.Branches {
		c := b.Chart
		if len(c.Bars) != len(b.Runs) {
			t.Fatalf("%s: %d bars for %d runs", b.Name, len(c.Bars), len(b.Runs))
		}
		for k := 1; k < len(c.Bars); k++ {
			if c.Bars[k].X <= c.Bars[k-1].X {
				t.Fatalf("%s: bar %d at x=%d is not right of bar %d at x=%d", b.Name, k, c.Bars[k].X, k-1, c.Bars[k-1].X)
			}
		}
	}
	c := p.Branches[0].Chart
	// Run 1 has the most specs (6): its bar is the plot's full height.
	if h := total(c.Bars[0]); math.Abs(h-plotHeight) > 1e-9 {
		t.Errorf("run 1's bar is %.2f high, want %d", h, plotHeight)
	}
	// Run 5: 5 passed, 1 failed in the infra run.
	b5 := c.Bars[4]
	if len(b5.Segs) != 2 || b5.Segs[0].Class != classPass || b5.Segs[1].Class != classInfra || !b5.Infra {
		t.Fatalf("run 5's bar: %+v", b5)
	}
	if r := b5.Segs[0].H / b5.Segs[1].H; math.Abs(r-5) > 1e-9 {
		t.Errorf("run 5's pass segment is %.2f× its infra segment, want 5×", r)
	}
	if !strings.HasPrefix(b5.Title, "#5 master-05") {
		t.Errorf("run 5's bar title: %q", b5.Title)
	}
}

func total(b bar) float64 {
	var h float64
	for _, s := range b.Segs {
		h += s.H
	}
	return h
}

func TestNewFailuresCarryTheirSuspectRange(t *testing.T) {
	p := buildPage(knownInput(t))
	nf := p.Branches[0].NewFailures
	if len(nf) != 2 {
		t.Fatalf("%d new failures, want 2 (E in run 11, B in run 7): %+v", len(nf), nf)
	}
	e, b := nf[0], nf[1]
	if e.Test != hostileName(t) || e.Run.Seq != 11 || !e.Open || e.Failures != 2 || e.LastPassing.Seq != 10 || e.Known {
		t.Errorf("E's new failure: run %d, open %v, %d failures, last passed in %d, suspects known %v", e.Run.Seq, e.Open, e.Failures, e.LastPassing.Seq, e.Known)
	}
	if b.Test != specs['B'] || b.Run.Seq != 7 || !b.Open || b.Failures != 6 || b.LastPassing.Seq != 6 {
		t.Errorf("B's new failure: run %d, open %v, %d failures, last passed in %d", b.Run.Seq, b.Open, b.Failures, b.LastPassing.Seq)
	}
	if !b.Known || len(b.Suspects) != 2 || b.Upstream != 1 || b.Carries != 1 || b.Suspects[1].Short != "aa2e3d4c5b6a" || b.Suspects[1].Side != Carry {
		t.Errorf("B's suspects: %+v", b)
	}
	if !strings.HasPrefix(b.Head(), "[FAILED] deployment \"test-rollover\" not ready") {
		t.Errorf("B's head: %q", b.Head())
	}
	rel := p.Branches[1].NewFailures
	if len(rel) != 1 || rel[0].Test != specs['C'] || rel[0].Open || rel[0].Failures != 1 {
		t.Errorf("release-1.37's new failures: %+v", rel)
	}
}

func TestFlakyTestsRankedAsTheHistoryRanksThem(t *testing.T) {
	in := knownInput(t)
	h := in.Branches[0].History
	got := buildPage(in).Branches[0].Flaky
	want := h.Flakiest(0)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d flaky tests, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Test != h.Tests[want[i].Test].Name || got[i].Percent != want[i].Percent {
			t.Errorf("flaky %d: %s %.1f, want %s %.1f", i, got[i].Test, got[i].Percent, h.Tests[want[i].Test].Name, want[i].Percent)
		}
	}
	// C flaked twice in 12 counted runs; E flaked once and failed after a
	// pass once, in 12 runs (its streak of 2 counts).
	if got[0].Test != specs['C'] && got[0].Test != hostileName(t) {
		t.Errorf("flakiest: %s", got[0].Test)
	}
}

func TestSlowestByMeanDuration(t *testing.T) {
	slow := buildPage(knownInput(t)).Branches[0].Slowest
	// Spec k takes k+1 seconds × (1, 2 or 3): F is slowest.
	if len(slow) != 6 || slow[0].Test != specs['F'] || slow[len(slow)-1].Test != specs['A'] || slow[0].Width != 100 {
		t.Fatalf("slowest: %+v", slow)
	}
	for i := 1; i < len(slow); i++ {
		if slow[i].mean > slow[i-1].mean {
			t.Errorf("slowest %d (%s) is slower than %d (%s)", i, slow[i].Mean, i-1, slow[i-1].Mean)
		}
	}
}

func TestFailureClustersGroupByNormalisedMessage(t *testing.T) {
	master := buildPage(knownInput(t)).Branches[0]
	cl := master.Clusters
	if len(cl) == 0 {
		t.Fatal("no clusters")
	}
	// B's seven failures (one in the infra run) and C's two first attempts
	// have one message once normalised.
	top := cl[0]
	if top.Failures != 9 || top.Infra != 1 || top.Flakes != 2 {
		t.Fatalf("top cluster: %d failures, %d infra, %d flakes: %q", top.Failures, top.Infra, top.Flakes, top.Head())
	}
	if len(top.Tests) != 2 || top.Tests[0].Name != specs['B'] || top.Tests[0].Count != 7 || top.Tests[1].Name != specs['C'] {
		t.Errorf("top cluster's tests: %+v", top.Tests)
	}
	var seqs []int
	for _, r := range top.Runs {
		seqs = append(seqs, r.Seq)
	}
	if want := []int{12, 11, 10, 9, 8, 7, 5, 3}; !slices.Equal(seqs, want) {
		t.Errorf("top cluster's runs %v, want %v", seqs, want)
	}
	var heads []string
	for _, c := range cl {
		heads = append(heads, c.Head())
	}
	if !slices.ContainsFunc(heads, func(h string) bool {
		return strings.Contains(h, "[SynchronizedBeforeSuite]") || strings.Contains(h, "coredns-<hash>-<rand>")
	}) {
		t.Errorf("the BeforeSuite failure is not a cluster: %q", heads)
	}
}

func TestRunChoices(t *testing.T) {
	for _, tc := range []struct {
		show, runs int
		want       []int
		selected   int
	}{
		{show: 0, runs: 100, want: []int{10, 30, 50, 0}, selected: 30},
		{show: 0, runs: 12, want: []int{10, 0}, selected: 0},
		{show: 20, runs: 100, want: []int{10, 20, 30, 50, 0}, selected: 20},
		{show: 500, runs: 40, want: []int{10, 30, 0}, selected: 0},
	} {
		in := Input{ShowRuns: tc.show, Branches: []Branch{{History: large(t, "master", 3, tc.runs, 1)}}}
		p := buildPage(in)
		var got []int
		selected := -1
		for _, c := range p.RunChoices {
			got = append(got, c.Value)
			if c.Selected {
				selected = c.Value
			}
		}
		if !slices.Equal(got, tc.want) || selected != tc.selected || p.ShowRuns != tc.selected {
			t.Errorf("ShowRuns %d of %d runs: choices %v selected %d (page %d), want %v selected %d", tc.show, tc.runs, got, selected, p.ShowRuns, tc.want, tc.selected)
		}
	}
}
