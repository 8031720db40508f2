package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/report"
)

// point is a moment to crash at: a killpoint armed in the run, or a moment
// a server sees, at which the test kills the run from outside.
type point struct {
	what string
	// arm is HYPERFORK_KILLPOINT; "" when the test kills from outside.
	arm string
	// hold is the outside moment: "fetch" (the git server holds the
	// fetch's object negotiation) or "test" (e2e.sh is running).
	hold string
	// special names a point that a release reaches only on a merge
	// conflict ("conflict") or a commit that does not compile ("broken"):
	// it runs in a world of its own, see testAnnouncementCrash.
	special string
}

// crashPoints are the moments, in the order a release meets them: every
// stage boundary, and inside each stage between two effects that must
// survive a crash in either order; the last two are on the paths of a
// merge conflict and of a commit that does not compile.
var crashPoints = []point{
	{what: "lease taken, nothing else done", arm: "run.leased"},
	{what: "during the fetch (server holds it)", hold: "fetch"},
	{what: "merge commit made, not pushed", arm: "sync.merged"},
	{what: "pushed; mirror and state not told", arm: "sync.pushed"},
	{what: "sync recorded, build not begun", arm: "sync.recorded"},
	{what: "during the BuildKit solve (go build runs)", arm: "build.solving"},
	{what: "candidate pushed; log, record not kept", arm: "build.pushed"},
	{what: "build log kept, build not recorded", arm: "build.kept"},
	{what: "build recorded, tests not begun", arm: "build.recorded"},
	{what: "during the test run (e2e.sh runs)", hold: "test"},
	{what: "verdict and history, before log upload", arm: "test.verdict"},
	{what: "logs uploaded, before pruning and record", arm: "test.kept"},
	{what: "during log pruning (after 1st delete)", arm: "test.pruned"},
	{what: "verdict recorded, publish not begun", arm: "test.recorded"},
	{what: "between promotion's tags (after the 1st)", arm: "registry.tagged"},
	{what: "tagged, before retention", arm: "publish.promoted"},
	{what: "during retention (after the 1st delete)", arm: "registry.deleted"},
	{what: "retention applied, before notifying", arm: "publish.retained"},
	{what: "delivered, before the ledger record", arm: "notify.delivered"},
	{what: "notified, before the publish record", arm: "publish.announced"},
	{what: "publish recorded; lease, report left", arm: "publish.recorded"},
	{what: "conflict announced, its key not recorded", arm: "sync.announced", special: "conflict"},
	{what: "build error announced, not recorded", arm: "build.announced", special: "broken"},
}

// crashChains is how many worlds the points are dealt to, run at once: a
// killed run's lease takes seconds to expire, which another world's build
// uses.
const crashChains = 3

// outcome is one row of the table.
type outcome struct {
	n        int
	p        point
	how      string
	lockFree time.Duration
	// refused counts the releases the dead run's lock turned away.
	refused  int
	rerun    string
	state    string
	problems []string
}

// crashTable collects the rows from the chains.
type crashTable struct {
	mu   sync.Mutex
	rows []outcome
}

func (ct *crashTable) add(o outcome) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.rows = append(ct.rows, o)
}

// testCrashChain takes one world through its share of the points: for each,
// a new upstream commit, a release killed at the point, then releases
// until one is not refused by the dead run's lock, and the checks of the
// end state.
func testCrashChain(t *testing.T, s *servers, name string, idx []int, table *crashTable) {
	w := newWorld(t, s, name)
	c := &chain{w: w}
	// The first release, uninterrupted: the state every point starts from
	// has a published image, kept logs and an announcement.
	w.upstreamCommit("upstream: change 0", map[string]string{"pkg/u0/u.go": "package u\n"})
	before := w.forkHead()
	code, _, r := w.result("release")
	if code != 0 {
		t.Fatalf("the first release: exit %d\n%s", code, r.out)
	}
	if o := c.check(before, w.lastUpstream()); len(o.problems) > 0 {
		t.Fatalf("the uninterrupted release does not pass the checks: %s", strings.Join(o.problems, "; "))
	}
	for step, i := range idx {
		p := crashPoints[i]
		o := c.crash(t, step+1, p)
		o.n, o.p = i+1, p
		table.add(o)
		for _, pr := range o.problems {
			t.Errorf("%d %s: %s", i+1, p.what, pr)
		}
	}
}

// crash runs one point and returns its row.
func (c *chain) crash(t *testing.T, step int, p point) outcome {
	w := c.w
	up := w.upstreamCommit(fmt.Sprintf("upstream: change %d", step), map[string]string{fmt.Sprintf("pkg/u%d/u.go", step): "package u\n"})
	before := w.forkHead()
	o := outcome{}
	var env []string
	reached := make(chan struct{})
	var once sync.Once
	// unhold ends the outside moment once the run is dead, before the
	// releases that follow.
	unhold := func() {}
	switch {
	case p.arm != "":
		env = append(env, killpoint.Env+"="+p.arm)
		o.how = "killpoint " + p.arm
	case p.hold == "fetch":
		release := make(chan struct{})
		w.git.setOnFetch(func() bool {
			once.Do(func() { close(reached) })
			<-release
			return false
		})
		unhold = func() { w.git.setOnFetch(nil); close(release) }
		o.how = "SIGKILL at the fetch"
	case p.hold == "test":
		os.WriteFile(filepath.Join(w.dir, "HOLD"), nil, 0o644)
		unhold = func() {
			os.Remove(filepath.Join(w.dir, "HOLD"))
			os.Remove(filepath.Join(w.dir, "RUNNING"))
		}
		go func() {
			for range 2400 {
				if _, err := os.Stat(filepath.Join(w.dir, "RUNNING")); err == nil {
					once.Do(func() { close(reached) })
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		o.how = "SIGKILL in e2e.sh"
	}
	r := w.start("release", env...)
	if p.hold != "" {
		select {
		case <-reached:
			r.kill(t)
		case <-r.exited:
		}
	}
	_, killed := r.wait(t)
	killedAt := time.Now()
	unhold()
	if !killed {
		o.problems = append(o.problems, "the run was not killed at the point:\n"+r.out.String())
		return o
	}
	if p.arm != "" {
		name, nth, _ := killpoint.Parse(p.arm)
		if !strings.Contains(r.out.String(), killpoint.Message(name, nth)) {
			o.problems = append(o.problems, "killed, but not at the point:\n"+r.out.String())
		}
	}
	if left := waitProcessesGone(w.dir, 5*time.Second); len(left) > 0 {
		o.problems = append(o.problems, "processes outlived the killed run: "+strings.Join(left, "; "))
	}

	// Releases until the dead run's lock is free: refused (exit 5) until
	// its lease expires, never after.
	refused := 0
	for {
		code, rep, rr := w.result("release")
		if code == report.ExitLocked {
			refused++
			// Judged when the run started: it asks for the lock at once.
			if held := rr.start.Sub(killedAt); held > lease+leaseSlack {
				o.problems = append(o.problems, fmt.Sprintf("the lock is still held %s after the kill (lease %s):\n%s", held.Round(100*time.Millisecond), lease, rr.out))
				return o
			}
			time.Sleep(250 * time.Millisecond)
			continue
		}
		o.lockFree, o.refused = rr.start.Sub(killedAt), refused
		o.rerun = fmt.Sprintf("%s; exit %d in %.1fs", stagesOf(rep), code, rr.took.Seconds())
		if refused == 0 {
			o.lockFree = 0
		}
		if code != 0 {
			o.problems = append(o.problems, fmt.Sprintf("the rerun exited %d:\n%s", code, rr.out))
			return o
		}
		res := c.check(before, up)
		o.state, o.problems = res.summary, append(o.problems, res.problems...)
		if p.arm == "notify.delivered" {
			o.state += res.hookNote
		} else if res.hookNote != "" {
			o.problems = append(o.problems, "the webhook got a delivery twice"+res.hookNote)
		}
		return o
	}
}

// stagesOf says what each stage of the rerun did.
func stagesOf(rep *report.Report) string {
	if len(rep.Branches) == 0 {
		return "nothing"
	}
	b := rep.Branches[0]
	var parts []string
	if b.Sync != nil {
		parts = append(parts, "sync "+b.Sync.Status)
	}
	if b.Build != nil {
		parts = append(parts, "build "+b.Build.Status)
	}
	// A stage that found its inputs recorded says so in its reason.
	if b.Test != nil {
		if strings.Contains(b.Test.Reason, "was tested") {
			parts = append(parts, "test recorded")
		} else {
			parts = append(parts, "test "+b.Test.Status)
		}
	}
	if b.Publish != nil {
		if strings.Contains(b.Publish.Reason, "already") {
			parts = append(parts, "publish recorded")
		} else {
			parts = append(parts, "publish "+b.Publish.Status)
		}
	}
	return strings.Join(parts, ", ")
}

// writeTable prints the rows in point order, to the log and, when
// HYPERFORK_TEST_ARTIFACTS is set, to crash-points.md there.
func (ct *crashTable) write(t *testing.T) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	rows := make([]*outcome, len(crashPoints))
	for i := range ct.rows {
		rows[ct.rows[i].n-1] = &ct.rows[i]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| # | kill point | how | lock free after | rerun | end state |\n|---|---|---|---|---|---|\n")
	for i, o := range rows {
		if o == nil {
			fmt.Fprintf(&b, "| %d | %s | not run | | | |\n", i+1, crashPoints[i].what)
			continue
		}
		free := "at once"
		if o.lockFree > 0 {
			free = fmt.Sprintf("%.1fs (lease %s; %d runs refused, exit 5)", o.lockFree.Seconds(), lease, o.refused)
		}
		state := o.state
		if len(o.problems) > 0 {
			state = "FAILED: " + strings.ReplaceAll(strings.Join(o.problems, "; "), "\n", " ")
			if len(state) > 300 {
				state = state[:300] + "…"
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", o.n, o.p.what, o.how, free, o.rerun, state)
	}
	t.Logf("crash points:\n%s", b.String())
	if dir := os.Getenv("HYPERFORK_TEST_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "crash-points.md"), []byte(b.String()), 0o644); err != nil {
				t.Errorf("write the table: %v", err)
			}
		}
	}
}
