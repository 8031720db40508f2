package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// s3World is a world whose state is in a bucket of a real S3 server.
func s3World(t *testing.T) (*world, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	srv.MakeBucket("hyperfork")
	srv.Setenv(t)
	w := newWorld(t)
	w.store = "s3://hyperfork/state"
	w.branches = "branches:\n  - name: master\n"
	return w, srv
}

// runIn is world.run for another goroutine: it reports instead of failing.
func (w *world) runIn(target string, extraEnv ...string) (int, string) {
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	env["HYPERFORK_CONFIG"] = w.config()
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out bytes.Buffer
	code, err := pipeline.Main(context.Background(), target, pipeline.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out})
	if err != nil {
		out.WriteString("\nerror: " + err.Error())
	}
	return code, out.String()
}

// TestTwoRunnersShareS3State runs two runners with their own work folders
// on one S3 state: at once on one branch, the second exits 5 naming the
// first; one after the other, the second finds the work done.
func TestTwoRunnersShareS3State(t *testing.T) {
	w, _ := s3World(t)
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	first, second := filepath.Join(w.dir, "runner-a"), filepath.Join(w.dir, "runner-b")

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.srv.BeforeReceivePack(func() {
		once.Do(func() { close(reached) })
		<-release
	})
	w.workDir = first
	cfgA := w.config()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := w.runIn("sync", "HYPERFORK_CONFIG="+cfgA)
		done <- result{code, out}
	}()
	<-reached

	w.workDir = second
	code, rep, out := w.run("sync")
	if code != report.ExitLocked {
		t.Fatalf("second runner at once: exit %d, want 5\n%s", code, out)
	}
	host, _ := os.Hostname()
	if e := w.branch(rep, "master").Error; !strings.Contains(e, "target sync") || !strings.Contains(e, host) {
		t.Errorf("exit 5 does not name the holder: %s", e)
	}
	close(release)
	a := <-done
	if a.code != 0 {
		t.Fatalf("first runner: exit %d\n%s", a.code, a.out)
	}
	w.srv.BeforeReceivePack(nil)

	pushes := w.srv.Requests(gitserver.ReceivePack)
	code, rep, out = w.run("sync")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncUpToDate {
		t.Fatalf("second runner after the first: exit %d\n%s", code, out)
	}
	if n := w.srv.Requests(gitserver.ReceivePack); n != pushes {
		t.Errorf("the second runner pushed again (%d pushes, was %d)", n, pushes)
	}
	if code, _, out := w.run("report"); code != 0 || !strings.Contains(out, "last run: sync") {
		t.Errorf("report from the second runner's machine: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(second, "mirror.git")); err != nil {
		t.Errorf("the second runner's mirror is not in its own work folder: %v", err)
	}
}

// TestKilledHolderLeaseExpires kills a run holding the branch's lease in S3
// with SIGKILL: until its lease expires the next run exits 5; after, it
// takes the lock over, says so, and syncs.
func TestKilledHolderLeaseExpires(t *testing.T) {
	w, _ := s3World(t)
	w.lease = "3s"
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	// The killed run's push must not go through: hold it until the kill.
	reached, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.srv.BeforeReceivePack(func() {
		once.Do(func() { close(reached) })
		<-hold
	})
	m := w.startMage(t, "sync")
	select {
	case <-reached:
	case <-m.exited:
		t.Fatalf("the run ended before its push:\n%s", m.out)
	case <-time.After(5 * time.Minute):
		t.Fatalf("the run never reached its push:\n%s", m.out)
	}
	worker := childOf(t, childOf(t, m.cmd.Process.Pid))
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	close(hold)
	w.srv.BeforeReceivePack(nil)
	killed := time.Now()

	code, rep, out := w.run("sync")
	if code != report.ExitLocked || !strings.Contains(w.branch(rep, "master").Error, "expires") {
		t.Fatalf("right after the kill: exit %d, want 5 with the lease's expiry\n%s", code, out)
	}
	// The lease (3s) plus a second of slack for the one-second resolution
	// of LastModified, plus up to a second of the server's Date, plus
	// margin for a loaded machine.
	time.Sleep(time.Until(killed.Add(7 * time.Second)))
	code, rep, out = w.run("sync")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("after the lease expired: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "took over the stale lock") {
		t.Errorf("the run does not say it took over a stale lock:\n%s", out)
	}
}

// TestS3DownDuringRun stops the S3 server while a sync is about to record
// its merge: the run exits 1 naming the bucket and key, the previous state
// is intact, and the next run after the server is back converges.
func TestS3DownDuringRun(t *testing.T) {
	w, srv := s3World(t)
	// With S3 down the lease cannot be released either: it expires.
	w.lease = "3s"
	if code, _, out := w.run("sync"); code != 0 {
		t.Fatalf("first sync: exit %d\n%s", code, out)
	}
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.srv.BeforeReceivePack(func() {
		once.Do(func() { close(reached) })
		<-release
	})
	done := make(chan struct {
		code int
		out  string
	}, 1)
	go func() {
		code, out := w.runIn("sync")
		done <- struct {
			code int
			out  string
		}{code, out}
	}()
	<-reached
	srv.Stop()
	close(release)
	res := <-done
	w.srv.BeforeReceivePack(nil)
	if res.code != report.ExitFailed {
		t.Fatalf("sync with S3 down: exit %d, want 1\n%s", res.code, res.out)
	}
	if !strings.Contains(res.out, "s3://hyperfork/state/branches/master/state.json") {
		t.Errorf("the error does not name the bucket and key:\n%s", res.out)
	}

	srv.Start()
	stopped := time.Now()
	st, err := store.Open(context.Background(), "s3://hyperfork/state", store.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	var prev store.BranchState
	b, err := st.Get(context.Background(), "branches/master/state.json")
	if err != nil || json.Unmarshal(b, &prev) != nil || prev.Sync.Status != report.SyncCreated && prev.Sync.Status != report.SyncUpToDate {
		t.Fatalf("the previous state is not intact: %v %s", err, b)
	}
	time.Sleep(time.Until(stopped.Add(7 * time.Second))) // the lease, as above
	code, rep, out := w.run("sync")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncUpToDate {
		t.Fatalf("after S3 is back: exit %d\n%s", code, out)
	}
	var now store.BranchState
	if _, err := store.GetJSON(context.Background(), st, "branches/master/state.json", &now); err != nil || now.Sync.ForkCommit != w.forkHead("master") {
		t.Fatalf("the state did not converge: %v %+v, fork at %s", err, now.Sync, w.forkHead("master"))
	}
}
