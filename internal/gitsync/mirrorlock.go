package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writeLockName is the mirror's write lock, a file inside the mirror.
//
// Runs on different branches hold different branch locks and share one
// mirror. Each fetch updates refs and rewrites the commit-graph chain under
// git's own lock files, which fail at once ("Unable to create
// '…/commit-graph-chain.lock': File exists") instead of waiting, so fetches,
// update-ref and other ref or commit-graph writes take this lock first and
// wait their turn. Object writes (merge-tree --write-tree, commit-tree) do
// not: git writes an object to a temporary file and links it into place
// under its hash, never rewrites one, and touches no ref, so any number of
// merges run at once, and while another branch fetches. Reads need no lock
// either: git replaces refs and graph files by rename.
const writeLockName = "hyperfork-write.lock"

// lockWrites takes the mirror's write lock, waiting while another run or
// goroutine holds it, until ctx ends. flock(2) locks are per open file, so
// goroutines of one process exclude each other as processes do, and the
// kernel drops the lock of a killed process: there is nothing stale to clean.
// The file stays: removing it while someone holds it would let the next
// writer lock a new file beside the held one.
func (g *Git) lockWrites(ctx context.Context) (unlock func(), err error) {
	path := filepath.Join(g.Dir, writeLockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the mirror's write lock: %w", err)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock the mirror %s: %w", g.Dir, err)
		}
		// Polling rather than a blocking flock in a goroutine: a blocked
		// flock cannot be cancelled, and writes are short.
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for another run's write to the mirror %s: %w", g.Dir, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// withWriteLock runs fn holding the mirror's write lock.
func (g *Git) withWriteLock(ctx context.Context, fn func() error) error {
	unlock, err := g.lockWrites(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// ensureMirror creates the bare mirror at dir if there is none. Two first
// runs at once would both run git init and git config in it and fail on
// each other's files ("cannot copy … File exists", "could not lock config
// file"), so creation holds the write lock, whose file may come first: git
// init accepts a folder that is not empty.
func ensureMirror(ctx context.Context, dir string) error {
	// Always under the lock: a mirror that has a HEAD may still lack the
	// config the first run is writing.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create repository %s: %w", dir, err)
	}
	return (&Git{Dir: dir}).withWriteLock(ctx, func() error { return EnsureBare(ctx, dir) })
}

// EnsureShared creates a bare repository that several runs may create at
// once (the embedded fork), under the same kind of lock as the mirror's.
func EnsureShared(ctx context.Context, dir string) error { return ensureMirror(ctx, dir) }
