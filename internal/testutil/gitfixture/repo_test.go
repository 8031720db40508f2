package gitfixture_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// history builds the same small history in a fresh repository.
func history(t *testing.T) *gitfixture.Repo {
	t.Helper()
	r := gitfixture.Init(t, filepath.Join(t.TempDir(), "work"))
	r.Commit(t, "initial", map[string]string{"README.md": "hello\n", "pkg/a.go": "package a\n"})
	r.Commit(t, "second", map[string]string{"pkg/b.go": "package a\n", "README.md": gitfixture.Delete})
	return r
}

func TestRepoHashesAreStable(t *testing.T) {
	a, b := history(t), history(t)
	if a.Head(t) != b.Head(t) {
		t.Fatalf("same steps gave different hashes: %s and %s", a.Head(t), b.Head(t))
	}
	if got := a.Run(t, "log", "-1", "--format=%an <%ae> %cd", "--date=unix"); !strings.HasPrefix(got, gitfixture.AuthorName+" <"+gitfixture.AuthorEmail+"> 17040") {
		t.Errorf("author and date not fixed: %q", got)
	}
}

func TestRepoCommitDeleteRenameTag(t *testing.T) {
	r := history(t)
	if got := r.Run(t, "ls-tree", "-r", "--name-only", "HEAD"); got != "pkg/a.go\npkg/b.go" {
		t.Fatalf("tree after delete = %q", got)
	}
	r.Rename(t, "pkg/a.go", "pkg/sub/a.go")
	if got := r.Run(t, "show", "HEAD:pkg/sub/a.go"); got != "package a" {
		t.Errorf("renamed content = %q", got)
	}
	if got := r.Run(t, "diff", "--name-status", "-M", "HEAD~1", "HEAD"); !strings.HasPrefix(got, "R100") {
		t.Errorf("git does not see a rename: %q", got)
	}
	r.Commit(t, "empty file", map[string]string{"empty": ""})
	if fi, err := os.Stat(filepath.Join(r.Dir, "empty")); err != nil || fi.Size() != 0 {
		t.Errorf("empty file: %v", err)
	}
	r.Tag(t, "v1.34.0")
	if got := r.Run(t, "describe"); got != "v1.34.0" {
		t.Errorf("describe = %q, want the annotated tag", got)
	}
	if got := r.Count(t, "HEAD"); got != 4 {
		t.Errorf("commit count = %d, want 4", got)
	}
}

func TestRepoBranchCheckoutPush(t *testing.T) {
	r := history(t)
	bare := gitfixture.NewBare(t, filepath.Join(t.TempDir(), "remote.git"))
	r.Branch(t, "release-1.34")
	r.Checkout(t, "release-1.34")
	backport := r.Commit(t, "backport", map[string]string{"pkg/c.go": "package a\n"})
	r.Push(t, bare.Dir, "master", "release-1.34")
	if got := bare.Run(t, "rev-parse", "release-1.34"); got != backport {
		t.Errorf("pushed release-1.34 = %s, want %s", got, backport)
	}
	if got := bare.Count(t, "master"); got != 2 {
		t.Errorf("remote master has %d commits, want 2", got)
	}
}

func TestBareCommit(t *testing.T) {
	bare := gitfixture.NewBare(t, filepath.Join(t.TempDir(), "b.git"))
	first := bare.Commit(t, "root", map[string]string{"a": "1\n", "d/b": "2\n"})
	bare.Commit(t, "next", map[string]string{"a": gitfixture.Delete, "c": "3\n"})
	if got := bare.Run(t, "ls-tree", "-r", "--name-only", "master"); got != "c\nd/b" {
		t.Errorf("tree = %q", got)
	}
	bare.Run(t, "branch", "side", first)
	bare.Checkout(t, "side")
	side := bare.Commit(t, "on side", nil)
	if got := bare.Run(t, "rev-parse", "side~1"); got != first {
		t.Errorf("side parent = %s, want %s", got, first)
	}
	if bare.Run(t, "rev-parse", "side") != side || bare.Count(t, "master") != 2 {
		t.Error("commit on side moved the wrong branch")
	}
	if !gitfixture.Open(t, bare.Dir).Bare {
		t.Error("Open does not detect a bare repository")
	}
}

func TestCommitDatesNeverPredateParent(t *testing.T) {
	up := history(t)
	// A clone starts its own clock; its commits must still be newer than
	// what it cloned, or merge-base heuristics that rely on dates misbehave.
	for range 5 {
		up.Commit(t, "more", nil)
	}
	c := gitfixture.Clone(t, up.Dir, filepath.Join(t.TempDir(), "clone"))
	c.Commit(t, "on top", nil)
	parent := c.Run(t, "log", "-1", "--format=%ct", "HEAD~1")
	child := c.Run(t, "log", "-1", "--format=%ct", "HEAD")
	if child <= parent {
		t.Errorf("child date %s not after parent date %s", child, parent)
	}
}

func TestRunErr(t *testing.T) {
	r := history(t)
	_, err := r.RunErr("rev-parse", "--verify", "nope")
	var gerr *gitfixture.Error
	if err == nil || !asError(err, &gerr) || !strings.Contains(gerr.Stderr, "fatal") {
		t.Fatalf("RunErr on a bad ref = %v, want *Error with git's stderr", err)
	}
}

func TestIsolate(t *testing.T) {
	t.Setenv("GIT_DIR", "/nonexistent")
	home := gitfixture.Isolate(t)
	if _, ok := os.LookupEnv("GIT_DIR"); ok {
		t.Error("GIT_DIR still set")
	}
	if os.Getenv("HOME") != home || os.Getenv("GIT_CONFIG_NOSYSTEM") != "1" {
		t.Error("HOME or GIT_CONFIG_NOSYSTEM not isolated")
	}
}
