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
	ts, err := ws.merge(ctx)
	if err != nil {
		return err
	}
	res.Timings = append(res.Timings, ts...)

	var err2 error
	if res.MirrorSize, err2 = ws.git(ctx, ws.mirror(), "count-objects", "-vH"); err2 != nil {
		return err2
	}
	res.Memory = Memory{
		SelfPeak:       selfPeak(),
		SelfPeakBefore: res.Memory.SelfPeakBefore,
		PrimeGit:       res.Memory.PrimeGit,
		PrimeAlloc:     res.Memory.PrimeAlloc,
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
	if !slices.EqualFunc(before, after, slices.Equal) {
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
