package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// maxIncremental is the number of changed paths above which a fresh export
// is cheaper than patching the old one path by path.
const maxIncremental = 5000

// Export writes the tree of commit into dir, without .git.
//
// When dir holds an earlier export, only the paths that differ between the
// two commits are rewritten: the files that did not change keep their
// metadata, so BuildKit's file sync sends only what changed and the Go
// build cache sees a one-line change as one. Changed files get the new
// commit's time, moved forward a second if needed, so that a file whose size
// did not change still looks changed to anything that compares metadata.
func (g *Git) Export(ctx context.Context, commit, dir string) error {
	marker := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".commit")
	prev := ""
	if b, err := os.ReadFile(marker); err == nil {
		if _, err := os.Stat(dir); err == nil {
			prev = strings.TrimSpace(string(b))
		}
	}
	if prev == commit {
		return nil
	}
	// The marker goes first: an interrupted export must not pass for a
	// complete one.
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("export commit %s: %w", short(commit), err)
	}
	var err error
	if prev != "" && g.hasCommit(ctx, prev) {
		err = g.exportChanges(ctx, prev, commit, dir)
	} else {
		err = g.exportAll(ctx, commit, dir)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(commit+"\n"), 0o644)
}

// exportAll writes the whole tree into an emptied dir.
func (g *Git) exportAll(ctx context.Context, commit, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear source folder %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create source folder %s: %w", dir, err)
	}
	return g.archive(ctx, commit, dir, nil)
}

// exportChanges turns an export of prev into an export of commit.
func (g *Git) exportChanges(ctx context.Context, prev, commit, dir string) error {
	out, err := g.run(ctx, nil, "diff", "--name-status", "--no-renames", "-z", prev, commit)
	if err != nil {
		return fmt.Errorf("compare %s with %s: %w", short(prev), short(commit), err)
	}
	fields := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	var write []string
	for i := 0; i+1 < len(fields); i += 2 {
		status, path := fields[i], fields[i+1]
		if status == "D" {
			p := filepath.Join(dir, filepath.FromSlash(path))
			if err := removeFile(p); err != nil {
				return fmt.Errorf("export commit %s: %w", short(commit), err)
			}
			pruneEmptyDirs(filepath.Dir(p), dir)
			continue
		}
		write = append(write, path)
	}
	if len(write) > maxIncremental {
		return g.exportAll(ctx, commit, dir)
	}
	if len(write) == 0 {
		return nil
	}
	when, err := g.CommitTime(ctx, commit)
	if err != nil {
		return err
	}
	if err := g.archive(ctx, commit, dir, write); err != nil {
		return err
	}
	for _, path := range write {
		p := filepath.Join(dir, filepath.FromSlash(path))
		t := when
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			if !fi.ModTime().Before(t) {
				t = fi.ModTime().Add(time.Second)
			}
			if err := os.Chtimes(p, t, t); err != nil {
				return fmt.Errorf("export commit %s: %w", short(commit), err)
			}
		}
	}
	return nil
}

// archive extracts commit's tree (or only paths of it) into dir.
func (g *Git) archive(ctx context.Context, commit, dir string, paths []string) error {
	args := []string{"-C", g.Dir, "archive", "--format=tar", commit}
	if len(paths) > 0 {
		// Literal paths: a file named "*.go" must not act as a glob.
		args = append(append(args, "--"), literal(paths)...)
	}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := exec.Run(ctx, exec.Cmd{Name: "git", Args: args, Env: g.baseEnv(), Stdout: pw, Redactor: g.Redactor})
		pw.CloseWithError(err)
		errc <- err
	}()
	xerr := untar(pr, dir)
	if xerr == nil {
		// git pads the archive past the end-of-archive marker; read it so
		// git does not fail writing to a closed pipe.
		_, xerr = io.Copy(io.Discard, pr)
	}
	pr.CloseWithError(xerr)
	if err := <-errc; err != nil {
		return fmt.Errorf("export commit %s: %w", short(commit), err)
	}
	if xerr != nil {
		return fmt.Errorf("export commit %s into %s: %w", short(commit), dir, xerr)
	}
	return nil
}

func literal(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = ":(literal)" + p
	}
	return out
}

// pruneEmptyDirs removes dir and its parents up to root while they are empty,
// as a checkout would after the last file of a package is deleted.
func pruneEmptyDirs(dir, root string) {
	for dir != root && strings.HasPrefix(dir, root) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}
