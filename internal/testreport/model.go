package testreport

import (
	"cmp"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// The classes of a matrix cell. A cell of a test the run did not report
// has none.
const (
	classPass  = "pass"
	classFail  = "fail"
	classFlaky = "flaky" // failed, then passed on the rerun
	classSkip  = "skip"
	classInfra = "infra" // failed in a run the infrastructure failed
)

// The run choices the page offers besides "all"; ShowRuns is added when it
// is not among them.
var runChoices = []int{10, 30, 50, 100, 200, 500}

// tooltipMessage bounds a failure's message in a cell's tooltip: a
// normalised message keeps 4 KiB, the failure clusters show it whole, and
// a matrix of thousands of failures should not carry every one of them.
const tooltipMessage = 600

// page is what the template renders.
type page struct {
	Title      string
	Generated  string
	ShowRuns   int // 0: all
	RunChoices []runChoice
	Branches   []*branchView
	CSS        template.CSS
	JS         template.JS
	// ScriptHash allows JS, and only it, in the page's
	// Content-Security-Policy.
	ScriptHash string
}

// FirstHidden is the first matrix column hidden when the page opens (the
// test's name is column 1); 0 when every run is shown.
func (p *page) FirstHidden() int {
	if p.ShowRuns == 0 {
		return 0
	}
	return p.ShowRuns + 2
}

type runChoice struct {
	Value    int // 0: all
	Label    string
	Selected bool
}

// branchView is one branch's tab.
type branchView struct {
	Anchor string // the section's element id
	Name   string
	Runs   []*runView // newest first
	// Specs and Others (suite nodes, runner steps) are the matrix's rows.
	Specs, Others []row
	Chart         chart
	Flaky         []flakyView
	MoreFlaky     int
	NewFailures   []newFailureView
	// MoreNew counts the new failures left out of NewFailures.
	MoreNew  int
	Slowest  []slowView
	Clusters []clusterView
	// MoreClusters counts the clusters left out of Clusters.
	MoreClusters int
}

// Latest is the newest run; nil when there is none.
func (b *branchView) Latest() *runView {
	if len(b.Runs) == 0 {
		return nil
	}
	return b.Runs[0]
}

// runView is one run: a matrix column, a chart bar, a row of the runs table.
type runView struct {
	Seq       int // 1 for the oldest loaded run
	ID        string
	Time      string
	Commit    string
	Candidate string
	Log       any // the href of its log; nil for none
	Infra     bool
	// InfraReasons say why the run is infra.
	InfraReasons string
	// Counts of the run's specs.
	Passed, Flaky, Failed, InfraFailed, Skipped int
	// New and Persistent count its classified failures.
	New, Persistent int
	// Status is "passed", "failed" or "infra".
	Status string
}

// Label names the run in tooltips.
func (r *runView) Label() string { return fmt.Sprintf("#%d %s · %s", r.Seq, r.ID, r.Time) }

// Title is the tooltip of the run's column and bar.
func (r *runView) Title() string {
	s := fmt.Sprintf("%s\ncommit %s\n%d passed, %d flaky, %d failed, %d skipped", r.Label(), short(r.Commit), r.Passed, r.Flaky, r.Failed+r.InfraFailed, r.Skipped)
	if r.Infra {
		s += "\ninfra: " + r.InfraReasons
	}
	return s
}

// ShortCommit is the first 12 characters of the commit.
func (r *runView) ShortCommit() string { return short(r.Commit) }

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// row is one test of the matrix.
type row struct {
	Name  string
	Class string // the JUnit classname
	Kind  junit.Kind
	Cells []cell // newest run first
}

// cell is one test in one run.
type cell struct {
	Class string
	Title string
}

// buildPage makes the view of a valid input.
func buildPage(in Input) *page {
	p := &page{Title: in.Title, ShowRuns: in.ShowRuns, CSS: template.CSS(styleCSS), JS: template.JS(scriptJS), ScriptHash: scriptHash}
	if p.Title == "" {
		p.Title = "hyperfork test history"
	}
	if !in.Generated.IsZero() {
		p.Generated = formatTime(in.Generated)
	}
	if p.ShowRuns == 0 {
		p.ShowRuns = DefaultShowRuns
	}
	most := 0
	for i, b := range in.Branches {
		bv := buildBranch(i, b)
		p.Branches = append(p.Branches, bv)
		most = max(most, len(bv.Runs))
	}
	if p.ShowRuns >= most {
		p.ShowRuns = 0
	}
	choices := slices.Clone(runChoices)
	if p.ShowRuns != 0 && !slices.Contains(choices, p.ShowRuns) {
		choices = append(choices, p.ShowRuns)
		slices.Sort(choices)
	}
	for _, n := range choices {
		if n < most {
			p.RunChoices = append(p.RunChoices, runChoice{Value: n, Label: fmt.Sprint(n), Selected: n == p.ShowRuns})
		}
	}
	p.RunChoices = append(p.RunChoices, runChoice{Value: 0, Label: fmt.Sprintf("all (%d)", most), Selected: p.ShowRuns == 0})
	return p
}

// buildBranch makes the tab of the n-th branch.
func buildBranch(n int, b Branch) *branchView {
	h := b.History
	bv := &branchView{Anchor: fmt.Sprintf("branch-%d", n), Name: h.Branch}
	classes := make([]history.Classification, len(h.Runs))
	oldestFirst := make([]*runView, len(h.Runs))
	for i := range h.Runs {
		classes[i] = h.Classify(i)
		oldestFirst[i] = buildRun(h, i, classes[i], b.Logs)
	}
	for i := len(oldestFirst) - 1; i >= 0; i-- {
		bv.Runs = append(bv.Runs, oldestFirst[i])
	}
	for t, test := range h.Tests {
		r := row{Name: test.Name, Class: test.Classname, Kind: test.Kind, Cells: make([]cell, len(h.Runs))}
		for k, rv := range bv.Runs {
			r.Cells[k] = cellOf(h, rv.Seq-1, t, rv)
		}
		if test.Kind == junit.Spec {
			bv.Specs = append(bv.Specs, r)
		} else {
			bv.Others = append(bv.Others, r)
		}
	}
	byName := func(a, b row) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Class, b.Class)
	}
	slices.SortFunc(bv.Specs, byName)
	slices.SortStableFunc(bv.Others, func(a, b row) int { return strings.Compare(string(a.Kind), string(b.Kind)) })

	bv.Chart = buildChart(oldestFirst)
	bv.Flaky, bv.MoreFlaky = flakyTests(h)
	bv.NewFailures, bv.MoreNew = newFailures(h, classes, oldestFirst, b.Suspects)
	bv.Slowest = slowestTests(h)
	bv.Clusters, bv.MoreClusters = failureClusters(h, oldestFirst)
	return bv
}

// buildRun counts run i's specs.
func buildRun(h *history.History, i int, c history.Classification, logs map[string]string) *runView {
	rec := &h.Runs[i]
	rv := &runView{
		Seq: i + 1, ID: rec.ID, Time: formatTime(rec.Time), Commit: rec.Commit, Candidate: rec.Candidate,
		Log: link(logs[rec.ID]), Infra: c.Infra, InfraReasons: strings.Join(c.InfraReasons, "; "),
		New: len(c.New), Persistent: len(c.Persistent), Status: "passed",
	}
	switch {
	case c.Infra:
		rv.Status = "infra"
	case c.Failed():
		rv.Status = "failed"
	}
	for t, e := range rec.Entries {
		if h.Tests[t].Kind != junit.Spec {
			continue
		}
		switch {
		case e.Flaked():
			rv.Flaky++
		case e.Outcome == history.Passed:
			rv.Passed++
		case e.Outcome == history.Skipped:
			rv.Skipped++
		case e.Outcome.Failed() && rec.Infra:
			rv.InfraFailed++
		case e.Outcome.Failed():
			rv.Failed++
		}
	}
	return rv
}

// cellOf is test t in run i.
func cellOf(h *history.History, i, t int, rv *runView) cell {
	rec := &h.Runs[i]
	e := rec.Entry(t)
	withMessage := func(head string, cluster int) string {
		if msg := h.Message(cluster); msg != "" {
			return head + "\n" + clip(msg, tooltipMessage)
		}
		return head
	}
	switch {
	case e.Flaked():
		return cell{classFlaky, withMessage(fmt.Sprintf("flaky: %s, then passed on the rerun · run %s", e.Retry, rv.Label()), e.RetryCluster)}
	case e.Outcome == history.Passed:
		return cell{Class: classPass}
	case e.Outcome == history.Skipped:
		return cell{classSkip, withMessage("skipped · run "+rv.Label(), e.Cluster)}
	case e.Outcome.Failed() && rec.Infra:
		head := fmt.Sprintf("%s in an infra run, not counted against the test · run %s", e.Outcome, rv.Label())
		if rv.InfraReasons != "" {
			head += "\ninfra: " + clip(rv.InfraReasons, tooltipMessage)
		}
		return cell{classInfra, withMessage(head, e.Cluster)}
	case e.Outcome.Failed():
		return cell{classFail, withMessage(fmt.Sprintf("%s · run %s", e.Outcome, rv.Label()), e.Cluster)}
	}
	return cell{}
}

// link is a log's href. html/template turns a URL whose scheme is not
// http, https or mailto into "#ZgotmplZ", rightly for a value it cannot
// trust; but a folder store's log is a file: URL, which runs no script, so
// that scheme is let through, re-encoded. Paths are relative URLs and pass
// as they are.
func link(s string) any {
	if s == "" {
		return nil
	}
	if u, err := url.Parse(s); err == nil && strings.EqualFold(u.Scheme, "file") {
		return template.URL(u.String())
	}
	return s
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// firstLine is s up to its first newline, clipped to n bytes.
func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clip(s, n)
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// byCountThenName orders descending by count, then by name.
func byCountThenName(ca, cb int, na, nb string) int {
	if c := cmp.Compare(cb, ca); c != 0 {
		return c
	}
	return strings.Compare(na, nb)
}
