package gitsync

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// Two runs on different branches hold different branch locks and share the
// mirror. Every round gives both branches new upstream commits and syncs
// them at the same time; without the mirror's write lock their fetches met
// on commit-graph-chain.lock about one round in four.
func TestConcurrentSyncersShareTheMirror(t *testing.T) {
	w := newSyncWorld(t)
	a, b := w.syncer(w.options()), w.syncer(w.options())
	ctx := context.Background()
	const rounds = 16
	for round := range rounds {
		w.upstreamCommit("master", fmt.Sprintf("upstream: master %d", round), map[string]string{fmt.Sprintf("pkg/m%d.go", round): "package pkg\n"})
		w.upstreamCommit("release-1.0", fmt.Sprintf("upstream: release %d", round), map[string]string{fmt.Sprintf("pkg/r%d.go", round): "package pkg\n"})
		var outs [2]Outcome
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, job := range []struct {
			s      *Syncer
			branch string
		}{{a, "master"}, {b, "release-1.0"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				outs[i] = only(t, job.s.Sync(ctx, []Branch{{Name: job.branch, Upstream: job.branch}}, false))
			}()
		}
		close(start)
		wg.Wait()
		for _, o := range outs {
			if o.Err != nil || o.Sync.Status != report.SyncMerged {
				t.Fatalf("round %d, %s: %s %v", round, o.Branch, o.Sync.Status, o.Err)
			}
			if got := w.forkHead(o.Branch); got != o.Sync.ForkCommit {
				t.Fatalf("round %d: fork %s at %s, outcome says %s", round, o.Branch, got, o.Sync.ForkCommit)
			}
		}
	}
	// The mirror is sound after it all.
	w.mirrorGit("fsck", "--connectivity-only", "--no-progress")
	w.mirrorGit("commit-graph", "verify")
}

func TestWriteLockWaitsAndHonoursContext(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureBare(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	g := &Git{Dir: dir}
	unlock, err := g.lockWrites(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A second writer (another goroutine: flock is per open file) waits,
	// and gives up when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := g.lockWrites(ctx); err == nil {
		t.Fatal("a second writer got the held lock")
	}
	got := make(chan error, 1)
	go func() {
		u, err := g.lockWrites(context.Background())
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the waiter returned while the lock was held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the released lock")
	}
}
