package bench

import (
	"context"
	"fmt"
	"slices"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// The plain-git ways of merging, for the table.
const (
	mergeFastWay  = "bare mirror: fetch; merge-tree --write-tree, commit-tree, push"
	mergeCloneWay = "clone with a work tree: fetch; checkout, merge, push"
)

// merge measures, Rounds times, hyperfork's sync when every branch has
// NewCommits new upstream commits (fetch, merge-tree, commit-tree, push
// with lease per branch) against two plain-git ways of doing the same: the
// fastest (the same plumbing in a persistent bare mirror, without
// hyperfork's checks, state and report), which is the headline, and the
// one people often use (a clone with a work tree), for context. Each round
// adds the commits upstream, runs the three sides in alternating order and
// checks that all three forks now hold the same correct merges.
func (ws *workspace) merge(ctx context.Context) ([]SyncRow, error) {
	bs := ws.o.Branches
	name := fmt.Sprintf("merge %d new commits x %d branches", ws.o.NewCommits, len(bs))
	fast := SyncRow{Name: name, Way: mergeFastWay, Target: SyncTarget}
	clone := SyncRow{Name: name + " (context, not the target)", Way: mergeCloneWay}
	sides := []func() error{
		func() error {
			rep, d, err := ws.sync(ctx, "")
			if err != nil {
				return err
			}
			if err := expectStatus(rep, bs, report.SyncMerged); err != nil {
				return fmt.Errorf("hyperfork: %w", err)
			}
			for _, b := range rep.Branches {
				if b.Sync.MergedCommits != ws.o.NewCommits {
					return fmt.Errorf("hyperfork reports %d merged commits on %s, want %d", b.Sync.MergedCommits, b.Name, ws.o.NewCommits)
				}
			}
			fast.Ours, clone.Ours = append(fast.Ours, d), append(clone.Ours, d)
			return nil
		},
		func() error {
			d, err := ws.timePlain(func() error { return ws.plainMergeFast(ctx) })
			if err != nil {
				return fmt.Errorf("plain git, %s: %w", mergeFastWay, err)
			}
			fast.Plain = append(fast.Plain, d)
			return nil
		},
		func() error {
			d, err := ws.timePlain(func() error { return ws.plainMergeClone(ctx) })
			if err != nil {
				return fmt.Errorf("plain git, %s: %w", mergeCloneWay, err)
			}
			clone.Plain = append(clone.Plain, d)
			return nil
		},
	}

	before, err := ws.heads(ctx, bs)
	if err != nil {
		return nil, err
	}
	for _, h := range before[1:] {
		if !slices.Equal(before[0], h) {
			return nil, fmt.Errorf("%s: the forks differ before the merge: %v", name, before)
		}
	}
	for round := 1; round <= ws.o.Rounds; round++ {
		ws.o.Logger.Info("adding upstream commits", "round", round, "commits", ws.o.NewCommits, "branches", bs)
		up := make([]string, len(bs))
		for i, b := range bs {
			if err := gitfixture.AppendUpstream(ctx, ws.upstream, b, ws.o.NewCommits); err != nil {
				return nil, err
			}
			if up[i], err = ws.git(ctx, ws.upstream, "rev-parse", "refs/heads/"+b); err != nil {
				return nil, err
			}
		}
		ws.o.Logger.Info("measuring", "scenario", name, "round", round, "of", ws.o.Rounds)
		for _, i := range roundOrder(round, len(sides)) {
			if err := sides[i](); err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", name, round, err)
			}
		}
		if err := ws.verifyMerge(ctx, before, up); err != nil {
			return nil, fmt.Errorf("%s, round %d: %w", name, round, err)
		}
		if before, err = ws.heads(ctx, bs); err != nil {
			return nil, err
		}
	}
	fast.Verified, clone.Verified = true, true
	return []SyncRow{fast, clone}, nil
}

// plainMergeFast is the fastest plain-git way, and the floor for
// hyperfork: in a persistent bare mirror, no work tree to update, one
// fetch, then every branch at once (faster here than one push of all
// branches, which packs them in one process): the plumbing hyperfork
// itself drives, without its checks, lease, state and report.
func (ws *workspace) plainMergeFast(ctx context.Context) error {
	if _, err := ws.git(ctx, ws.plainMirror, "fetch", "--quiet", "upstream"); err != nil {
		return err
	}
	bs := ws.o.Branches
	return parallel(len(bs), func(i int) error {
		b := bs[i]
		tree, err := ws.git(ctx, ws.plainMirror, "merge-tree", "--write-tree", "fork/"+b, "upstream/"+b)
		if err != nil {
			return err
		}
		c, err := ws.git(ctx, ws.plainMirror, "commit-tree", tree, "-p", "fork/"+b, "-p", "upstream/"+b, "-m", "Merge upstream "+b)
		if err != nil {
			return err
		}
		_, err = ws.git(ctx, ws.plainMirror, "push", "--quiet", "fork", c+":refs/heads/"+b)
		return err
	})
}

// plainMergeClone is what a person does in a persistent clone that has
// already fetched everything before the new commits.
func (ws *workspace) plainMergeClone(ctx context.Context) error {
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

// verifyMerge checks that on every fork each branch head is a merge commit
// whose parents are that fork's old head (before, in the order of forks)
// and the new upstream head, and that all sides produced the same tree (a
// clean three-way merge of the same inputs has exactly one result).
func (ws *workspace) verifyMerge(ctx context.Context, before [][]string, up []string) error {
	for i, b := range ws.o.Branches {
		var trees []string
		for k, repo := range ws.forks() {
			out, err := ws.git(ctx, repo, "rev-list", "--parents", "-n", "1", "refs/heads/"+b)
			if err != nil {
				return err
			}
			var c, p1, p2, extra string
			if n, _ := fmt.Sscan(out, &c, &p1, &p2, &extra); n != 3 || p1 != before[k][i] || p2 != up[i] {
				return fmt.Errorf("%s in %s is %q: want a merge commit with parents %s (old fork head) and %s (upstream head)", b, repo, out, before[k][i], up[i])
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
	return []string{ws.forkOurs, ws.forkFast, ws.forkClone}
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
