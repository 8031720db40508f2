package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RemoveStale removes what git leaves in the mirror when it is killed, if it
// is older than olderThan: temporary pack, index and object files
// (objects/pack/tmp_pack_*, tmp_idx_*, tmp_rev_*, objects/??/tmp_obj_*,
// commit-graph tmp_graph_*), lock files (*.lock: a ref, packed-refs, config,
// the commit-graph chain), and the .keep files fetch puts on a pack while it
// indexes it (which, left behind, keep that pack out of every repack).
// It returns the paths removed.
//
// A younger file is left alone even so: a git that is not hyperfork's (a
// person's, or an older version's) may be writing it. hyperfork's own
// writers are not running meanwhile: RemoveStale holds the mirror's write
// lock, whose file it never removes. A lock file left behind makes the next
// fetch fail ("Unable to create '….lock': File exists"), so the prune
// target calls this before it repacks, and Fetch when git refuses for one.
func (g *Git) RemoveStale(ctx context.Context, olderThan time.Duration) (removed []string, err error) {
	if olderThan <= 0 {
		return nil, fmt.Errorf("remove stale files from the mirror %s: the age threshold must be positive, not %v: a younger file may be one a running git is writing", g.Dir, olderThan)
	}
	unlock, err := g.lockWrites(ctx)
	if err != nil {
		return nil, fmt.Errorf("remove stale files from the mirror: %w", err)
	}
	defer unlock()
	return g.removeStale(ctx, olderThan)
}

// StaleAge is how old a file git leaves in the mirror must be before it is
// taken for a dead git's: no git holds a ref or commit-graph lock, or
// writes one temporary pack, for an hour.
const StaleAge = time.Hour

// removeStale is RemoveStale for a caller that holds the write lock.
func (g *Git) removeStale(ctx context.Context, olderThan time.Duration) (removed []string, err error) {
	cutoff := time.Now().Add(-olderThan)
	objects := filepath.Join(g.Dir, "objects")
	walkErr := filepath.WalkDir(g.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile, by git itself
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		name := d.Name()
		inObjects := strings.HasPrefix(p, objects+string(filepath.Separator))
		switch {
		case p == filepath.Join(g.Dir, writeLockName):
			return nil
		case strings.HasSuffix(name, ".lock"),
			inObjects && strings.HasPrefix(name, "tmp_"),
			inObjects && strings.HasSuffix(name, ".keep") && fetchKeep(p):
		default:
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !fi.ModTime().Before(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed = append(removed, p)
		return nil
	})
	if walkErr != nil {
		return removed, fmt.Errorf("remove stale files from the mirror %s: %w", g.Dir, walkErr)
	}
	return removed, nil
}

// fetchKeep reports whether a .keep file is one git's fetch or receive-pack
// wrote while indexing a pack ("fetch-pack 1234 on host"), not one a person
// made on purpose to keep a pack.
func fetchKeep(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	s := string(b)
	return strings.HasPrefix(s, "fetch-pack ") || strings.HasPrefix(s, "receive-pack ")
}
