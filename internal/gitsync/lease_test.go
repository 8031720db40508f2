package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// busyFork is someone else pushing to the fork's master: a goroutine that
// pushes one commit of its own each time the server is about to answer one
// of hyperfork's pushes, for the first n of them, so each of those pushes
// finds the branch moved. It pushes to the bare repository's path, not
// through the server, so its own pushes do not call the hook.
type busyFork struct {
	t      *testing.T
	w      *syncWorld
	files  func(i int) map[string]string
	mu     sync.Mutex
	pushed []string
	calls  int
}

func startBusyFork(t *testing.T, w *syncWorld, n int, files func(i int) map[string]string) *busyFork {
	bf := &busyFork{t: t, w: w, files: files}
	other := gitfixture.Clone(t, w.forkBare, filepath.Join(w.dir, "other"))
	turn, done := make(chan int), make(chan struct{})
	go func() {
		// Not the test's goroutine: errors are t.Error, never t.Fatal, and
		// the hook always hears back.
		for i := range turn {
			if h, err := bf.push(other, i); err != nil {
				t.Error(err)
			} else {
				bf.mu.Lock()
				bf.pushed = append(bf.pushed, h)
				bf.mu.Unlock()
			}
			done <- struct{}{}
		}
	}()
	w.srv.BeforeReceivePack(func() {
		bf.mu.Lock()
		i := bf.calls
		bf.calls++
		bf.mu.Unlock()
		if i < n {
			turn <- i
			<-done
		}
	})
	t.Cleanup(func() { w.srv.BeforeReceivePack(nil); close(turn) })
	return bf
}

// push commits the i-th change on top of the fork's master and pushes it.
func (bf *busyFork) push(other *gitfixture.Repo, i int) (string, error) {
	if _, err := other.RunErr("pull", "-q", "--no-rebase", "origin", "master"); err != nil {
		return "", err
	}
	for p, content := range bf.files(i) {
		full := filepath.Join(other.Dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", fmt.Sprintf("someone else's commit %d", i)}, {"push", "-q", "origin", "master"}} {
		if _, err := other.RunErr(args...); err != nil {
			return "", err
		}
	}
	return other.RunErr("rev-parse", "HEAD")
}

func (bf *busyFork) commits() []string {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	return append([]string(nil), bf.pushed...)
}

func TestLeaseRefusedMergesAgainOnTheNewHead(t *testing.T) {
	w := newSyncWorld(t)
	up := w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	// Three pushes in a row land between hyperfork's look and its push.
	bf := startBusyFork(t, w, leaseRetries, func(i int) map[string]string {
		return map[string]string{fmt.Sprintf("other/%d.txt", i): "x\n"}
	})
	o := only(t, w.syncer(w.options()).Sync(context.Background(), []Branch{{Name: "master", Upstream: "master"}}, false))
	if o.Err != nil || o.Sync.Status != report.SyncMerged {
		t.Fatalf("%s %v\n%s", o.Sync.Status, o.Err, w.log)
	}
	head := w.forkHead("master")
	theirs := bf.commits()
	if head != o.Sync.ForkCommit || len(theirs) != leaseRetries {
		t.Fatalf("fork %s, outcome %s, %d pushes by the other", head, o.Sync.ForkCommit, len(theirs))
	}
	for _, c := range append(theirs, up) {
		if !w.isAncestor(c, head) {
			t.Fatalf("%s is not in the merged fork: lost", c)
		}
	}
	if o.Sync.PreviousFork != theirs[len(theirs)-1] {
		t.Fatalf("merged on %s, want the last head %s", o.Sync.PreviousFork, theirs[len(theirs)-1])
	}
	if n := strings.Count(w.log.String(), "merging again"); n != leaseRetries {
		t.Fatalf("%d retries logged, want %d:\n%s", n, leaseRetries, w.log)
	}
	if got := w.mirrorGit("rev-parse", mirrorRef("fork", "master")); got != head {
		t.Fatalf("the mirror tracks %s, fork is at %s", got, head)
	}
}

func TestLeaseRefusedTooOftenIsReported(t *testing.T) {
	w := newSyncWorld(t)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	bf := startBusyFork(t, w, 100, func(i int) map[string]string {
		return map[string]string{fmt.Sprintf("other/%d.txt", i): "x\n"}
	})
	o := only(t, w.syncer(w.options()).Sync(context.Background(), []Branch{{Name: "master", Upstream: "master"}}, false))
	if o.Sync.Status != report.SyncError || !errors.Is(o.Err, ErrLeaseRefused) {
		t.Fatalf("%s %v", o.Sync.Status, o.Err)
	}
	theirs := bf.commits()
	if len(theirs) != leaseRetries+1 || !strings.Contains(o.Err.Error(), fmt.Sprintf("moved %d times", leaseRetries+1)) {
		t.Fatalf("%d pushes refused: %v", len(theirs), o.Err)
	}
	if w.forkHead("master") != theirs[len(theirs)-1] {
		t.Fatal("the other person's last commit was lost")
	}
}

func TestLeaseRefusedThenConflictOrUpToDate(t *testing.T) {
	t.Run("conflict", func(t *testing.T) {
		w := newSyncWorld(t)
		w.upstreamCommit("master", "upstream: bump A", map[string]string{"pkg/a.go": "package a\n\nconst A = 2\n"})
		bf := startBusyFork(t, w, 1, func(int) map[string]string {
			return map[string]string{"pkg/a.go": "package a\n\nconst A = 100 // company\n"}
		})
		o := only(t, w.syncer(w.options()).Sync(context.Background(), []Branch{{Name: "master", Upstream: "master"}}, false))
		theirs := bf.commits()
		if o.Sync.Status != report.SyncConflict || o.Err != nil || len(o.Sync.Conflicts) != 1 || o.Sync.Conflicts[0].Path != "pkg/a.go" {
			t.Fatalf("%+v %v", o.Sync, o.Err)
		}
		if o.Sync.ForkCommit != theirs[0] || w.forkHead("master") != theirs[0] || !strings.Contains(o.Sync.Resolution, "git merge") {
			t.Fatalf("conflict reported against %s, fork at %s, theirs %s", o.Sync.ForkCommit, w.forkHead("master"), theirs[0])
		}
	})
	t.Run("up-to-date", func(t *testing.T) {
		w := newSyncWorld(t)
		up := w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
		// The other person merges upstream themselves.
		other := gitfixture.Clone(t, w.forkBare, filepath.Join(w.dir, "merger"))
		var once sync.Once
		var theirs string
		w.srv.BeforeReceivePack(func() {
			once.Do(func() {
				if _, err := other.RunErr("pull", "-q", "--no-rebase", "--no-edit", w.upBare, "master"); err != nil {
					t.Error(err)
				}
				var err error
				if theirs, err = other.RunErr("rev-parse", "HEAD"); err != nil {
					t.Error(err)
				}
				if _, err := other.RunErr("push", "-q", "origin", "master"); err != nil {
					t.Error(err)
				}
			})
		})
		defer w.srv.BeforeReceivePack(nil)
		o := only(t, w.syncer(w.options()).Sync(context.Background(), []Branch{{Name: "master", Upstream: "master"}}, false))
		if o.Sync.Status != report.SyncUpToDate || o.Err != nil || o.Sync.ForkCommit != theirs || !w.isAncestor(up, theirs) {
			t.Fatalf("%+v %v", o.Sync, o.Err)
		}
		if w.forkHead("master") != theirs {
			t.Fatal("the fork moved past the other person's merge")
		}
	})
}
