package gitsync

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// twoSides makes a repository where branch "up" and branch "fork" diverge
// from a common base with the given changes, and returns a Git on it.
func twoSides(t *testing.T, base, up, fork map[string]string) (*Git, string, string) {
	t.Helper()
	r := gitfixture.Init(t, filepath.Join(t.TempDir(), "repo"))
	r.Commit(t, "base", base)
	r.Branch(t, "fork")
	r.Branch(t, "up")
	r.Checkout(t, "up")
	upHead := r.Commit(t, "upstream change", up)
	r.Checkout(t, "fork")
	forkHead := r.Commit(t, "fork carry", fork)
	return &Git{Dir: r.Dir}, forkHead, upHead
}

func TestMergeConflictKinds(t *testing.T) {
	del := gitfixture.Delete
	cases := []struct {
		name           string
		base, up, fork map[string]string
		wantPath       string
		wantKind       string
	}{
		{"content", map[string]string{"a.txt": "1\n"}, map[string]string{"a.txt": "2\n"}, map[string]string{"a.txt": "3\n"}, "a.txt", "content"},
		{"add/add", map[string]string{"x": "x\n"}, map[string]string{"new.txt": "up\n"}, map[string]string{"new.txt": "fork\n"}, "new.txt", "add/add"},
		{"modify/delete", map[string]string{"a.txt": "1\n"}, map[string]string{"a.txt": del}, map[string]string{"a.txt": "3\n"}, "a.txt", "modify/delete"},
		{"rename", map[string]string{"a.txt": "one\ntwo\nthree\nfour\n"},
			map[string]string{"a.txt": del, "b.txt": "one\ntwo\nthree\nfour\n"},
			map[string]string{"a.txt": del, "c.txt": "one\ntwo\nthree\nfour\n"}, "b.txt", "rename"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, fork, up := twoSides(t, tc.base, tc.up, tc.fork)
			res, err := g.Merge(context.Background(), "fork", "up", fork, up, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Commit != "" {
				t.Fatalf("a conflicted merge wrote commit %s", res.Commit)
			}
			var kinds []string
			found := false
			for _, c := range res.Conflicts {
				kinds = append(kinds, c.Path+":"+c.Kind)
				if c.Path == tc.wantPath && c.Kind == tc.wantKind {
					found = true
				}
			}
			if !found {
				t.Fatalf("conflicts %v, want %s:%s", kinds, tc.wantPath, tc.wantKind)
			}
			if err := g.Explain(context.Background(), fork, up, res.Conflicts); err != nil {
				t.Fatal(err)
			}
			for _, c := range res.Conflicts {
				if c.Path == tc.wantPath && (len(c.Upstream) == 0 && len(c.Carries) == 0) {
					t.Fatalf("no commits named for %s: %+v", c.Path, c)
				}
			}
		})
	}
}

func TestMergeCleanWritesMergeCommit(t *testing.T) {
	g, fork, up := twoSides(t, map[string]string{"a.txt": "1\n", "b.txt": "1\n"},
		map[string]string{"a.txt": "2\n"}, map[string]string{"b.txt": "2\n"})
	res, err := g.Merge(context.Background(), "fork", "up", fork, up, false)
	if err != nil || len(res.Conflicts) != 0 || res.Merged != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	out, err := g.run(context.Background(), nil, "show", "--no-patch", "--format=%P%n%s", res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fork+" "+up) || !strings.Contains(out, "1 commits") {
		t.Fatalf("merge commit:\n%s", out)
	}
	for _, f := range []string{"a.txt", "b.txt"} {
		if got, _ := g.run(context.Background(), nil, "show", res.Commit+":"+f); got != "2\n" {
			t.Fatalf("%s = %q", f, got)
		}
	}
	// ff-only refuses the same divergence.
	if _, err := g.Merge(context.Background(), "fork", "up", fork, up, true); err != ErrNotFastForward {
		t.Fatalf("ff-only: %v", err)
	}
}

func TestParseMergeTreeMessages(t *testing.T) {
	out := "treeoid\x00" +
		"100644 aaa 1\ta.txt\x00100644 bbb 2\ta.txt\x00100644 ccc 3\ta.txt\x00" +
		"\x00" +
		"1\x00a.txt\x00Auto-merging\x00Auto-merging a.txt\n\x00" +
		"1\x00a.txt\x00CONFLICT (contents)\x00CONFLICT (content): Merge conflict in a.txt\n\x00"
	tree, cs, _ := parseMergeTree(out)
	if tree != "treeoid" || len(cs) != 1 || cs[0].Path != "a.txt" || cs[0].Kind != "content" {
		t.Fatalf("%s %+v", tree, cs)
	}
}

// One rev-list answers what used to take three processes: the number of
// new upstream commits, whether the fork fast-forwards, and whether it
// already holds upstream.
func TestMergeFastForwardAndUpToDate(t *testing.T) {
	r := gitfixture.Init(t, filepath.Join(t.TempDir(), "repo"))
	base := r.Commit(t, "base", map[string]string{"a.txt": "1\n"})
	r.Commit(t, "one", map[string]string{"a.txt": "2\n"})
	up := r.Commit(t, "two", map[string]string{"a.txt": "3\n"})
	g := &Git{Dir: r.Dir}
	ctx := context.Background()
	for _, ffOnly := range []bool{false, true} {
		res, err := g.Merge(ctx, "fork", "up", base, up, ffOnly)
		if err != nil || !res.FastForward || res.Commit != up || res.Merged != 2 || res.Base != base {
			t.Fatalf("ffOnly %v, fork behind upstream: %+v %v", ffOnly, res, err)
		}
		res, err = g.Merge(ctx, "fork", "up", up, base, ffOnly)
		if err != nil || res.FastForward || res.Commit != up || res.Merged != 0 {
			t.Fatalf("ffOnly %v, fork ahead of upstream: %+v %v", ffOnly, res, err)
		}
	}
}

func TestHaveCommits(t *testing.T) {
	r := gitfixture.Init(t, filepath.Join(t.TempDir(), "repo"))
	c := r.Commit(t, "base", map[string]string{"a.txt": "1\n"})
	tree := r.Run(t, "rev-parse", c+"^{tree}")
	missing := strings.Repeat("ab", 20)
	have := (&Git{Dir: r.Dir}).haveCommits(context.Background(), []string{c, "", missing, tree, c})
	if !have[c] || have[missing] || have[tree] || have[""] || len(have) != 3 {
		t.Fatalf("haveCommits = %v: want only %s", have, c)
	}
	if have := (&Git{Dir: r.Dir}).haveCommits(context.Background(), nil); len(have) != 0 {
		t.Fatalf("haveCommits of nothing = %v", have)
	}
}
