package gitfixture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// GenSpec describes a generated repository shaped like Kubernetes: a long
// main line with release branches forked from it. Zero fields get the
// defaults documented on each.
type GenSpec struct {
	// Commits is the number of commits on the main line (Branches[0]),
	// the first of which adds every file. Default 1000.
	Commits int
	// Files is the number of files in the tree. Default 500.
	Files int
	// Dirs is the number of directories the files are spread over, under
	// a few top-level folders. Default Files/50, at least 1.
	Dirs int
	// FilesPerCommit is how many files each later commit modifies.
	// Default 3.
	FilesPerCommit int
	// Branches names the branches. The first is the main line; each other
	// branch forks from it, at evenly spaced points in its second half,
	// in order. Default ["master"].
	Branches []string
	// BranchCommits is the number of commits each non-main branch gets
	// after forking (its backports). Default Commits/100, at least 1.
	BranchCommits int
	// QuietFiles is the number of files no upstream commit modifies after
	// the first one. AddCarries edits them, so merging upstream into a
	// fork made by GenerateFork is always clean. Default Files/100, at
	// least 1.
	QuietFiles int
	// Seed selects the pseudo-random file choices; the same spec always
	// yields the same hashes.
	Seed uint64
	// Tags adds annotated tags the way Kubernetes has them: vX.Y.0 on the
	// first commit of branch release-X.Y, and vX.Y+1.0-alpha.0 on the main
	// line just after that branch forked, so `git describe` works on both.
	Tags bool
}

func (s GenSpec) withDefaults() (GenSpec, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Commits, 1000)
	def(&s.Files, 500)
	def(&s.Dirs, max(1, s.Files/50))
	def(&s.FilesPerCommit, 3)
	def(&s.BranchCommits, max(1, s.Commits/100))
	def(&s.QuietFiles, max(1, s.Files/100))
	if len(s.Branches) == 0 {
		s.Branches = []string{DefaultBranch}
	}
	var errs []error
	if s.Commits < 1 || s.Files < 1 || s.Dirs < 1 || s.FilesPerCommit < 1 || s.BranchCommits < 1 {
		errs = append(errs, fmt.Errorf("Commits, Files, Dirs, FilesPerCommit and BranchCommits must be positive: %+v", s))
	}
	if s.QuietFiles < 0 || s.QuietFiles >= s.Files {
		errs = append(errs, fmt.Errorf("QuietFiles %d must be at least 0 and less than Files %d", s.QuietFiles, s.Files))
	}
	return s, errors.Join(errs...)
}

// topDirs are the top-level folders files are spread over, so paths look
// like a Go monorepo and trees have realistic depth.
var topDirs = []string{"pkg", "cmd", "staging/src/k8s.io/api", "staging/src/k8s.io/client-go", "test/e2e", "plugin", "vendor/github.com/example/lib"}

// quietPrefix starts the base name of files that upstream never modifies
// after they are added; AppendUpstream and AddCarries tell them apart by it.
const quietPrefix = "quiet"

func genPath(i, files, quiet, dirs int) string {
	d := i % dirs
	name := "file"
	if i >= files-quiet {
		name = quietPrefix
	}
	return fmt.Sprintf("%s/sub%03d/%s%05d.go", topDirs[d%len(topDirs)], d, name, i)
}

func isQuiet(path string) bool {
	base := path[strings.LastIndexByte(path, '/')+1:]
	return strings.HasPrefix(base, quietPrefix)
}

// genContent returns the content of path at revision rev. Everything but
// the revision line is a function of the path, so a change is a one-line
// diff (cheap deltas, like most real commits) and any tool can recompute a
// file's content without reading the repository.
func genContent(path, rev string) []byte {
	h := fnv.New64a()
	_, _ = io.WriteString(h, path)
	seed := h.Sum64()
	var b strings.Builder
	b.Grow(800)
	fmt.Fprintf(&b, "// Code generated for hyperfork benchmarks. DO NOT EDIT.\n\n// Source: %s\npackage gen\n\n", path)
	fmt.Fprintf(&b, "// Revision is the change that last touched this file.\nconst Revision = %q\n\n", rev)
	for i := range 16 {
		seed = seed*6364136223846793005 + 1442695040888963407
		fmt.Fprintf(&b, "const c%02d = 0x%016x // value %d of %s\n", i, seed, i, path)
	}
	return []byte(b.String())
}

// Generate creates a bare repository in dir (which must not exist or be
// empty) following spec, by streaming the whole history into one
// `git fast-import`: no work tree, no index, one pack. That is what makes a
// Kubernetes-sized history (20,000 commits over 5,000 files) take seconds.
func Generate(ctx context.Context, dir string, spec GenSpec) error {
	s, err := spec.withDefaults()
	if err != nil {
		return fmt.Errorf("generate %s: %w", dir, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("generate %s: directory is not empty", dir)
	}
	if _, err := gitCtx(ctx, "", nil, "init", "-q", "--bare", "-b", s.Branches[0], dir); err != nil {
		return fmt.Errorf("generate %s: %w", dir, err)
	}
	err = fastImport(ctx, dir, func(w *bufio.Writer) error { return writeHistory(w, s) })
	if err != nil {
		return fmt.Errorf("generate %s: %w", dir, err)
	}
	return nil
}

// writeHistory writes the fast-import stream for spec s.
func writeHistory(w *bufio.Writer, s GenSpec) error {
	rng := rand.New(rand.NewPCG(s.Seed, 0x68797065726b))
	main := "refs/heads/" + s.Branches[0]
	paths := make([]string, s.Files)
	for i := range paths {
		paths[i] = genPath(i, s.Files, s.QuietFiles, s.Dirs)
	}
	loud := s.Files - s.QuietFiles

	// forkAt[i] is the main-line index the branch others[i] forks at.
	others := s.Branches[1:]
	forkAt := make([]int, len(others))
	k := len(others)
	for i := range others {
		forkAt[i] = min(s.Commits-1, s.Commits*(k+i+1)/(2*k+1))
	}

	fw := &fiWriter{w: w}
	mainMark := make([]int, s.Commits)
	var pendingAlpha []string // tags for the main-line commit after a fork
	for c := range s.Commits {
		when := baseTime + int64(c)*60
		mods := make(map[string][]byte)
		msg := fmt.Sprintf("Initial import of %d files", s.Files)
		if c == 0 {
			for _, p := range paths {
				mods[p] = genContent(p, "initial")
			}
		} else {
			rev := fmt.Sprintf("%s#%d", s.Branches[0], c)
			for range s.FilesPerCommit {
				p := paths[rng.IntN(loud)]
				mods[p] = genContent(p, rev)
			}
			msg = fmt.Sprintf("Upstream change %d on %s", c, s.Branches[0])
		}
		mainMark[c] = fw.commit(main, "", when, msg, mods)
		for _, tag := range pendingAlpha {
			fw.tag(tag, mainMark[c], when)
		}
		pendingAlpha = nil
		for i, at := range forkAt {
			if v, ok := nextAlpha(others[i]); ok && at == c && s.Tags {
				pendingAlpha = append(pendingAlpha, v)
			}
		}
	}
	for i, name := range others {
		// One stream per branch, so adding a branch changes no hash of
		// the others.
		brng := rand.New(rand.NewPCG(s.Seed, uint64(i+1)))
		at := forkAt[i]
		from := ":" + strconv.Itoa(mainMark[at])
		for c := range s.BranchCommits {
			when := baseTime + int64(at)*60 + int64(c+1)*37
			rev := fmt.Sprintf("%s#%d", name, c)
			mods := make(map[string][]byte)
			for range s.FilesPerCommit {
				p := paths[brng.IntN(loud)]
				mods[p] = genContent(p, rev)
			}
			msg := fmt.Sprintf("Backport %d to %s", c, name)
			m := fw.commit("refs/heads/"+name, from, when, msg, mods)
			from = ""
			if c == 0 && s.Tags {
				if v, ok := releaseVersion(name); ok {
					fw.tag(v+".0", m, when)
				}
			}
		}
	}
	return nil
}

// releaseVersion maps "release-1.34" to "v1.34".
func releaseVersion(branch string) (string, bool) {
	v, ok := strings.CutPrefix(branch, "release-")
	if !ok || strings.Count(v, ".") != 1 {
		return "", false
	}
	return "v" + v, true
}

// nextAlpha maps "release-1.34" to "v1.35.0-alpha.0", the tag Kubernetes
// puts on the main line once release-1.34 has forked.
func nextAlpha(branch string) (string, bool) {
	v, ok := releaseVersion(branch)
	if !ok {
		return "", false
	}
	major, minor, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(minor)
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("%s.%d.0-alpha.0", major, n+1), true
}
