package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
	"github.com/hyperfork/hyperfork/internal/gitsync"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testreport"
)

// workTargets are the targets whose reports say what was done; status,
// plan, report and prune only look.
var workTargets = map[string]bool{"sync": true, "build": true, "test": true, "publish": true, "release": true}

// lastReport returns the newest report of work in the state store, by its
// finish time.
func (r *Runner) lastReport(ctx context.Context) (*report.Report, string, error) {
	var best *report.Report
	var bestKey string
	for target := range workTargets {
		var rep report.Report
		ok, err := store.GetJSON(ctx, r.state, reportKey(target), &rep)
		if err != nil {
			return nil, "", err
		}
		if ok && (best == nil || rep.Finished > best.Finished) {
			best, bestKey = &rep, reportKey(target)
		}
	}
	if best == nil {
		return nil, "", fmt.Errorf("no run report in %s yet: run go tool mage sync, build or release first", r.cfg.State.Store)
	}
	return best, bestKey, nil
}

// runReport prints the last run's report, one line per branch and stage,
// and where its JSON is.
func (r *Runner) runReport(ctx context.Context) (*report.Report, error) {
	if err := r.writeHTML(ctx); err != nil {
		return nil, err
	}
	last, path, err := r.lastReport(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.out, "last run: %s, finished %s, exit code %d (%s)\n", last.Target, last.Finished, last.ExitCode, path)
	branches, err := r.branches()
	if err != nil {
		return nil, err
	}
	for _, b := range branches {
		br, err := r.lastBranchReport(ctx, b.Name)
		if err != nil {
			return nil, err
		}
		if br == nil {
			// Runs from before branch reports were kept: the last run's.
			for _, lb := range last.Branches {
				if lb.Name == b.Name && lb.ExitCode != report.ExitLocked {
					br = &branchReport{Target: last.Target, Finished: last.Finished, Branch: lb}
				}
			}
		}
		if br == nil {
			fmt.Fprintf(r.out, "  %s: no run yet\n", b.Name)
			continue
		}
		printBranch(r.out, br)
	}
	return last, nil
}

// runPrune keeps the state folder from growing without bound: it repacks
// the mirror (runs keep gc.auto off so no repack starts in the middle of a
// merge), deletes the work folders of branches no longer configured, and
// keeps the logs.keep newest build logs per branch.
func (r *Runner) runPrune(ctx context.Context, rep *report.Report) {
	s, err := r.syncer(ctx)
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	// A killed fetch leaves temporary packs and locks; young ones may be a
	// running fetch's, so only those older than an hour go.
	removed, err := s.Git().RemoveStale(ctx, gitsync.StaleAge)
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	for _, p := range removed {
		fmt.Fprintf(r.out, "removed stale %s\n", p)
	}
	if err := s.Git().Maintain(ctx); err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	fmt.Fprintln(r.out, "mirror repacked")
	configured := map[string]bool{}
	for _, b := range r.cfg.Branches {
		configured[safeName(b.Name)] = true
	}
	for _, sub := range []string{"src", "out"} {
		entries, _ := os.ReadDir(filepath.Join(r.work, sub))
		for _, e := range entries {
			// A branch's folder, and the marker of which commit it holds
			// (".name.commit" for sources, "name.commit" for outputs).
			name := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "."), ".commit")
			if configured[name] {
				continue
			}
			p := filepath.Join(r.work, sub, e.Name())
			if err := os.RemoveAll(p); err != nil {
				rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
				return
			}
			fmt.Fprintf(r.out, "removed %s (branch no longer configured)\n", p)
		}
	}
	if err := r.pruneBuildLogs(ctx, configured); err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
	}
	if n, err := pruneDeliveries(ctx, r.state, r.opts.Now()); err != nil {
		rep.Error, rep.ExitCode = joinErr(rep.Error, err.Error()), report.ExitFailed
	} else if n > 0 {
		fmt.Fprintf(r.out, "removed %d delivery records older than %d days\n", n, int(deliveryKeep.Hours()/24))
	}
	// Image retention, per branch: a dry run unless HYPERFORK_APPLY=1.
	if len(r.cfg.Images) == 0 {
		return
	}
	repo, err := r.builder.repository()
	if err != nil {
		rep.Error, rep.ExitCode = joinErr(rep.Error, err.Error()), report.ExitFailed
		return
	}
	branches, _ := r.branches()
	for _, b := range branches {
		rb := rep.Branch(b.Name)
		rb.Publish = &report.Publish{Status: report.PublishSkipped, Tags: []string{}, Deleted: []string{}, Kept: []string{}}
		if !r.opts.Apply {
			rb.Publish.Reason = "dry run: set HYPERFORK_APPLY=1 to delete what the plan says"
		}
		if err := r.retain(ctx, repo, b.Name, r.opts.Apply, rb.Publish); err != nil {
			rb.Error, rb.ExitCode = r.redactor.String(err.Error()), report.ExitFailed
		}
	}
	if !r.opts.Apply {
		fmt.Fprintln(r.out, "retention: dry run; set HYPERFORK_APPLY=1 to apply the plans above")
	}
}

// pruneBuildLogs keeps the logs.keep newest build logs per configured branch
// in the artifact store, by the time the store recorded, and drops the logs
// of branches no longer configured. A listing that fails deletes nothing.
func (r *Runner) pruneBuildLogs(ctx context.Context, configured map[string]bool) error {
	objs, err := r.logs.List(ctx, "build/")
	if err != nil {
		return fmt.Errorf("list build logs: %w", err)
	}
	byBranch := map[string][]store.Object{}
	for _, o := range objs {
		branch, _, ok := strings.Cut(strings.TrimPrefix(o.Key, "build/"), "/")
		if ok {
			byBranch[branch] = append(byBranch[branch], o)
		}
	}
	keep := max(r.cfg.Logs.Keep, 1)
	for branch, logs := range byBranch {
		sort.Slice(logs, func(i, j int) bool { return logs[i].Time.After(logs[j].Time) })
		drop := logs[min(keep, len(logs)):]
		if !configured[branch] {
			drop = logs
		}
		for _, o := range drop {
			if err := r.logs.Delete(ctx, o.Key); err != nil {
				return fmt.Errorf("delete old build log %s: %w", o.Key, err)
			}
			fmt.Fprintf(r.out, "removed old build log %s\n", r.artifactLocation(o.Key))
		}
	}
	return nil
}

// writeHTML writes the test-history report of the selected branches to
// Options.HTMLPath: one static file that opens offline.
// reportSuspects keys the recorded suspects by failure for the HTML report.
// The record names tests as the history's test names do; a name that two
// classnames share gets the range under both.
func reportSuspects(h *history.History, runs map[string][]store.SuspectRange) map[testreport.FailureKey][]testreport.Commit {
	if len(runs) == 0 {
		return nil
	}
	byName := map[string][]junit.ID{}
	for _, t := range h.Tests {
		byName[t.Name] = append(byName[t.Name], t.ID)
	}
	out := map[testreport.FailureKey][]testreport.Commit{}
	for run, ranges := range runs {
		for _, sr := range ranges {
			var commits []testreport.Commit
			for _, c := range sr.Upstream {
				commits = append(commits, testreport.Commit{Hash: c.Hash, Subject: c.Subject, Side: testreport.Upstream})
			}
			for _, c := range sr.Carries {
				commits = append(commits, testreport.Commit{Hash: c.Hash, Subject: c.Subject, Side: testreport.Carry})
			}
			for _, name := range sr.Tests {
				for _, id := range byName[name] {
					out[testreport.FailureKey{Run: run, Test: id}] = commits
				}
			}
		}
	}
	return out
}

func (r *Runner) writeHTML(ctx context.Context) error {
	branches, err := r.branches()
	if err != nil {
		return err
	}
	in := testreport.Input{Title: "hyperfork test history", Generated: r.opts.Now().UTC()}
	for _, b := range branches {
		h, err := history.Load(ctx, r.state, b.Name, 100)
		if err != nil {
			return err
		}
		st, err := store.LoadBranch(ctx, r.state, b.Name)
		if err != nil {
			return err
		}
		// S3 locations become presigned links a browser opens.
		logs := make(map[string]string, len(st.Test.RunLogs))
		for id, loc := range st.Test.RunLogs {
			logs[id] = r.artifactLink(ctx, loc)
		}
		in.Branches = append(in.Branches, testreport.Branch{History: h, Logs: logs, Suspects: reportSuspects(h, st.Test.RunSuspects)})
	}
	path := r.opts.HTMLPath
	if path == "" {
		path = "hyperfork-report.html"
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write the test report %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	err = testreport.Write(f, in)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write the test report %s: %w", path, err)
	}
	fmt.Fprintf(r.out, "test history report: %s\n", path)
	return nil
}
