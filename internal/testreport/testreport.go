// Package testreport renders the test history of every branch as one static
// HTML file that opens offline: no server, no CDN, no request of any kind,
// its CSS, script and SVG chart inline. Per branch it shows what Jenkins'
// Test Results Analyzer showed the fork's administrators — the matrix of
// tests × runs, newest run first, with a search box, a status filter and a
// choice of how many runs to show — and beside it a pass/fail/skip trend
// chart, the flaky tests ranked by TestGrid's flakiness, the new failures
// with the commits suspected of breaking them, the slowest tests, the
// failures clustered by normalised message, and a link to each run's log.
//
// Test names and failure messages come from the tests' output and are not
// trusted: everything is rendered by html/template.
package testreport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// Input is what a report shows.
type Input struct {
	// Title heads the page; empty means "hyperfork test history".
	Title string
	// Generated is when the report was made, shown in its header; the zero
	// time leaves it out, so that the same input renders the same bytes.
	Generated time.Time
	// ShowRuns is how many of the newest runs the matrix shows when the
	// page opens; 0 means DefaultShowRuns. Every loaded run is in the file
	// and the page's control shows more.
	ShowRuns int
	// Branches are shown in this order, each on its own tab.
	Branches []Branch
}

// DefaultShowRuns is how many runs the matrix shows at first when
// Input.ShowRuns is 0.
const DefaultShowRuns = 30

// Branch is one branch's history and what the pipeline knows beside it.
type Branch struct {
	// History is the branch's loaded runs (history.Load with the number of
	// runs the report should hold).
	History *history.History
	// Logs links each run, by its Record.ID, to its log: an http(s) URL
	// (an S3 link), a file: URL, or a path (a folder store's), absolute or
	// relative to where the report is written. A run without one shows no
	// link.
	Logs map[string]string
	// Suspects are, for a new failure, the commits between the last
	// candidate on which the test passed and the one on which it failed:
	// the upstream commits merged and the carries changed. A new failure
	// without an entry shows only the two candidates' commits.
	Suspects map[FailureKey][]Commit
}

// FailureKey names a failure: one test in one run.
type FailureKey struct {
	Run  string // the run's Record.ID
	Test junit.ID
}

// Commit is a commit suspected of breaking a test.
type Commit struct {
	Hash    string
	Subject string
	Side    Side
}

// Side says where a suspect commit comes from.
type Side string

// The sides of a suspect commit.
const (
	// Upstream is a commit merged from the upstream project.
	Upstream Side = "upstream"
	// Carry is one of the fork's own patches that changed.
	Carry Side = "carry"
)

// Write renders the report of in to w. It fails before writing anything
// when the input is not valid, naming every problem at once.
func Write(w io.Writer, in Input) error {
	if err := in.validate(); err != nil {
		return fmt.Errorf("write test report: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := pageTemplate.Execute(bw, buildPage(in)); err != nil {
		return fmt.Errorf("write test report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write test report: %w", err)
	}
	return nil
}

// validate reports every problem of the input, joined.
func (in Input) validate() error {
	var errs []error
	if in.ShowRuns < 0 {
		errs = append(errs, fmt.Errorf("ShowRuns is %d; want 0 (the default) or more", in.ShowRuns))
	}
	seen := map[string]int{}
	for i, b := range in.Branches {
		if b.History == nil {
			errs = append(errs, fmt.Errorf("branch %d has no history; pass an empty one (history.Load of a new branch) to show it without runs", i))
			continue
		}
		name := b.History.Branch
		if j, ok := seen[name]; ok {
			errs = append(errs, fmt.Errorf("branch %q is both branch %d and branch %d", name, j, i))
		}
		seen[name] = i
		var bad []error
		for key, commits := range b.Suspects {
			for _, c := range commits {
				if c.Side != Upstream && c.Side != Carry {
					bad = append(bad, fmt.Errorf("branch %s: suspect commit %s of %q in run %s has side %q; want %q or %q",
						name, c.Hash, key.Test.Name, key.Run, c.Side, Upstream, Carry))
				}
			}
		}
		// The map's order is random; the message should not be.
		slices.SortFunc(bad, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		errs = append(errs, bad...)
	}
	return errors.Join(errs...)
}
