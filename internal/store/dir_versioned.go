package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

var _ VersionedStore = (*Dir)(nil)

// GetVersioned implements VersionedStore. A file's version is the SHA-256 of
// its contents: equal contents are the same version, which is all a
// compare-and-swap needs.
func (d *Dir) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	b, err := d.Get(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return b, contentVersion(b), nil
}

// PutIf implements VersionedStore: under a short flock of the file's folder
// it compares the file's version with ifVersion, then writes a temporary
// file and renames it over the old one.
func (d *Dir) PutIf(_ context.Context, key string, data []byte, ifVersion string) (string, error) {
	p, err := d.path(key)
	if err != nil {
		return "", err
	}
	err = d.withFolderLock(p, func() error {
		cur, err := os.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if ifVersion != "" {
				return fmt.Errorf("write state %s: it was deleted since it was read: %w", key, ErrConflict)
			}
		case err != nil:
			return err
		case ifVersion == "":
			return fmt.Errorf("write state %s: it was created since it was read: %w", key, ErrConflict)
		case contentVersion(cur) != ifVersion:
			return fmt.Errorf("write state %s: %w", key, ErrConflict)
		}
		return writeFileAtomic(p, data)
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return "", err
		}
		return "", fmt.Errorf("write state %s: %w", key, err)
	}
	return contentVersion(data), nil
}

func contentVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// withFolderLock runs fn under an exclusive flock of the folder that holds
// path, created if missing. Writers in one folder queue for the moment it
// takes to compare and rename; readers never wait.
func (d *Dir) withFolderLock(path string, fn func() error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock folder %s: %w", dir, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing drops it anyway
	return fn()
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so a crash never leaves half a document.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
