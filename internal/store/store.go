// Package store keeps hyperfork's state and artifacts: per-branch records of
// what was processed, run reports, build logs, and per-branch locks. This
// version stores in a folder; the Store interface is what an S3 store will
// implement.
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
	"syscall"
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
// the old one, so a crash never leaves half a document.
func (d *Dir) Put(_ context.Context, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write state %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("write state %s: %w", key, err)
	}
	return nil
}

// Lock implements Store with flock(2): the kernel drops the lock when the
// process dies, so a crashed run never leaves a stale lock behind.
func (d *Dir) Lock(_ context.Context, name string) (func(), error) {
	p, err := d.path("locks/" + name + ".lock")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s (%s): %w; wait for it to finish", name, p, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
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
