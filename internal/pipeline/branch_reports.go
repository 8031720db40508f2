package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// branchReport is one branch's part of a run's report, kept per target and
// branch: when CI runs each branch in its own job, every job writes
// reports/<target>.json, and only these say what each branch's last run did.
type branchReport struct {
	Target   string         `json:"target"`
	Finished string         `json:"finished"`
	Branch   *report.Branch `json:"branch"`
}

func branchReportKey(target, branch string) string {
	return "reports/branches/" + target + "/" + safeName(branch) + ".json"
}

// keepBranchReports stores each branch's entry of a work run's report.
func (r *Runner) keepBranchReports(ctx context.Context, rep *report.Report) {
	if !workTargets[rep.Target] {
		return
	}
	// At once: on S3 each is a round trip, and a no-op run waits for them.
	var wg sync.WaitGroup
	for _, b := range rep.Branches {
		if b.ExitCode == report.ExitLocked {
			continue // another run held it: this one did nothing there to report
		}
		r.leaseMu.Lock()
		done := r.branchReported[b.Name]
		r.leaseMu.Unlock()
		if done {
			continue // its flow ended earlier, wrote it and let the lease go
		}
		wg.Go(func() { r.keepBranchReport(ctx, rep.Target, rep.Finished, b) })
	}
	wg.Wait()
}

// keepBranchReport stores one branch's entry of a work run's report.
func (r *Runner) keepBranchReport(ctx context.Context, target, finished string, b *report.Branch) {
	br := branchReport{Target: target, Finished: finished, Branch: b}
	if err := store.PutJSON(context.WithoutCancel(ctx), r.state, branchReportKey(target, b.Name), br); err != nil {
		r.log.Error("write the branch's report to the state store", "branch", b.Name, "err", err)
		return
	}
	r.leaseMu.Lock()
	defer r.leaseMu.Unlock()
	if r.branchReported == nil {
		r.branchReported = map[string]bool{}
	}
	r.branchReported[b.Name] = true
}

// lastBranchReport is the newest work run's entry for branch, preferring a
// release; nil when no run touched it.
func (r *Runner) lastBranchReport(ctx context.Context, branch string) (*branchReport, error) {
	var best *branchReport
	for target := range workTargets {
		var br branchReport
		ok, err := store.GetJSON(ctx, r.state, branchReportKey(target, branch), &br)
		if err != nil {
			return nil, err
		}
		if !ok || br.Branch == nil {
			continue
		}
		if best == nil || newerBranchReport(&br, best) {
			best = &br
		}
	}
	return best, nil
}

// newerBranchReport orders a branch's reports: a release over a single
// stage, then the later finish.
func newerBranchReport(a, b *branchReport) bool {
	if ar, brel := a.Target == "release", b.Target == "release"; ar != brel {
		return ar
	}
	return a.Finished > b.Finished
}

// printBranch writes one branch's last run in a few lines: heads,
// candidate, tests, what was published, and what waits for a person.
func printBranch(w io.Writer, br *branchReport) {
	b := br.Branch
	head := "  " + b.Name + ":"
	if s := b.Sync; s != nil {
		head += " sync " + s.Status
		if s.MergedCommits > 0 && s.Status == report.SyncMerged {
			head += fmt.Sprintf(" %d", s.MergedCommits)
		}
		if s.ForkCommit != "" || s.UpstreamCommit != "" {
			head += fmt.Sprintf(" (fork %s, upstream %s)", short(s.ForkCommit), short(s.UpstreamCommit))
		}
		head += ";"
	}
	fmt.Fprintf(w, "%s last %s finished %s, exit %d\n", head, br.Target, br.Finished, b.ExitCode)
	if c := b.Build; c != nil {
		line := c.Status
		if c.Version != "" {
			line += " " + c.Version
		}
		if c.Image != "" {
			line += ": " + c.Image
		}
		fmt.Fprintf(w, "      build    %s\n", line)
	}
	if t := b.Test; t != nil {
		line := t.Status
		if t.Status != report.TestSkipped {
			line += fmt.Sprintf(": %d passed, %d failed, %d skipped", t.Passed, t.Failed, t.Skipped)
			if len(t.Flaky) > 0 {
				line += fmt.Sprintf(", %d flaky", len(t.Flaky))
			}
		} else if t.Reason != "" {
			line += ": " + t.Reason
		}
		if t.Log != "" {
			line += "; log " + t.Log
		}
		fmt.Fprintf(w, "      test     %s\n", line)
	}
	if p := b.Publish; p != nil {
		line := p.Status
		if len(p.Tags) > 0 {
			line += " as " + strings.Join(p.Tags, ", ")
		}
		if p.Image != "" {
			line += ": " + p.Image
		}
		if p.Reason != "" {
			line += " (" + p.Reason + ")"
		}
		fmt.Fprintf(w, "      publish  %s\n", line)
	}
	for _, wait := range waitsForAPerson(b) {
		fmt.Fprintf(w, "      WAITS FOR YOU: %s\n", wait)
	}
}

// waitsForAPerson says what in a branch's last run only a person can
// settle: a conflict to resolve, new test failures to look at, an error.
func waitsForAPerson(b *report.Branch) []string {
	var out []string
	if s := b.Sync; s != nil && s.Status == report.SyncConflict {
		var paths []string
		for _, c := range s.Conflicts {
			paths = append(paths, c.Path)
		}
		out = append(out, fmt.Sprintf("merge conflict in %s; resolve it with:\n%s", strings.Join(paths, ", "), indentBy(strings.TrimSpace(s.Resolution), "        ")))
	}
	if t := b.Test; t != nil && len(t.New) > 0 {
		line := fmt.Sprintf("%d new test failure(s): %s", len(t.New), strings.Join(t.New, ", "))
		for _, s := range t.Suspects {
			line += fmt.Sprintf("; suspects: %d upstream, %d carry commits", len(s.Upstream), len(s.Carries))
		}
		out = append(out, line)
	}
	if b.Error != "" && (b.Sync == nil || b.Sync.Status != report.SyncConflict) {
		out = append(out, "error: "+b.Error)
	}
	return out
}

func indentBy(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
