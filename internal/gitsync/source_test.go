package gitsync

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

func TestKubeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.34.2":                           "v1.34.2",
		"v1.34.2-12-g0123abcd4567ef":        "v1.34.2-12+0123abcd4567ef",
		"v1.35.0-alpha.1-5-g0123abcd4567ef": "v1.35.0-alpha.1.5+0123abcd4567ef",
		"v1.35.0-rc.0-1234-gfedcba98765432": "v1.35.0-rc.0.1234+fedcba98765432",
	} {
		if got := kubeVersion(in); got != want {
			t.Errorf("kubeVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescribeExportAndCommitTime(t *testing.T) {
	r := gitfixture.Init(t, filepath.Join(t.TempDir(), "repo"))
	r.Commit(t, "one", map[string]string{"a.txt": "a\n", "cmd/x/main.go": "package main\n"})
	r.Tag(t, "v1.2.3")
	head := r.Commit(t, "two", map[string]string{"b.txt": "b\n"})
	g := &Git{Dir: r.Dir}
	ctx := context.Background()
	v, err := g.Describe(ctx, head)
	if err != nil || v != "v1.2.3-1+"+head[:14] {
		t.Fatalf("Describe = %q, %v", v, err)
	}
	when, err := g.CommitTime(ctx, head)
	if err != nil || when.IsZero() {
		t.Fatalf("CommitTime = %v, %v", when, err)
	}
	dir := filepath.Join(t.TempDir(), "src")
	if err := g.Export(ctx, head, dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.txt", "b.txt", "cmd/x/main.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		t.Fatal("the export holds .git")
	}
	fi, _ := os.Stat(filepath.Join(dir, "a.txt"))
	if !fi.ModTime().Equal(when) {
		t.Fatalf("file time %v, commit time %v", fi.ModTime(), when)
	}
}
