package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// scenarios measures the scenarios in order and fills res.
func (ws *workspace) scenarios(ctx context.Context, res *SyncResult) error {
	bs := ws.o.Branches
	t, err := ws.noop(ctx, fmt.Sprintf("no-op, %d branches", len(bs)), bs, fmt.Sprintf("< %.1fs (0.5s/branch)", 0.5*float64(len(bs))))
	if err != nil {
		return err
	}
	res.Timings = append(res.Timings, t)
	for _, b := range bs {
		t, err := ws.noop(ctx, "no-op, "+b, []string{b}, "< 0.5s")
		if err != nil {
			return err
		}
		res.Timings = append(res.Timings, t)
	}
	t, err = ws.merge(ctx)
	if err != nil {
		return err
	}
	res.Timings = append(res.Timings, t)

	var err2 error
	if res.MirrorSize, err2 = ws.git(ctx, ws.mirror(), "count-objects", "-vH"); err2 != nil {
		return err2
	}
	res.Memory = Memory{
		SelfPeak:       selfPeak(),
		SelfPeakBefore: res.Memory.SelfPeakBefore,
		SelfMaxRSS:     rusageMax(syscall.RUSAGE_SELF),
		OursRSS:        ws.ours.rss,
		OursHeap:       ws.ours.heap,
		OursAlloc:      ws.ours.alloc,
		OursGit:        ws.ours.git,
		OursGitRusage:  ws.ours.gitRusage,
		PlainGit:       ws.plain.git,
		PlainGitRusage: ws.plainGit,
		ChildrenMaxRSS: rusageMax(syscall.RUSAGE_CHILDREN),
	}
	return nil
}

// mirror is hyperfork's bare mirror in its state folder.
func (ws *workspace) mirror() string {
	return filepath.Join(filepath.Dir(ws.config), "state", "mirror.git")
}

// noop measures a sync of branches when nothing is new: hyperfork's
// ls-remote of both remotes and ancestry check in its mirror, against plain
// git fetching both remotes into its clone and checking ancestry. Runs
// alternate which side goes first; the medians are reported.
func (ws *workspace) noop(ctx context.Context, name string, branches []string, target string) (Timing, error) {
	ws.o.Logger.Info("measuring", "scenario", name, "runs", ws.o.Runs)
	before, err := ws.heads(ctx, branches)
	if err != nil {
		return Timing{}, err
	}
	var ours, plain []time.Duration
	for r := range ws.o.Runs {
		for side := range 2 {
			if (side+r)%2 == 0 {
				rep, d, err := ws.sync(ctx, branchesEnv(branches))
				if err != nil {
					return Timing{}, err
				}
				if err := expectStatus(rep, branches, report.SyncUpToDate); err != nil {
					return Timing{}, fmt.Errorf("%s: hyperfork: %w", name, err)
				}
				ours = append(ours, d)
			} else {
				d, err := ws.timePlain(func() error { return ws.plainNoop(ctx, branches) })
				if err != nil {
					return Timing{}, fmt.Errorf("%s: plain git: %w", name, err)
				}
				plain = append(plain, d)
			}
		}
	}
	after, err := ws.heads(ctx, branches)
	if err != nil {
		return Timing{}, err
	}
	if !slices.Equal(before.ours, after.ours) || !slices.Equal(before.plain, after.plain) {
		return Timing{}, fmt.Errorf("%s: a fork branch moved during a sync that had nothing to do: %v -> %v", name, before, after)
	}
	return Timing{Name: name, Ours: median(ours), Plain: median(plain), Target: target, Verified: true}, nil
}

// plainNoop is the cheapest correct plain-git check that the fork holds
// upstream: fetch both remotes at once, then one ancestry check per branch.
func (ws *workspace) plainNoop(ctx context.Context, branches []string) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, remote := range []string{"fork", "upstream"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"fetch", "--quiet", "--no-write-fetch-head", remote}
			for _, b := range branches {
				args = append(args, "+refs/heads/"+b+":refs/remotes/"+remote+"/"+b)
			}
			_, errs[i] = ws.git(ctx, ws.clone, args...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for _, b := range branches {
		if _, err := ws.git(ctx, ws.clone, "merge-base", "--is-ancestor", "upstream/"+b, "fork/"+b); err != nil {
			return fmt.Errorf("fork %s does not contain upstream %s: %w", b, b, err)
		}
	}
	return nil
}

// merge adds NewCommits upstream commits to every branch, then measures
// hyperfork's sync (fetch, merge-tree, commit-tree, push with lease for
// every branch) against plain git merging in its clone and pushing, and
// checks that both forks now hold the same correct merges.
func (ws *workspace) merge(ctx context.Context) (Timing, error) {
	bs := ws.o.Branches
	name := fmt.Sprintf("merge %d new commits x %d branches", ws.o.NewCommits, len(bs))
	before, err := ws.heads(ctx, bs)
	if err != nil {
		return Timing{}, err
	}
	if !slices.Equal(before.ours, before.plain) {
		return Timing{}, fmt.Errorf("%s: the two forks differ before the merge: %v", name, before)
	}
	ws.o.Logger.Info("adding upstream commits", "commits", ws.o.NewCommits, "branches", bs)
	up := make([]string, len(bs))
	for i, b := range bs {
		if err := gitfixture.AppendUpstream(ctx, ws.upstream, b, ws.o.NewCommits); err != nil {
			return Timing{}, err
		}
		if up[i], err = ws.git(ctx, ws.upstream, "rev-parse", "refs/heads/"+b); err != nil {
			return Timing{}, err
		}
	}

	ws.o.Logger.Info("measuring", "scenario", name)
	rep, ours, err := ws.sync(ctx, "")
	if err != nil {
		return Timing{}, err
	}
	if err := expectStatus(rep, bs, report.SyncMerged); err != nil {
		return Timing{}, fmt.Errorf("%s: hyperfork: %w", name, err)
	}
	for _, b := range rep.Branches {
		if b.Sync.MergedCommits != ws.o.NewCommits {
			return Timing{}, fmt.Errorf("%s: hyperfork reports %d merged commits on %s, want %d", name, b.Sync.MergedCommits, b.Name, ws.o.NewCommits)
		}
	}
	plain, err := ws.timePlain(func() error { return ws.plainMerge(ctx) })
	if err != nil {
		return Timing{}, fmt.Errorf("%s: plain git: %w", name, err)
	}
	if err := ws.verifyMerge(ctx, before.ours, up); err != nil {
		return Timing{}, fmt.Errorf("%s: %w", name, err)
	}
	return Timing{Name: name, Ours: ours, Plain: plain, Target: "<= 1.3x plain git", Verified: true}, nil
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

// verifyMerge checks that on both forks every branch head is a merge commit
// whose parents are the old fork head and the new upstream head, and that
// both sides produced the same tree (a clean three-way merge of the same
// inputs has exactly one result).
func (ws *workspace) verifyMerge(ctx context.Context, forkBefore, up []string) error {
	for i, b := range ws.o.Branches {
		var trees []string
		for _, repo := range []string{ws.forkOurs, ws.forkGit} {
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
		if trees[0] != trees[1] {
			return fmt.Errorf("%s: hyperfork's merge has tree %s, plain git's %s: the same clean merge must give the same tree", b, trees[0], trees[1])
		}
	}
	return nil
}

// forkHeads are the branch heads of both forks.
type forkHeads struct{ ours, plain []string }

func (ws *workspace) heads(ctx context.Context, branches []string) (forkHeads, error) {
	var h forkHeads
	for _, b := range branches {
		o, err := ws.git(ctx, ws.forkOurs, "rev-parse", "refs/heads/"+b)
		if err != nil {
			return h, err
		}
		p, err := ws.git(ctx, ws.forkGit, "rev-parse", "refs/heads/"+b)
		if err != nil {
			return h, err
		}
		h.ours, h.plain = append(h.ours, o), append(h.plain, p)
	}
	return h, nil
}

// sync runs hyperfork's sync in-process exactly as `go tool mage sync`
// does, limited to branches (HYPERFORK_BRANCHES; empty: all), and returns
// its report and the duration of the call alone.
func (ws *workspace) sync(ctx context.Context, branches string) (*report.Report, time.Duration, error) {
	env := map[string]string{"HYPERFORK_CONFIG": ws.config, "HYPERFORK_REPORT": ws.report, "HYPERFORK_BRANCHES": branches}
	var out bytes.Buffer
	var d time.Duration
	var code int
	p, err := measure(func() error {
		start := time.Now()
		c, err := pipeline.Main(ctx, "sync", pipeline.Env{
			Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out, ModuleDir: ws.o.ModuleDir})
		d, code = time.Since(start), c
		return err
	})
	ws.ours.merge(p)
	if err != nil || code != 0 {
		return nil, d, fmt.Errorf("hyperfork sync exited with code %d: %v\n%s", code, err, out.String())
	}
	b, err := os.ReadFile(ws.report)
	if err != nil {
		return nil, d, fmt.Errorf("hyperfork sync wrote no report: %w", err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, d, fmt.Errorf("hyperfork sync report %s: %w", ws.report, err)
	}
	return &rep, d, nil
}

// timePlain times f, plain git's side of a scenario, with the same memory
// sampling hyperfork's side gets.
func (ws *workspace) timePlain(f func() error) (time.Duration, error) {
	var d time.Duration
	ws.recording = true
	p, err := measure(func() error {
		start := time.Now()
		err := f()
		d = time.Since(start)
		return err
	})
	ws.recording = false
	ws.plain.merge(p)
	return d, err
}

// expectStatus checks that the report has exactly branches, each with the
// sync status want.
func expectStatus(rep *report.Report, branches []string, want string) error {
	if rep.ExitCode != 0 || len(rep.Branches) != len(branches) {
		return fmt.Errorf("report has exit code %d and %d branches, want 0 and %d", rep.ExitCode, len(rep.Branches), len(branches))
	}
	for _, b := range rep.Branches {
		if !slices.Contains(branches, b.Name) || b.Sync == nil || b.Sync.Status != want {
			return fmt.Errorf("branch %s: sync %+v, want status %s", b.Name, b.Sync, want)
		}
	}
	return nil
}

func branchesEnv(branches []string) string {
	if len(branches) == 1 {
		return branches[0]
	}
	return "" // all configured branches, as a scheduled run does
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
