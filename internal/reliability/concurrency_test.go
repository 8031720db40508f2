package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// testTwoRunnersAtOnce starts two runners, each with its own work folder,
// on one S3 state in the same instant: one releases, the other exits 5
// naming it; nothing is pushed, built, tested or announced twice, and the
// second runner, run again, finds everything done.
func testTwoRunnersAtOnce(t *testing.T, s *servers) {
	w := newWorld(t, s, "tworunners")
	w.upstreamCommit("upstream: change", map[string]string{"pkg/u1/u.go": "package u\n"})
	works := []string{filepath.Join(w.dir, "runner-a"), filepath.Join(w.dir, "runner-b")}
	var runs []*run
	for _, dir := range works {
		w.workDir = dir
		runs = append(runs, w.start("release"))
	}
	codes := map[int]int{}
	loser := -1
	for i, r := range runs {
		code, killed := r.wait(t)
		if killed {
			t.Fatalf("runner %d was killed:\n%s", i, r.out)
		}
		codes[code]++
		if code == report.ExitLocked {
			loser = i
			if out := r.out.String(); !strings.Contains(out, "target release") || !strings.Contains(out, "expires") {
				t.Errorf("exit 5 does not name the holder and its lease:\n%s", out)
			}
		}
	}
	if codes[0] != 1 || codes[report.ExitLocked] != 1 {
		t.Fatalf("exit codes %v, want one 0 and one 5:\n%s\n%s", codes, runs[0].out, runs[1].out)
	}
	head := w.forkHead()
	once := func(when string) {
		t.Helper()
		if n := w.srv.Requests(gitserver.ReceivePack); n != 1 {
			t.Errorf("%s: %d pushes to the fork, want 1", when, n)
		}
		b, _ := os.ReadFile(filepath.Join(w.dir, "tested.txt"))
		if n := strings.Count(string(b), "\n"); n != 1 {
			t.Errorf("%s: the candidate was tested %d times, want 1", when, n)
		}
		if n := countAnnounced(w, head); n != 1 {
			t.Errorf("%s: %d announcements of %s, want 1", when, n, short(head))
		}
		if n := candidates(t, w); n != 1 {
			t.Errorf("%s: %d candidates in the registry, want 1", when, n)
		}
	}
	once("after both runners")
	w.workDir = works[loser]
	code, rep, r := w.result("release")
	if got := stagesOf(rep); code != 0 || got != "sync up-to-date, build up-to-date, test recorded, publish recorded" {
		t.Fatalf("the second runner again: exit %d, %s\n%s", code, got, r.out)
	}
	once("after the second runner ran again")
}

// countAnnounced counts the announcements of commit in the file channel
// and the delivery ids the webhook got for it, which must agree.
func countAnnounced(w *world, commit string) int {
	n := 0
	for _, m := range w.notifications() {
		if m.ForkCommit == commit && m.Event == notify.EventReleasePublished {
			n++
		}
	}
	ids := map[string]bool{}
	for _, d := range w.hook.deliveries() {
		if d.commit == commit && d.event == notify.EventReleasePublished {
			ids[d.id] = true
		}
	}
	if len(ids) != n {
		w.t.Errorf("the file channel has %d announcements of %s, the webhook %d delivery ids", n, short(commit), len(ids))
	}
	return n
}

// candidates counts the images in the world's repository.
func candidates(t *testing.T, w *world) int {
	t.Helper()
	repo, err := registry.Open(registry.Options{Ref: w.repo})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := repo.List(t.Context(), "hyperkube")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// pauseTests makes e2e.sh wait when it starts until fn has run.
func pauseTests(t *testing.T, w *world, fn func()) {
	t.Helper()
	pause, running := filepath.Join(w.dir, "PAUSE"), filepath.Join(w.dir, "RUNNING")
	if err := os.WriteFile(pause, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer os.Remove(pause)
		for range 2400 {
			if _, err := os.Stat(running); err == nil {
				fn()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
}

// testPersonPushesMidRun has a person push to the fork twice during one
// release: between its merge and its push (the push is refused, the merge
// redone on their commit), and while the tests run (the release publishes
// what it tested; the next release builds theirs). Neither commit is lost
// and nothing is forced.
func testPersonPushesMidRun(t *testing.T, s *servers) {
	w := newWorld(t, s, "person")
	if code, _, r := w.result("release"); code != 0 {
		t.Fatalf("the first release: exit %d\n%s", code, r.out)
	}
	up := w.upstreamCommit("upstream: change", map[string]string{"pkg/u1/u.go": "package u\n"})
	other := gitfixture.Clone(t, w.forkBare, filepath.Join(w.dir, "other"))
	var mu sync.Mutex
	var theirs []string
	push := func(i int) {
		// Not the test's goroutine: errors, never t.Fatal.
		if err := os.WriteFile(filepath.Join(other.Dir, fmt.Sprintf("person-%d.txt", i)), []byte("x\n"), 0o644); err != nil {
			t.Error(err)
		}
		for _, args := range [][]string{{"pull", "-q", "--no-rebase", "origin", "master"}, {"add", "-A"},
			{"commit", "-q", "-m", fmt.Sprintf("a person's commit %d", i)}, {"push", "-q", "origin", "master"}} {
			if _, err := other.RunErr(args...); err != nil {
				t.Error(err)
			}
		}
		h, _ := other.RunErr("rev-parse", "HEAD")
		mu.Lock()
		theirs = append(theirs, h)
		mu.Unlock()
	}
	var once sync.Once
	w.srv.BeforeReceivePack(func() { once.Do(func() { push(1) }) })
	defer w.srv.BeforeReceivePack(nil)
	pauseTests(t, w, func() { push(2) })

	code, rep, r := w.result("release")
	if code != 0 || len(theirs) != 2 {
		t.Fatalf("release with a person pushing: exit %d, their pushes %d\n%s", code, len(theirs), r.out)
	}
	merged := rep.Branches[0].Sync.ForkCommit
	isIn := func(c, in string) bool {
		_, err := gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "merge-base", "--is-ancestor", c, in)
		return err == nil
	}
	if !isIn(theirs[0], merged) || !isIn(up, merged) {
		t.Errorf("the merge %s lacks their first commit %s or upstream %s: the push was not redone on theirs", short(merged), short(theirs[0]), short(up))
	}
	if head := w.forkHead(); head != theirs[1] || !isIn(merged, head) {
		t.Errorf("the fork is at %s, want their second commit %s on top of the merge %s", short(head), short(theirs[1]), short(merged))
	}
	if bs := w.state(); bs.Publish.Commit != merged || !w.tested()[afterAt(bs.Publish.Image)] {
		t.Errorf("published %s of %s, want the tested merge %s", bs.Publish.Image, short(bs.Publish.Commit), short(merged))
	}
	// The next release takes their commit through every stage.
	code, rep, r = w.result("release")
	if got := stagesOf(rep); code != 0 || got != "sync up-to-date, build built, test passed, publish published" {
		t.Fatalf("the next release: exit %d, %s\n%s", code, got, r.out)
	}
	if bs := w.state(); bs.Publish.Commit != theirs[1] || w.forkHead() != theirs[1] {
		t.Errorf("the next release published %s, fork at %s, want their commit %s", short(bs.Publish.Commit), short(w.forkHead()), short(theirs[1]))
	}
	for _, c := range []string{merged, theirs[1]} {
		if n := countAnnounced(w, c); n != 1 {
			t.Errorf("%d announcements of %s, want 1", n, short(c))
		}
	}
}

// testRegistryOutage takes the registry away while the tests run: publish
// fails with exit 1 naming the registry, the verdict stays recorded and no
// tag moves; with the registry back, the next release publishes without
// testing again.
func testRegistryOutage(t *testing.T, s *servers) {
	w := newWorld(t, s, "registrydown")
	front := startOutage(t, s.registry)
	w.registry = front.addr
	c := &chain{w: w}
	before := w.forkHead()
	code, rep, r := w.result("release")
	if code != 0 {
		t.Fatalf("the first release: exit %d\n%s", code, r.out)
	}
	if res := c.check(before, w.lastUpstream()); len(res.problems) > 0 {
		t.Fatalf("the first release: %s", strings.Join(res.problems, "; "))
	}
	published := w.state().Publish.Image
	up := w.upstreamCommit("upstream: change", map[string]string{"pkg/u1/u.go": "package u\n"})
	before = w.forkHead()
	pauseTests(t, w, front.down)
	code, rep, r = w.result("release")
	b := rep.Branches[0]
	if code != report.ExitFailed || !strings.Contains(b.Error, front.addr) || !strings.Contains(b.Error, "nothing was tagged") {
		t.Fatalf("release with the registry down: exit %d, error %q, want 1 naming %s\n%s", code, b.Error, front.addr, r.out)
	}
	t.Logf("registry down: %s", b.Error)
	if bs := w.state(); bs.Test.Status != report.TestPassed || bs.Publish.Image != published {
		t.Errorf("after the failed publish: test %s, published %s (was %s)", bs.Test.Status, bs.Publish.Image, published)
	}
	front.up()
	code, rep, r = w.result("release")
	if got := stagesOf(rep); code != 0 || got != "sync up-to-date, build up-to-date, test recorded, publish published" {
		t.Fatalf("release with the registry back: exit %d, %s\n%s", code, got, r.out)
	}
	if res := c.check(before, up); len(res.problems) > 0 {
		t.Errorf("after the registry came back: %s", strings.Join(res.problems, "; "))
	}
}

// testS3Outage takes the S3 server, which holds the state, the lease and
// the logs, away while the tests run: the release fails with exit 1 naming
// the bucket; with S3 back the dead lease expires and the next release
// converges.
func testS3Outage(t *testing.T, s *servers) {
	own := s3test.Start(t) // the shared one serves the other worlds
	w := newWorldOn(t, s, own, "s3down")
	c := &chain{w: w}
	before := w.forkHead()
	code, _, r := w.result("release")
	if code != 0 {
		t.Fatalf("the first release: exit %d\n%s", code, r.out)
	}
	if res := c.check(before, w.lastUpstream()); len(res.problems) > 0 {
		t.Fatalf("the first release: %s", strings.Join(res.problems, "; "))
	}
	up := w.upstreamCommit("upstream: change", map[string]string{"pkg/u1/u.go": "package u\n"})
	before = w.forkHead()
	pauseTests(t, w, own.Stop)
	failed := w.start("release")
	code, killed := failed.wait(t)
	stopped := time.Now()
	if out := failed.out.String(); killed || code != report.ExitFailed || !strings.Contains(out, "s3://"+w.bucket+"/") {
		t.Fatalf("release with S3 down: exit %d, want 1 naming s3://%s/\n%s", code, w.bucket, out)
	}
	t.Logf("S3 down: %s", lastLines(failed.out.String(), 3))
	own.Start()
	for {
		code, _, r = w.result("release")
		if code != report.ExitLocked || r.start.Sub(stopped) > lease+leaseSlack {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("release with S3 back: exit %d\n%s", code, r.out)
	}
	if res := c.check(before, up); len(res.problems) > 0 {
		t.Errorf("after S3 came back: %s", strings.Join(res.problems, "; "))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}
