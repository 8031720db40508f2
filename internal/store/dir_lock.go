package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockRecord is what a lock file or lock object holds: who holds it and,
// for an S3 lease, for how long it lives without renewal.
type lockRecord struct {
	Holder Holder `json:"holder"`
	// TTLSeconds is the lease's time to live; 0 for a folder lock.
	TTLSeconds float64 `json:"ttlSeconds,omitempty"`
	// Expires is the holder's own view of the expiry, for people reading
	// the record; takers judge expiry by the server's clock.
	Expires time.Time `json:"expires,omitzero"`
	// Nonce makes every write differ, so an If-Match on an old ETag can
	// never match a newer write that happens to hold the same bytes.
	Nonce string `json:"nonce,omitempty"`
}

func branchLockKey(branch string) string { return "locks/branches/" + EncodeName(branch) }

var _ Locker = (*Dir)(nil)

// LockBranch implements Locker with flock(2) on
// locks/branches/<EncodeName(branch)>.lock: the kernel drops the lock when
// the process dies, so a folder lock never goes stale and needs no renewal.
// The file also holds the holder's record, for the message a refused run
// prints; a record left by a process that died without releasing is
// reported as TookOver. The TTL option does not apply to a folder.
func (d *Dir) LockBranch(ctx context.Context, branch string, h Holder, opts ...LeaseOption) (*Lease, error) {
	if _, err := leaseOptions(opts); err != nil {
		return nil, err
	}
	p, err := d.path(branchLockKey(branch) + ".lock")
	if err != nil {
		return nil, err
	}
	return d.lockFile(ctx, "branch", branch, p, h)
}

// lockFile takes the flock of path for h and writes h's record into it.
func (d *Dir) lockFile(ctx context.Context, what, name, p string, h Holder) (*Lease, error) {
	h = h.withDefaults()
	f, prev, err := flockFile(p)
	if errors.Is(err, ErrLocked) {
		rec, _ := readLockFile(p)
		return nil, &LockedError{Name: name, Holder: rec.Holder, what: what}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s %s: %w", what, name, err)
	}
	var tookOver *Holder
	if prev != nil {
		tookOver = &prev.Holder
	}
	b, _ := json.Marshal(lockRecord{Holder: h})
	if err := rewrite(f, append(b, '\n')); err != nil {
		unflock(f)
		return nil, fmt.Errorf("lock %s %s: write holder record %s: %w", what, name, p, err)
	}
	release := func(context.Context) error {
		// Emptying the record before unlocking tells the next holder that
		// this one finished; the file itself stays, because another process
		// may already have it open to wait on.
		err := f.Truncate(0)
		unflock(f)
		if err != nil {
			return fmt.Errorf("release lock %s: %w", p, err)
		}
		return nil
	}
	return newLease(ctx, h, tookOver, 0, time.Time{}, nil, release), nil
}

// flockFile opens path and takes an exclusive flock without waiting. prev is
// the record a previous holder left, when it did not release.
func flockFile(path string) (f *os.File, prev *lockRecord, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, ErrLocked
		}
		return nil, nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		unflock(f)
		return nil, nil, err
	}
	if len(bytes.TrimSpace(b)) > 0 {
		var rec lockRecord
		if json.Unmarshal(b, &rec) == nil {
			prev = &rec
		} else {
			prev = &lockRecord{}
		}
	}
	return f, prev, nil
}

func unflock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

// rewrite replaces the contents of f with b. No fsync: the flock is the
// lock, the record only names its holder for messages, and after a crash
// it is stale whatever the disk kept.
func rewrite(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// readLockFile reads the holder record of a lock someone else holds. The
// holder writes it right after taking the lock, so an empty or torn read is
// retried a few times.
func readLockFile(path string) (lockRecord, error) {
	var rec lockRecord
	var err error
	for i := 0; i < 5; i++ {
		var b []byte
		b, err = os.ReadFile(path)
		if err == nil {
			if err = json.Unmarshal(b, &rec); err == nil {
				return rec, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return rec, err
}
