package testreport

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// How much each section lists; the rest is counted.
const (
	maxFlaky       = 100
	maxNewFailures = 100
	maxSlowest     = 25
	maxClusters    = 40
	clusterTests   = 12
	clusterRuns    = 15
)

// Geometry of the trend chart, in pixels: bars of at least minBarStep,
// wider when there are few runs so that the chart is about chartPlot wide.
// Under the plot of every outcome, a lower plot shows only the specs that
// did not pass (failed, flaked, failed in an infra run) on their own
// scale: two failures among 460 passes would be a fraction of a pixel.
const (
	minBarStep = 10
	maxBarStep = 28
	chartPlot  = 640
	chartLeft  = 44
	chartRight = 8
	chartTop   = 12
	plotHeight = 120
	lowGap     = 16
	lowHeight  = 40
	chartFoot  = 28
)

// chart is the trend chart: per run, oldest on the left, a stacked bar of
// its specs by outcome.
type chart struct {
	Width, Height int
	Bars          []bar
	Ticks         []tick
	// First and Last label the oldest and the newest run under the axis.
	First, Last string
	LastX       int
	// The geometry, for the template.
	AxisLeft, AxisRight, TickX, DateY      int
	PlotTop, PlotHeight, BarWidth, BarStep int
	LowTop, LowHeight                      int
}

type bar struct {
	X     int
	Title string
	Log   any
	Infra bool
	// Segs are the bar in the plot of every outcome, Low in the plot of
	// the specs that did not pass.
	Segs, Low []seg
}

// seg is one outcome's part of a bar.
type seg struct {
	Class string
	Y, H  float64
}

type tick struct {
	Y     float64
	Label int
}

type part struct {
	class string
	n     int
}

// stack draws parts upwards from bottom at scale pixels each.
func stack(bottom, scale float64, parts ...part) []seg {
	var out []seg
	y := bottom
	for _, p := range parts {
		if p.n == 0 {
			continue
		}
		h := float64(p.n) * scale
		y -= h
		out = append(out, seg{Class: p.class, Y: y, H: h})
	}
	return out
}

// buildChart draws runs, oldest first.
func buildChart(runs []*runView) chart {
	step := minBarStep
	if len(runs) > 0 {
		step = min(maxBarStep, max(minBarStep, chartPlot/len(runs)))
	}
	lowTop := chartTop + plotHeight + lowGap
	c := chart{
		Width: chartLeft + len(runs)*step + chartRight, Height: lowTop + lowHeight + chartFoot,
		AxisLeft: chartLeft, AxisRight: chartLeft + len(runs)*step, TickX: chartLeft - 4, DateY: lowTop + lowHeight + 18,
		PlotTop: chartTop, PlotHeight: plotHeight, BarWidth: step * 4 / 5, BarStep: step,
		LowTop: lowTop, LowHeight: lowHeight,
	}
	top, low := 1, 1
	for _, r := range runs {
		top = max(top, r.Passed+r.Flaky+r.Failed+r.InfraFailed+r.Skipped)
		low = max(low, r.Flaky+r.Failed+r.InfraFailed)
	}
	scale, lowScale := float64(plotHeight)/float64(top), float64(lowHeight)/float64(low)
	bottom, lowBottom := float64(chartTop+plotHeight), float64(lowTop+lowHeight)
	c.Ticks = []tick{
		{Y: bottom, Label: 0}, {Y: bottom - float64(top/2)*scale, Label: top / 2}, {Y: chartTop, Label: top},
		{Y: lowBottom, Label: 0}, {Y: float64(lowTop), Label: low},
	}
	for k, r := range runs {
		c.Bars = append(c.Bars, bar{
			X: chartLeft + k*step, Title: r.Title(), Log: r.Log, Infra: r.Infra,
			Segs: stack(bottom, scale, part{classPass, r.Passed}, part{classFlaky, r.Flaky}, part{classFail, r.Failed}, part{classInfra, r.InfraFailed}, part{classSkip, r.Skipped}),
			Low:  stack(lowBottom, lowScale, part{classFlaky, r.Flaky}, part{classFail, r.Failed}, part{classInfra, r.InfraFailed}),
		})
	}
	if len(runs) > 0 {
		c.First, c.Last = runs[0].Time[:10], runs[len(runs)-1].Time[:10]
		c.LastX = c.AxisRight
	}
	return c
}

// flakyView is a test in the ranking of flaky tests.
type flakyView struct {
	Test       string
	Percent    float64
	Flips      int
	Considered int
	Flakes     int
}

// PercentText is the flakiness to one decimal.
func (f flakyView) PercentText() string { return fmt.Sprintf("%.1f%%", f.Percent) }

// flakyTests ranks the specs by flakiness, and counts those left out.
func flakyTests(h *history.History) ([]flakyView, int) {
	all := h.Flakiest(0)
	more := max(0, len(all)-maxFlaky)
	var out []flakyView
	for _, f := range all[:len(all)-more] {
		out = append(out, flakyView{Test: h.Tests[f.Test].Name, Percent: f.Percent, Flips: f.Flips, Considered: f.Considered, Flakes: f.Flakes})
	}
	return out, more
}

// newFailureView is a failure classified new: the test passed the last
// time it counted.
type newFailureView struct {
	Run     *runView
	Test    string
	Outcome string
	Message string
	// LastPassing is the newest run before in which the test passed; nil
	// when it never did in the loaded runs.
	LastPassing *runView
	// Open means the test has failed in every run that counted since.
	Open bool
	// Failures counts the runs of the streak this failure started.
	Failures int
	// Suspects are the pipeline's suspect range; Known says it gave one.
	Suspects          []suspectView
	Known             bool
	Upstream, Carries int
}

// Head is the message's first line.
func (f newFailureView) Head() string { return firstLine(f.Message, 200) }

type suspectView struct {
	Hash, Short, Subject string
	Side                 Side
}

// newFailures lists the loaded runs' new failures, newest run first.
func newFailures(h *history.History, classes []history.Classification, runs []*runView, suspects map[FailureKey][]Commit) ([]newFailureView, int) {
	streaks := map[int][]history.Streak{}
	var out []newFailureView
	more := 0
	for i := len(h.Runs) - 1; i >= 0; i-- {
		for _, f := range classes[i].New {
			if len(out) == maxNewFailures {
				more++
				continue
			}
			test := h.Tests[f.Test]
			v := newFailureView{Run: runs[i], Test: test.Name, Outcome: f.Outcome.String(), Message: h.Message(f.Cluster), Failures: 1}
			if lp := f.Streak.LastPassing; lp != nil {
				v.LastPassing = runs[lp.Index]
			}
			s, ok := streaks[f.Test]
			if !ok {
				s = h.Streaks(f.Test)
				streaks[f.Test] = s
			}
			for _, st := range s {
				if st.First.Index == i {
					v.Open, v.Failures = st.Open, st.Failures
				}
			}
			commits, known := suspects[FailureKey{Run: h.Runs[i].ID, Test: test.ID}]
			v.Known = known
			for _, c := range commits {
				v.Suspects = append(v.Suspects, suspectView{Hash: c.Hash, Short: short(c.Hash), Subject: c.Subject, Side: c.Side})
				if c.Side == Carry {
					v.Carries++
				} else {
					v.Upstream++
				}
			}
			out = append(out, v)
		}
	}
	return out, more
}

// slowView is a test among the slowest.
type slowView struct {
	Test            string
	Mean, Max, Last string
	Runs            int
	// Width is the mean as a share of the slowest mean, 0 to 100.
	Width float64
	mean  time.Duration
}

// slowestTests ranks the specs by their mean duration over the runs in
// which they ran (passed or failed; a skip takes no time worth counting).
func slowestTests(h *history.History) []slowView {
	var out []slowView
	for t, test := range h.Tests {
		if test.Kind != junit.Spec {
			continue
		}
		var sum, most, last time.Duration
		n := 0
		for i := range h.Runs {
			e := h.Runs[i].Entry(t)
			if (e.Outcome != history.Passed && !e.Outcome.Failed()) || e.Duration <= 0 {
				continue
			}
			sum += e.Duration
			most = max(most, e.Duration)
			last = e.Duration
			n++
		}
		if n == 0 {
			continue
		}
		mean := sum / time.Duration(n)
		out = append(out, slowView{Test: test.Name, Mean: formatDuration(mean), Max: formatDuration(most), Last: formatDuration(last), Runs: n, mean: mean})
	}
	slices.SortFunc(out, func(a, b slowView) int {
		if c := cmp.Compare(b.mean, a.mean); c != 0 {
			return c
		}
		return strings.Compare(a.Test, b.Test)
	})
	if len(out) > maxSlowest {
		out = out[:maxSlowest]
	}
	for i := range out {
		out[i].Width = 100 * float64(out[i].mean) / float64(out[0].mean)
	}
	return out
}

// clusterView is one normalised failure message and where it occurred.
type clusterView struct {
	Message string
	// Failures counts its occurrences: failures, InfraFailures of them in
	// infra runs, Flakes of them first attempts that passed on the rerun.
	Failures, Infra, Flakes int
	Tests                   []clusterTest
	MoreTests               int
	Runs                    []*runView // newest first
	MoreRuns                int
}

// Head is the message's first line.
func (c clusterView) Head() string {
	if c.Message == "" {
		return "(no message)"
	}
	return firstLine(c.Message, 200)
}

type clusterTest struct {
	Name  string
	Count int
}

// failureClusters groups every failure of the loaded runs, and every first
// attempt of a flake, by its normalised message, most frequent first.
func failureClusters(h *history.History, runs []*runView) ([]clusterView, int) {
	type acc struct {
		view  clusterView
		tests map[int]int
		runs  []int
	}
	byCluster := map[int]*acc{}
	add := func(cluster, test, run int, infra, flake bool) {
		a := byCluster[cluster]
		if a == nil {
			a = &acc{view: clusterView{Message: h.Message(cluster)}, tests: map[int]int{}}
			byCluster[cluster] = a
		}
		a.view.Failures++
		if infra {
			a.view.Infra++
		}
		if flake {
			a.view.Flakes++
		}
		a.tests[test]++
		if n := len(a.runs); n == 0 || a.runs[n-1] != run {
			a.runs = append(a.runs, run)
		}
	}
	for i := len(h.Runs) - 1; i >= 0; i-- {
		rec := &h.Runs[i]
		for t, e := range rec.Entries {
			switch {
			case e.Flaked():
				add(e.RetryCluster, t, i, false, true)
			case e.Outcome.Failed():
				add(e.Cluster, t, i, rec.Infra, false)
			}
		}
	}
	all := make([]*acc, 0, len(byCluster))
	for _, a := range byCluster {
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b *acc) int {
		return byCountThenName(a.view.Failures, b.view.Failures, a.view.Message, b.view.Message)
	})
	more := 0
	if len(all) > maxClusters {
		more = len(all) - maxClusters
		all = all[:maxClusters]
	}
	out := make([]clusterView, len(all))
	for k, a := range all {
		v := a.view
		for t, n := range a.tests {
			v.Tests = append(v.Tests, clusterTest{Name: h.Tests[t].Name, Count: n})
		}
		slices.SortFunc(v.Tests, func(x, y clusterTest) int { return byCountThenName(x.Count, y.Count, x.Name, y.Name) })
		if len(v.Tests) > clusterTests {
			v.MoreTests = len(v.Tests) - clusterTests
			v.Tests = v.Tests[:clusterTests]
		}
		for _, i := range a.runs {
			if len(v.Runs) == clusterRuns {
				v.MoreRuns++
				continue
			}
			v.Runs = append(v.Runs, runs[i])
		}
		out[k] = v
	}
	return out, more
}
