package pipeline

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/gitsync"
	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

func toGitBranches(bs []config.Branch) []gitsync.Branch {
	out := make([]gitsync.Branch, len(bs))
	for i, b := range bs {
		out[i] = gitsync.Branch{Name: b.Name, Upstream: b.Upstream, FFOnly: b.Strategy == config.StrategyFFOnly}
	}
	return out
}

// runSync runs the sync stage (or, with dryRun, predicts it) for branches,
// batched: one ls-remote and one fetch per remote. It returns the fork
// head of each branch whose sync did not fail, for the flows.
func (r *Runner) runSync(ctx context.Context, rep *report.Report, branches []config.Branch, dryRun bool) map[string]*ForkHead {
	heads := map[string]*ForkHead{}
	if len(branches) == 0 {
		return heads
	}
	s, err := r.sharedSyncer(ctx)
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return heads
	}
	printed := map[string]string{} // error text → the branch it was printed for
	for _, o := range s.Sync(ctx, toGitBranches(branches), dryRun) {
		b := rep.Branch(o.Branch)
		b.Sync = &o.Sync
		b.ExitCode = syncExit(o.Sync.Status)
		if o.Err != nil {
			b.Error = o.Err.Error()
		}
		if stopped := interruption(ctx); stopped != nil && o.Err != nil {
			// Stopped midway: nothing was learnt about the branch, so
			// nothing is recorded or notified; the next run starts over.
			b.Error = fmt.Sprintf("sync %v", stopped)
			o.Sync.Message = b.Error
			r.printSync(b, o, dryRun)
			continue
		}
		if !dryRun {
			// What finished before a signal is recorded all the same.
			r.recordSync(context.WithoutCancel(ctx), b, o)
			// Crash tests: the sync is recorded, the build not begun.
			killpoint.Reach("sync.recorded")
		}
		if first, ok := printed[b.Error]; ok && b.Error != "" {
			fmt.Fprintf(r.out, "%s: %s: the same error as %s\n", b.Name, o.Sync.Status, first)
		} else {
			r.printSync(b, o, dryRun)
			printed[b.Error] = b.Name
		}
		if o.Sync.Status != report.SyncError {
			heads[o.Branch] = &ForkHead{Commit: o.Sync.ForkCommit, Upstream: o.Sync.UpstreamCommit, SyncStatus: o.Sync.Status,
				Pending: dryRun && (o.Sync.Status == report.SyncMerged || o.Sync.Status == report.SyncCreated)}
		}
	}
	return heads
}

// syncExit maps a sync status to the contract's exit code.
func syncExit(status string) int {
	switch status {
	case report.SyncConflict:
		return report.ExitConflict
	case report.SyncError:
		return report.ExitFailed
	}
	return report.ExitOK
}

// recordSync keeps the outcome in the state store and notifies the
// administrator of conflicts and errors. A conflict already notified for the
// same upstream and fork heads is not notified again.
func (r *Runner) recordSync(ctx context.Context, b *report.Branch, o gitsync.Outcome) {
	old, err := store.LoadBranch(ctx, r.state, o.Branch)
	if err != nil {
		r.log.Warn("read branch state", "branch", o.Branch, "err", err)
	}
	prev := old.Sync
	var st store.BranchState
	st.Sync = store.SyncState{Status: o.Sync.Status, UpstreamCommit: o.Sync.UpstreamCommit,
		ForkCommit: o.Sync.ForkCommit, Time: r.opts.Now().UTC(), ReportedConflict: prev.ReportedConflict, ReportedError: prev.ReportedError}
	if o.Err != nil {
		st.Sync.Error = r.redactor.String(o.Err.Error())
	}
	var msg *notify.Message
	switch o.Sync.Status {
	case report.SyncConflict:
		key := o.Sync.UpstreamCommit + ".." + o.Sync.ForkCommit
		if prev.ReportedConflict != key {
			text := o.Summary
			if text == "" {
				text = o.Sync.Message
			}
			msg = &notify.Message{Event: notify.EventSyncConflict, ID: o.Branch + "/" + notify.EventSyncConflict + "/" + key, Branch: o.Branch, Status: o.Sync.Status,
				Title: fmt.Sprintf("hyperfork: merging upstream into %s needs a person (%d conflicted path(s))", o.Branch, len(o.Sync.Conflicts)),
				Text:  text, Sync: b.Sync}
			st.Sync.ReportedConflict = key
		}
	case report.SyncError:
		if prev.ReportedError != st.Sync.Error {
			// The id is the error and the record it follows: a run killed
			// before writing ReportedError repeats the same id, which the
			// delivery ledger sends nowhere twice; the same error back after
			// a good sync follows another record, so it is announced again.
			msg = &notify.Message{Event: notify.EventSyncError, ID: o.Branch + "/" + notify.EventSyncError + "/" + hashKey(st.Sync.Error, prev),
				Branch: o.Branch, Status: o.Sync.Status,
				Title: fmt.Sprintf("hyperfork: sync of %s failed", o.Branch), Text: b.Error, Sync: b.Sync}
			st.Sync.ReportedError = st.Sync.Error
		}
	default:
		st.Sync.ReportedConflict, st.Sync.ReportedError = "", ""
	}
	if msg != nil {
		msg.Text = r.redactor.String(msg.Text)
		if err := r.notifier.Send(ctx, *msg); err != nil {
			// A lost notification is a failure of the run: the conflict
			// would otherwise wait unseen. Forget the dedupe key so the next
			// run tries again.
			b.Error = joinErr(b.Error, r.redactor.String(err.Error()))
			b.ExitCode = report.Combine(b.ExitCode, report.ExitFailed)
			st.Sync.ReportedConflict, st.Sync.ReportedError = prev.ReportedConflict, prev.ReportedError
		} else if o.Sync.Status == report.SyncConflict {
			b.Sync.Notified = true
		}
		// Crash tests: announced, the dedupe key not recorded yet.
		killpoint.Reach("sync.announced")
	}
	if sameSync(prev, st.Sync) && msg == nil {
		// Nothing changed (the scheduled run that finds nothing new): no
		// write, so a no-op costs reads only. The record's time is when the
		// branch's sync state last changed.
		return
	}
	// Only the sync record changes: compare-and-swap keeps what another
	// stage or runner wrote meanwhile.
	err = store.UpdateBranch(ctx, r.state, o.Branch, func(cur *store.BranchState) error {
		cur.Sync = st.Sync
		return nil
	})
	if err != nil {
		b.Error = joinErr(b.Error, err.Error())
		b.ExitCode = report.Combine(b.ExitCode, report.ExitFailed)
	}
}

// sameSync reports whether two sync records say the same, whenever taken.
func sameSync(a, b store.SyncState) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// printSync writes one line per branch, and the whole conflict report.
func (r *Runner) printSync(b *report.Branch, o gitsync.Outcome, dryRun bool) {
	verb := ""
	if dryRun {
		verb = "would be "
	}
	s := o.Sync
	switch s.Status {
	case report.SyncUpToDate:
		fmt.Fprintf(r.out, "%s: up-to-date (fork %s)\n", b.Name, short(s.ForkCommit))
	case report.SyncMerged, report.SyncCreated:
		if dryRun {
			// The message already says what would happen.
			fmt.Fprintf(r.out, "%s: %s (fork %s)\n", b.Name, s.Message, short(s.ForkCommit))
		} else {
			fmt.Fprintf(r.out, "%s: %s: %s (fork %s)\n", b.Name, s.Status, s.Message, short(s.ForkCommit))
		}
	case report.SyncConflict:
		fmt.Fprintf(r.out, "%s: %sconflict\n", b.Name, verb)
		if o.Summary != "" {
			fmt.Fprintln(r.out, indent(r.redactor.String(o.Summary)))
		} else {
			fmt.Fprintln(r.out, indent(r.redactor.String(s.Message+"\n\n"+s.Resolution)))
		}
	default:
		fmt.Fprintf(r.out, "%s: %s: %s\n", b.Name, s.Status, r.redactor.String(b.Error))
	}
}

// runStatus prints a table per branch and fills the report.
func (r *Runner) runStatus(ctx context.Context, rep *report.Report, branches []config.Branch) {
	s, err := r.sharedSyncer(ctx)
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BRANCH\tUPSTREAM\tUPSTREAM HEAD\tFORK HEAD\tBEHIND\tCARRIES\tUPSTREAMED\tSYNC STATE SINCE\tLAST BUILD")
	var details []string
	for _, st := range s.Status(ctx, toGitBranches(branches)) {
		bs, _ := store.LoadBranch(ctx, r.state, st.Branch)
		b := &report.Branch{Name: st.Branch, Sync: &report.Sync{Status: bs.Sync.Status, UpstreamCommit: st.UpstreamCommit, ForkCommit: st.ForkCommit}}
		if st.Error != "" {
			b.Error, b.ExitCode = r.redactor.String(st.Error), report.ExitFailed
		}
		rep.Branches = append(rep.Branches, b)
		last := orDash(bs.Sync.Status)
		if !bs.Sync.Time.IsZero() {
			last += " " + bs.Sync.Time.Format("2006-01-02 15:04")
		}
		build := orDash(bs.Build.Status)
		if bs.Build.Commit != "" {
			build += " " + short(bs.Build.Commit)
		}
		behind, carries, ups := fmt.Sprint(st.Behind), fmt.Sprint(st.Carries), fmt.Sprint(len(st.Upstreamed))
		if st.Error != "" {
			behind, carries, ups = "?", "?", "?"
			details = append(details, fmt.Sprintf("%s: %s", st.Branch, b.Error))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Branch, st.UpstreamBranch, orDash(short(st.UpstreamCommit)),
			orDash(short(st.ForkCommit)), behind, carries, ups, last, build)
		for _, u := range st.Upstreamed {
			details = append(details, fmt.Sprintf("%s: carry already upstream (same patch-id), candidate to drop: %s", st.Branch, u))
		}
	}
	tw.Flush()
	for _, d := range details {
		fmt.Fprintln(r.out, d)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func indent(s string) string {
	out := "    "
	for _, c := range s {
		out += string(c)
		if c == '\n' {
			out += "    "
		}
	}
	return out
}
