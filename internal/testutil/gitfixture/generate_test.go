package gitfixture_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

func asError(err error, target **gitfixture.Error) bool { return errors.As(err, target) }

var smallSpec = gitfixture.GenSpec{
	Commits:       120,
	Files:         200,
	Branches:      []string{"master", "release-1.33", "release-1.34"},
	BranchCommits: 7,
	Tags:          true,
	Seed:          42,
}

func generate(t *testing.T, spec gitfixture.GenSpec) *gitfixture.Repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "upstream.git")
	if err := gitfixture.Generate(context.Background(), dir, spec); err != nil {
		t.Fatal(err)
	}
	return gitfixture.Open(t, dir)
}

func TestGenerateShape(t *testing.T) {
	r := generate(t, smallSpec)
	if got := r.Count(t, "master"); got != 120 {
		t.Errorf("master has %d commits, want 120", got)
	}
	if got := r.Run(t, "ls-tree", "-r", "--name-only", "master"); len(strings.Fields(got)) != 200 {
		t.Errorf("master has %d files, want 200", len(strings.Fields(got)))
	}
	if got := r.Run(t, "symbolic-ref", "HEAD"); got != "refs/heads/master" {
		t.Errorf("HEAD = %s", got)
	}
	// With two release branches, they fork at 3/5 and 4/5 of the main line.
	for name, forkAt := range map[string]int{"release-1.33": 120 * 3 / 5, "release-1.34": 120 * 4 / 5} {
		if got := r.Count(t, name); got != forkAt+1+7 {
			t.Errorf("%s has %d commits, want %d", name, got, forkAt+1+7)
		}
		if got := r.Count(t, "master.."+name); got != 7 {
			t.Errorf("%s has %d own commits, want 7", name, got)
		}
		n := strings.TrimPrefix(name, "release-")
		if got := r.Run(t, "describe", "--abbrev=0", name); got != "v"+n+".0" {
			t.Errorf("describe %s = %s", name, got)
		}
	}
	if got := r.Run(t, "describe", "--abbrev=0", "master"); got != "v1.35.0-alpha.0" {
		t.Errorf("describe master = %s", got)
	}
	// Commits after the first change FilesPerCommit files at most.
	if got := r.Run(t, "diff-tree", "--no-commit-id", "--name-only", "-r", "master"); len(strings.Fields(got)) > 3 {
		t.Errorf("last commit changed %d files", len(strings.Fields(got)))
	}
	r.Run(t, "fsck", "--no-progress")
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := generate(t, smallSpec), generate(t, smallSpec)
	refs := "for-each-ref --format=%(objectname) %(refname)"
	if x, y := a.Run(t, strings.Fields(refs)...), b.Run(t, strings.Fields(refs)...); x != y {
		t.Errorf("two runs differ:\n%s\n%s", x, y)
	}
	other := smallSpec
	other.Seed = 43
	if generate(t, other).Head(t) == a.Head(t) {
		t.Error("the seed does not change the history")
	}
}

func TestGenerateRejects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := gitfixture.Generate(ctx, dir, smallSpec); err == nil {
		t.Error("Generate into a non-empty directory succeeded")
	}
	bad := gitfixture.GenSpec{Files: 10, QuietFiles: 10}
	if err := gitfixture.Generate(ctx, filepath.Join(dir, "new"), bad); err == nil {
		t.Error("Generate with QuietFiles == Files succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := gitfixture.Generate(cancelled, filepath.Join(dir, "c"), smallSpec); err == nil {
		t.Error("Generate with a cancelled context succeeded")
	}
}

func TestForkCarriesMergeCleanly(t *testing.T) {
	ctx := context.Background()
	up := generate(t, smallSpec)
	before := up.Count(t, "master")
	forkDir := filepath.Join(t.TempDir(), "fork.git")
	if err := gitfixture.GenerateFork(ctx, up.Dir, forkDir, 9); err != nil {
		t.Fatal(err)
	}
	fork := gitfixture.Open(t, forkDir)
	for _, b := range smallSpec.Branches {
		if got := fork.Count(t, up.Run(t, "rev-parse", b)+".."+b); got != 9 {
			t.Errorf("fork %s has %d carries, want 9", b, got)
		}
	}
	if err := gitfixture.AppendUpstream(ctx, up.Dir, "master", 25); err != nil {
		t.Fatal(err)
	}
	if got := up.Count(t, "master"); got != before+25 {
		t.Errorf("upstream master has %d commits, want %d", got, before+25)
	}
	fork.Run(t, "fetch", "-q", up.Dir, "+refs/heads/*:refs/remotes/upstream/*")
	if got := fork.Count(t, "refs/remotes/upstream/master..master"); got != 9 {
		t.Errorf("fork master has %d carries, want 9", got)
	}
	// The property the benchmark relies on: upstream's new commits never
	// touch what the carries touched.
	if _, err := fork.RunErr("merge-tree", "--write-tree", "master", "refs/remotes/upstream/master"); err != nil {
		t.Errorf("merge of upstream into the fork conflicts: %v", err)
	}
	carried := fork.Run(t, "log", "--format=", "--name-only", "refs/remotes/upstream/master..master")
	for _, p := range strings.Fields(carried) {
		if !strings.Contains(p, "/quiet") {
			t.Errorf("carry touched non-quiet file %s", p)
		}
	}
}

func TestAppendUpstreamOnHandMadeRepo(t *testing.T) {
	bare := gitfixture.NewBare(t, filepath.Join(t.TempDir(), "b.git"))
	bare.Commit(t, "root", map[string]string{"a.go": "package a\n"})
	ctx := context.Background()
	if err := gitfixture.AppendUpstream(ctx, bare.Dir, "master", 4); err != nil {
		t.Fatal(err)
	}
	if err := gitfixture.AddCarries(ctx, bare.Dir, "master", 2); err != nil {
		t.Fatal(err)
	}
	if got := bare.Count(t, "master"); got != 7 {
		t.Errorf("master has %d commits, want 7", got)
	}
	if got := bare.Run(t, "ls-tree", "-r", "--name-only", "master", "hyperfork/"); len(strings.Fields(got)) != 2 {
		t.Errorf("carries without quiet files should add files under hyperfork/, got %q", got)
	}
	if err := gitfixture.AppendUpstream(ctx, bare.Dir, "nope", 1); err == nil {
		t.Error("AppendUpstream on a missing branch succeeded")
	}
}

// BenchmarkGenerate measures the benchmark-sized repository: 20,000
// commits over 5,000 files with two release branches, then a fork with 30
// carries per branch, then 500 new upstream commits. Run with
// -benchtime=1x; it reports seconds per step and the size on disk.
func BenchmarkGenerate(b *testing.B) {
	spec := gitfixture.GenSpec{
		Commits:       20000,
		Files:         5000,
		Branches:      []string{"master", "release-1.33", "release-1.34"},
		BranchCommits: 200,
		Tags:          true,
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		dir := b.TempDir()
		up, fork := filepath.Join(dir, "up.git"), filepath.Join(dir, "fork.git")
		start := time.Now()
		if err := gitfixture.Generate(ctx, up, spec); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "generate-s")
		b.ReportMetric(float64(dirSize(b, up))/(1<<20), "MiB")
		start = time.Now()
		if err := gitfixture.GenerateFork(ctx, up, fork, 30); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "fork30-s")
		start = time.Now()
		if err := gitfixture.AppendUpstream(ctx, up, "master", 500); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "append500-s")
	}
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
