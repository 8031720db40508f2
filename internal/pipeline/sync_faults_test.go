package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// runSeparately runs a target like world.run, but safe to call from several
// goroutines at once (its own report path) and with stdout and the log
// (stderr) apart. config is the config file to use.
func (w *world) runSeparately(config, target string, extraEnv ...string) (code int, stdout, stderr string) {
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	env["HYPERFORK_CONFIG"] = config
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out, log bytes.Buffer
	code, err := pipeline.Main(context.Background(), target, pipeline.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &log})
	if err != nil {
		fmt.Fprintf(&out, "\nerror: %v\n", err)
	}
	return code, out.String(), log.String()
}

// Two scheduled runs, one per branch, at the same time: each holds its own
// branch lock, and both write to the one mirror.
func TestSyncRunsOnDifferentBranchesShareTheMirror(t *testing.T) {
	w := newWorld(t)
	config := w.config()
	for round := range 6 {
		w.upstreamCommit("master", fmt.Sprintf("upstream: master %d", round), map[string]string{fmt.Sprintf("pkg/m%d.go", round): "package pkg\n"})
		w.upstreamCommit("release-1.0", fmt.Sprintf("upstream: release %d", round), map[string]string{fmt.Sprintf("pkg/r%d.go", round): "package pkg\n"})
		var wg sync.WaitGroup
		codes, outs := make([]int, 2), make([]string, 2)
		for i, branch := range []string{"master", "release-1.0"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var log string
				codes[i], outs[i], log = w.runSeparately(config, "sync", "HYPERFORK_BRANCHES="+branch,
					"HYPERFORK_REPORT="+filepath.Join(w.dir, branch+".json"))
				outs[i] += log
			}()
		}
		wg.Wait()
		for i := range codes {
			if codes[i] != 0 {
				t.Fatalf("round %d: exit %d\n%s", round, codes[i], outs[i])
			}
		}
	}
}

// Someone pushes to the fork branch between hyperfork's look and its push,
// twice: the sync merges again on each new head and ends merged, with both
// of their commits in the result.
func TestSyncMergesAgainWhenTheForkMoves(t *testing.T) {
	w := newWorld(t)
	up := w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	theirs := w.pushOnEachPush(2)
	code, rep, out := w.run("sync", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("exit %d\n%s", code, out)
	}
	head := w.forkHead("master")
	if head != w.branch(rep, "master").Sync.ForkCommit {
		t.Fatalf("fork %s, report %s", head, w.branch(rep, "master").Sync.ForkCommit)
	}
	for _, c := range append(theirs(), up) {
		gitfixture.Git(t, w.fork.Home, w.forkBare, "merge-base", "--is-ancestor", c, head)
	}
	if len(theirs()) != 2 {
		t.Fatalf("the other person pushed %d times, want 2", len(theirs()))
	}
}

// When the fork moves at every attempt the sync gives up after a few and
// says so; nothing is lost, and the next run merges.
func TestSyncLeaseRefusedAtEveryAttempt(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	theirs := w.pushOnEachPush(1000)
	code, rep, out := w.run("sync", "HYPERFORK_BRANCHES=master")
	m := w.branch(rep, "master")
	if code != report.ExitFailed || m.Sync.Status != report.SyncError || !strings.Contains(m.Error, "moved 4 times") {
		t.Fatalf("exit %d: %s\n%s", code, m.Error, out)
	}
	all := theirs()
	if w.forkHead("master") != all[len(all)-1] {
		t.Fatal("the other person's commit was lost")
	}
	w.srv.BeforeReceivePack(nil)
	code, rep, out = w.run("sync", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("the next run: exit %d\n%s", code, out)
	}
}

// pushOnEachPush makes someone else push a commit to the fork's master each
// time the server is about to answer one of hyperfork's pushes, the first n
// times, from a goroutine of its own. It returns their commits so far.
func (w *world) pushOnEachPush(n int) func() []string {
	t := w.t
	other := gitfixture.Clone(t, w.forkBare, filepath.Join(w.dir, "other"))
	var mu sync.Mutex
	var pushed []string
	calls := 0
	turn, done := make(chan int), make(chan struct{})
	go func() {
		for i := range turn {
			// Not the test's goroutine: t.Error, never t.Fatal.
			if err := os.WriteFile(filepath.Join(other.Dir, fmt.Sprintf("other-%d.txt", i)), []byte("x\n"), 0o644); err != nil {
				t.Error(err)
			}
			for _, args := range [][]string{{"pull", "-q", "--no-rebase", "origin", "master"}, {"add", "-A"},
				{"commit", "-q", "-m", fmt.Sprintf("someone else's commit %d", i)}, {"push", "-q", "origin", "master"}} {
				if _, err := other.RunErr(args...); err != nil {
					t.Error(err)
				}
			}
			if h, err := other.RunErr("rev-parse", "HEAD"); err == nil {
				mu.Lock()
				pushed = append(pushed, h)
				mu.Unlock()
			}
			done <- struct{}{}
		}
	}()
	w.srv.BeforeReceivePack(func() {
		mu.Lock()
		i := calls
		calls++
		mu.Unlock()
		if i < n {
			turn <- i
			<-done
		}
	})
	t.Cleanup(func() { w.srv.BeforeReceivePack(nil); close(turn) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), pushed...)
	}
}

// Upstream moves a release tag (git tag -f, then a forced push of it): the
// next sync succeeds and the mirror, which the build describes versions
// from, follows the move.
func TestSyncFollowsAMovedUpstreamTag(t *testing.T) {
	w := newWorld(t)
	if code, _, out := w.run("sync"); code != 0 {
		t.Fatalf("first sync: exit %d\n%s", code, out)
	}
	moved := w.upstreamCommit("master", "upstream: the real v1.0.0", map[string]string{"pkg/c.go": "package c\n"})
	w.up.Run(t, "tag", "-f", "-a", "-m", "v1.0.0 again", "v1.0.0", moved)
	w.up.Push(t, w.upBare, "+refs/tags/v1.0.0")
	code, rep, out := w.run("sync")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("sync after the tag moved: exit %d\n%s", code, out)
	}
	mirror := filepath.Join(w.dir, "state", "mirror.git")
	if got := gitfixture.Git(t, w.fork.Home, mirror, "rev-parse", "refs/tags/v1.0.0^{commit}"); got != moved {
		t.Fatalf("the mirror's v1.0.0 is %s, upstream's %s", got, moved)
	}
}

// A state folder whose path holds "403", "not found" and "timed out": a
// missing fork repository is reported as missing, not as a bad token.
func TestSyncClassifiesByGitNotByPath(t *testing.T) {
	w := newWorld(t)
	w.forkURL = w.srv.URL("team-403/missing.git")
	odd := filepath.Join(w.dir, "team-403 not found timed out")
	if err := os.MkdirAll(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.config())
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(odd, "branches.yaml")
	if err := os.WriteFile(config, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, log := w.runSeparately(config, "sync")
	if code != report.ExitFailed || !strings.Contains(out, "repository not found") || strings.Contains(out+log, "authentication failed") {
		t.Fatalf("exit %d\n%s\n%s", code, out, log)
	}
	if _, err := os.Stat(filepath.Join(odd, "state", "mirror.git")); err != nil {
		t.Fatalf("the mirror is not under the odd folder: %v", err)
	}
}

// plan predicts: its log never says a branch was merged or created.
func TestPlanLogSaysWould(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	w.up.Run(t, "branch", "-f", "release-1.1", "master")
	w.up.Push(t, w.upBare, "release-1.1")
	w.branches = "branches:\n  - name: master\n  - name: release-1.0\n  - name: release-1.1\n"
	before := w.forkHead("master")
	code, out, log := w.runSeparately(w.config(), "plan")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, log)
	}
	if regexp.MustCompile(`(?i)\b(merged|created)\b`).MatchString(log) ||
		!strings.Contains(log, "would merge 1 upstream commit(s)") || !strings.Contains(log, "would create fork branch release-1.1") {
		t.Fatalf("plan's log:\n%s", log)
	}
	if w.forkHead("master") != before {
		t.Fatal("plan pushed")
	}
	if _, err := gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "rev-parse", "--verify", "refs/heads/release-1.1"); err == nil {
		t.Fatal("plan created the fork branch")
	}
}
