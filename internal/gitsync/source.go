package gitsync

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EnsureCommit makes sure the mirror holds the fork commit of branch,
// fetching the branch (and tags, which version stamping describes) if not.
//
// Upstream's tags are fetched too when the commit is new, because a fork
// usually does not carry them and the version is described from them. If
// upstream cannot be reached the build goes on and the version says so
// (v0.0.0-…): a build of the fork does not depend on upstream being up.
func (s *Syncer) EnsureCommit(ctx context.Context, branch, commit string) error {
	if s.git.hasCommit(ctx, commit) {
		return nil
	}
	if err := s.git.Fetch(ctx, s.opts.Fork, []string{branch}, true); err != nil {
		return err
	}
	if !s.git.hasCommit(ctx, commit) {
		return fmt.Errorf("fork branch %s moved past %s while fetching; run again", branch, short(commit))
	}
	// After the fork's tags, so that upstream's word wins on a tag both have.
	if err := s.git.Fetch(ctx, s.opts.Upstream, nil, true); err != nil {
		s.opts.Logger.Warn("could not fetch upstream tags; the version falls back to v0.0.0", "err", err)
	}
	return nil
}

// ForkHead returns the commit the fork branch points at, by ls-remote.
func (s *Syncer) ForkHead(ctx context.Context, branch string) (string, error) {
	heads, err := s.git.LsRemote(ctx, s.opts.Fork, []string{branch})
	if err != nil {
		return "", err
	}
	h := heads[branch]
	if h == "" {
		return "", fmt.Errorf("fork branch %s does not exist; run sync first to create it from upstream", branch)
	}
	return h, nil
}

// describeRE splits git describe output: tag, distance, abbreviated hash.
var describeRE = regexp.MustCompile(`^(.*)-([0-9]+)-g([0-9a-f]+)$`)

// Describe returns the Kubernetes version string for commit, the way
// hack/lib/version.sh makes it: v1.34.2 on a tag, v1.34.2-12+0123abcd4567ef
// twelve commits after it, v1.35.0-alpha.1.5+0123abcd4567ef after a
// pre-release tag. With no tag at all it is v0.0.0-<commits>+<hash>.
func (g *Git) Describe(ctx context.Context, commit string) (string, error) {
	out, err := g.run(ctx, nil, "describe", "--tags", "--match=v*", "--abbrev=14", commit+"^{commit}")
	if err != nil {
		n, cerr := g.count(ctx, commit)
		if cerr != nil {
			return "", fmt.Errorf("describe %s: %w", short(commit), err)
		}
		return fmt.Sprintf("v0.0.0-%d+%s", n, commit[:14]), nil
	}
	return kubeVersion(strings.TrimSpace(out)), nil
}

// kubeVersion rewrites git describe output into Kubernetes' gitVersion form.
func kubeVersion(d string) string {
	m := describeRE.FindStringSubmatch(d)
	if m == nil {
		return d
	}
	tag, dist, hash := m[1], m[2], m[3]
	if strings.Count(tag, "-") >= 1 {
		// A pre-release tag such as v1.35.0-alpha.1: the distance joins it
		// with a dot so the result still sorts as semver.
		return tag + "." + dist + "+" + hash
	}
	return tag + "-" + dist + "+" + hash
}

// CommitTime returns the committer time of commit: the build date of a
// reproducible build is the commit's, never the clock's.
func (g *Git) CommitTime(ctx context.Context, commit string) (time.Time, error) {
	out, err := g.run(ctx, nil, "show", "-s", "--format=%ct", commit)
	if err != nil {
		return time.Time{}, fmt.Errorf("read time of commit %s: %w", short(commit), err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("read time of commit %s: %w", short(commit), err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// untar extracts a git archive stream. git archive writes regular files,
// directories and symlinks only, with times set to the commit's. A path
// that exists is replaced (its type may have changed).
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := removeFile(p); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := removeFile(p); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Chtimes(p, h.ModTime, h.ModTime); err != nil {
				return err
			}
		}
	}
}

// removeFile removes a file or symlink at p if there is one.
func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
