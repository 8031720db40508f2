package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/report"
)

// testAnnouncementCrash kills a release between announcing what waits for
// a person and recording that it did: a merge conflict, or a commit that
// does not compile. The rerun meets the same conflict or failure and must
// announce it exactly once in all, and record it so that later runs stay
// quiet. (The build error was recorded before it was announced, and a
// crash in between lost it for good.)
func testAnnouncementCrash(t *testing.T, s *servers, i int, table *crashTable) {
	p := crashPoints[i]
	w := newWorld(t, s, p.special)
	if code, _, r := w.result("release"); code != 0 {
		t.Fatalf("the first release: exit %d\n%s", code, r.out)
	}
	o := outcome{n: i + 1, p: p, how: "killpoint " + p.arm}
	defer func() {
		table.add(o)
		for _, pr := range o.problems {
			t.Errorf("%d %s: %s", i+1, p.what, pr)
		}
	}()
	before := w.forkHead()
	event, commit, want := notify.EventSyncConflict, before, report.ExitConflict
	if p.special == "broken" {
		commit = w.forkCommit("carry: broken", map[string]string{"cmd/beta/broken.go": "package main\n\nfunc broken() { undefinedThing() }\n"})
		event, want = notify.EventBuildError, report.ExitFailed
	} else {
		// Upstream adds the file the fork's carry added, differently.
		w.upstreamCommit("upstream: its own company/patch.go", map[string]string{"company/patch.go": "package company\n\nconst Upstream = 1\n"})
	}
	r := w.start("release", killpoint.Env+"="+p.arm)
	if _, killed := r.wait(t); !killed || !strings.Contains(r.out.String(), killpoint.Message(p.arm, 1)) {
		o.problems = append(o.problems, "the run was not killed at the point:\n"+r.out.String())
		return
	}
	killedAt := time.Now()
	if left := waitProcessesGone(w.dir, 5*time.Second); len(left) > 0 {
		o.problems = append(o.problems, "processes outlived the killed run: "+strings.Join(left, "; "))
	}
	var code int
	var rep *report.Report
	var rr *run
	for {
		code, rep, rr = w.result("release")
		if code != report.ExitLocked || rr.start.Sub(killedAt) > lease+leaseSlack {
			break
		}
		o.refused++
		time.Sleep(250 * time.Millisecond)
	}
	if o.lockFree = rr.start.Sub(killedAt); o.refused == 0 {
		o.lockFree = 0
	}
	o.rerun = fmt.Sprintf("%s; exit %d in %.1fs", stagesOf(rep), code, rr.took.Seconds())
	if code != want {
		o.problems = append(o.problems, fmt.Sprintf("the rerun exited %d, want %d:\n%s", code, want, rr.out))
		return
	}
	announced := func() (files, ids, posts int) {
		for _, m := range w.notifications() {
			if m.Event == event && commitOf(m) == commit {
				files++
			}
		}
		seen := map[string]bool{}
		for _, d := range w.hook.deliveries() {
			if d.event == event && d.commit == commit {
				seen[d.id] = true
				posts++
			}
		}
		return files, len(seen), posts
	}
	if f, ids, posts := announced(); f != 1 || ids != 1 || posts != 1 {
		o.problems = append(o.problems, fmt.Sprintf("%s of %s: %d files, %d webhook POSTs under %d delivery ids, want 1 each", event, short(commit), f, posts, ids))
	}
	bs := w.state()
	switch p.special {
	case "conflict":
		if w.forkHead() != before || bs.Sync.Status != report.SyncConflict || bs.Sync.ReportedConflict == "" {
			o.problems = append(o.problems, fmt.Sprintf("fork at %s (was %s), sync %s, reported %q", short(w.forkHead()), short(before), bs.Sync.Status, bs.Sync.ReportedConflict))
		}
	case "broken":
		if bs.Build.Commit != commit || bs.Build.Status != report.BuildError {
			o.problems = append(o.problems, fmt.Sprintf("build record %s of %s, want the broken commit %s recorded", bs.Build.Status, short(bs.Build.Commit), short(commit)))
		}
	}
	// The next run meets it again, announces nothing and rebuilds nothing.
	next, rep, nr := w.result("release")
	f, _, posts := announced()
	if next != want && !(p.special == "broken" && next == 0) || f != 1 || posts != 1 {
		o.problems = append(o.problems, fmt.Sprintf("the next run: exit %d, %d files and %d POSTs of the announcement\n%s", next, f, posts, nr.out))
	}
	if b := rep.Branches[0].Build; p.special == "broken" && (b == nil || b.Status != report.BuildUpToDate) {
		o.problems = append(o.problems, fmt.Sprintf("the next run built the broken commit again: %+v", b))
	}
	what := "conflict announced once (file 1, webhook 1), fork untouched at " + short(before)
	if p.special == "broken" {
		what = "build error announced once (file 1, webhook 1) and recorded for " + short(commit)
	}
	o.state = fmt.Sprintf("%s; the next run exits %d, announces and builds nothing", what, next)
}
