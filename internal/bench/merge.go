package bench

import (
	"context"
	"fmt"
	"slices"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// merge adds NewCommits upstream commits to every branch, then measures
// hyperfork's sync (fetch, merge-tree, commit-tree, push with lease for
// every branch) against two plain-git ways of doing the same: the one
// people use (a clone with a work tree, checkout, merge, push) and the
// fastest one (the same plumbing hyperfork drives, in a bare repository).
// It checks that all three forks now hold the same correct merges.
func (ws *workspace) merge(ctx context.Context) ([]Timing, error) {
	bs := ws.o.Branches
	name := fmt.Sprintf("merge %d new commits x %d branches", ws.o.NewCommits, len(bs))
	before, err := ws.heads(ctx, bs)
	if err != nil {
		return nil, err
	}
	for _, h := range before[1:] {
		if !slices.Equal(before[0], h) {
			return nil, fmt.Errorf("%s: the forks differ before the merge: %v", name, before)
		}
	}
	ws.o.Logger.Info("adding upstream commits", "commits", ws.o.NewCommits, "branches", bs)
	up := make([]string, len(bs))
	for i, b := range bs {
		if err := gitfixture.AppendUpstream(ctx, ws.upstream, b, ws.o.NewCommits); err != nil {
			return nil, err
		}
		if up[i], err = ws.git(ctx, ws.upstream, "rev-parse", "refs/heads/"+b); err != nil {
			return nil, err
		}
	}

	ws.o.Logger.Info("measuring", "scenario", name)
	rep, ours, err := ws.sync(ctx, "")
	if err != nil {
		return nil, err
	}
	if err := expectStatus(rep, bs, report.SyncMerged); err != nil {
		return nil, fmt.Errorf("%s: hyperfork: %w", name, err)
	}
	for _, b := range rep.Branches {
		if b.Sync.MergedCommits != ws.o.NewCommits {
			return nil, fmt.Errorf("%s: hyperfork reports %d merged commits on %s, want %d", name, b.Sync.MergedCommits, b.Name, ws.o.NewCommits)
		}
	}
	plain, err := ws.timePlain(func() error { return ws.plainMerge(ctx) })
	if err != nil {
		return nil, fmt.Errorf("%s: plain git: %w", name, err)
	}
	plumb, err := ws.timePlain(func() error { return ws.plumbMerge(ctx) })
	if err != nil {
		return nil, fmt.Errorf("%s: plain git plumbing: %w", name, err)
	}
	if err := ws.verifyMerge(ctx, before[0], up); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return []Timing{
		{Name: name + " (git: clone, checkout, merge)", Ours: ours, Plain: plain, Target: "<= 1.3x plain git", Verified: true},
		{Name: name + " (git: bare, merge-tree)", Ours: ours, Plain: plumb, Target: "overhead, for info", Verified: true},
	}, nil
}

// plainMerge is what a person does in a persistent clone that has already
// fetched everything before the new commits.
func (ws *workspace) plainMerge(ctx context.Context) error {
	if _, err := ws.git(ctx, ws.clone, "fetch", "--quiet", "upstream"); err != nil {
		return err
	}
	for _, b := range ws.o.Branches {
		for _, args := range [][]string{
			{"checkout", "--quiet", "-B", b, "fork/" + b},
			{"merge", "--quiet", "--no-edit", "upstream/" + b},
			{"push", "--quiet", "fork", b},
		} {
			if _, err := ws.git(ctx, ws.clone, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// plumbMerge is the fastest plain-git way, and the floor for hyperfork: in
// a persistent bare repository, no work tree to update, the plumbing
// hyperfork itself drives, without its checks, state and report.
func (ws *workspace) plumbMerge(ctx context.Context) error {
	if _, err := ws.git(ctx, ws.bare, "fetch", "--quiet", "upstream"); err != nil {
		return err
	}
	for _, b := range ws.o.Branches {
		tree, err := ws.git(ctx, ws.bare, "merge-tree", "--write-tree", "fork/"+b, "upstream/"+b)
		if err != nil {
			return err
		}
		c, err := ws.git(ctx, ws.bare, "commit-tree", tree, "-p", "fork/"+b, "-p", "upstream/"+b, "-m", "Merge upstream "+b)
		if err != nil {
			return err
		}
		if _, err := ws.git(ctx, ws.bare, "push", "--quiet", "fork", c+":refs/heads/"+b); err != nil {
			return err
		}
	}
	return nil
}

// verifyMerge checks that on every fork each branch head is a merge commit
// whose parents are the old fork head and the new upstream head, and that
// all sides produced the same tree (a clean three-way merge of the same
// inputs has exactly one result).
func (ws *workspace) verifyMerge(ctx context.Context, forkBefore, up []string) error {
	for i, b := range ws.o.Branches {
		var trees []string
		for _, repo := range ws.forks() {
			out, err := ws.git(ctx, repo, "rev-list", "--parents", "-n", "1", "refs/heads/"+b)
			if err != nil {
				return err
			}
			var c, p1, p2, extra string
			if n, _ := fmt.Sscan(out, &c, &p1, &p2, &extra); n != 3 || p1 != forkBefore[i] || p2 != up[i] {
				return fmt.Errorf("%s in %s is %q: want a merge commit with parents %s (old fork head) and %s (upstream head)", b, repo, out, forkBefore[i], up[i])
			}
			tree, err := ws.git(ctx, repo, "rev-parse", c+"^{tree}")
			if err != nil {
				return err
			}
			trees = append(trees, tree)
		}
		for j, t := range trees[1:] {
			if t != trees[0] {
				return fmt.Errorf("%s: hyperfork's merge has tree %s, %s's %s: the same clean merge must give the same tree", b, trees[0], ws.forks()[j+1], t)
			}
		}
	}
	return nil
}

// forks are the fork repositories: hyperfork's first, then plain git's.
func (ws *workspace) forks() []string {
	return []string{ws.forkOurs, ws.forkGit, ws.forkPlumb}
}

// heads returns the branch heads of every fork, in the order of forks.
func (ws *workspace) heads(ctx context.Context, branches []string) ([][]string, error) {
	var h [][]string
	for _, repo := range ws.forks() {
		var hs []string
		for _, b := range branches {
			c, err := ws.git(ctx, repo, "rev-parse", "refs/heads/"+b)
			if err != nil {
				return nil, err
			}
			hs = append(hs, c)
		}
		h = append(h, hs)
	}
	return h, nil
}
