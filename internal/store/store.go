// Package store keeps hyperfork's state and artifacts: per-branch records of
// what was processed, run reports, build and test logs, and per-branch
// leases. A store is a local folder (Dir) or an S3 bucket and prefix (S3);
// Open picks one from a location string such as ".hyperfork" or
// "s3://bucket/prefix". Both give the same semantics: compare-and-swap
// writes (VersionedStore, Update), leases that name their holder and outlive
// no crashed process for long (Locker), and streamed artifacts (Artifacts).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrLocked means another run holds the branch's lock.
var ErrLocked = errors.New("another hyperfork run holds the lock")

// ErrNotFound means the key holds nothing yet.
var ErrNotFound = errors.New("not found")

// Store keeps small documents and artifacts under slash-separated keys.
type Store interface {
	// Get returns the bytes under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put replaces the bytes under key atomically.
	Put(ctx context.Context, key string, data []byte) error
	// Lock takes an exclusive lock named name without waiting; it returns
	// ErrLocked when another run holds it.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Dir is a Store in a local folder.
type Dir struct {
	root string
}

var _ Store = (*Dir)(nil)

// NewDir returns a Store rooted at root, created if missing.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("state folder %s: %w", root, err)
	}
	return &Dir{root: root}, nil
}

// Root is the folder the store keeps its files in.
func (d *Dir) Root() string { return d.root }

// path maps a key to a file, refusing keys that would escape the root.
func (d *Dir) path(key string) (string, error) {
	clean := filepath.Clean("/" + key)
	if clean == "/" || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid state key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean)), nil
}

// Get implements Store.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", key, err)
	}
	return b, nil
}

// Put implements Store. The write goes to a temporary file that replaces
// the old one, so a crash never leaves half a document; it queues behind a
// PutIf in the same folder rather than slipping between its compare and its
// rename.
func (d *Dir) Put(_ context.Context, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := d.withFolderLock(p, func() error { return writeFileAtomic(p, data) }); err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	return nil
}

// Lock implements Store with flock(2): the kernel drops the lock when the
// process dies, so a crashed run never leaves a stale lock behind. The lock
// file records this process (host, pid, since), so a refusal is a
// *LockedError that names it; LockBranch records the run and target too.
func (d *Dir) Lock(ctx context.Context, name string) (func(), error) {
	p, err := d.path("locks/" + name + ".lock")
	if err != nil {
		return nil, err
	}
	l, err := d.lockFile(ctx, "lock", name, p, NewHolder("", ""))
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release(ctx) }, nil
}

// GetJSON decodes the document under key into v; ok is false when there is none.
func GetJSON(ctx context.Context, s Store, key string, v any) (ok bool, err error) {
	b, err := s.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode state %s: %w; delete the file to start this branch afresh", key, err)
	}
	return true, nil
}

// PutJSON encodes v under key.
func PutJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state %s: %w", key, err)
	}
	return s.Put(ctx, key, append(b, '\n'))
}
