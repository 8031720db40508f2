package gitsync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

func TestExportIsIncremental(t *testing.T) {
	r := gitfixture.Init(t, filepath.Join(t.TempDir(), "repo"))
	one := r.Commit(t, "one", map[string]string{"a.txt": "1\n", "b.txt": "b\n", "keep/k.txt": "k\n", "gone/only.txt": "x\n", "*.go": "glob\n"})
	two := r.Commit(t, "two", map[string]string{"a.txt": "2\n", "b.txt": gitfixture.Delete, "gone/only.txt": gitfixture.Delete, "c/d.txt": "d\n", "*.go": "glob2\n"})
	g := &Git{Dir: r.Dir}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "src")
	if err := g.Export(ctx, one, dir); err != nil {
		t.Fatal(err)
	}
	keep, _ := os.Stat(filepath.Join(dir, "keep/k.txt"))
	a1, _ := os.Stat(filepath.Join(dir, "a.txt"))
	if err := g.Export(ctx, two, dir); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"a.txt": "2\n", "c/d.txt": "d\n", "keep/k.txt": "k\n", "*.go": "glob2\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != want {
			t.Fatalf("%s = %q, %v; want %q", f, b, err, want)
		}
	}
	for _, f := range []string{"b.txt", "gone"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			t.Fatalf("%s survived its deletion", f)
		}
	}
	keep2, _ := os.Stat(filepath.Join(dir, "keep/k.txt"))
	a2, _ := os.Stat(filepath.Join(dir, "a.txt"))
	if !keep2.ModTime().Equal(keep.ModTime()) {
		t.Fatal("an unchanged file was rewritten")
	}
	if !a2.ModTime().After(a1.ModTime()) {
		t.Fatalf("a changed file of the same size kept its time %v", a2.ModTime())
	}
	// The same tree as a fresh export.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := g.Export(ctx, two, fresh); err != nil {
		t.Fatal(err)
	}
	if a, b := listTree(t, dir), listTree(t, fresh); a != b {
		t.Fatalf("incremental export differs from a fresh one:\n%s\n---\n%s", a, b)
	}
}

func listTree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := rel + " " + fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	return strings.Join(out, "\n")
}
