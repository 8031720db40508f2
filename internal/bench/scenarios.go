package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
)

// scenarios measures the scenarios in order and fills res.
func (ws *workspace) scenarios(ctx context.Context, res *SyncResult) error {
	bs := ws.o.Branches
	res.LoadBefore = loadAverage()
	r, err := ws.noop(ctx, fmt.Sprintf("no-op, %d branches", len(bs)), bs)
	if err != nil {
		return err
	}
	res.Rows = append(res.Rows, r)
	for _, b := range bs {
		r, err := ws.noop(ctx, "no-op, "+b, []string{b})
		if err != nil {
			return err
		}
		res.Rows = append(res.Rows, r)
	}
	rs, err := ws.merge(ctx)
	if err != nil {
		return err
	}
	res.Rows = append(res.Rows, rs...)
	res.LoadAfter = loadAverage()

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

// noopWay is plainNoop, for the table.
const noopWay = "bare mirror: ls-remote, merge-base --is-ancestor"

// noop measures a sync of branches when nothing is new: hyperfork's
// ls-remote of both remotes and ancestry check in its mirror, against
// plain git doing the same in its own mirror, Rounds times each in
// alternating order.
func (ws *workspace) noop(ctx context.Context, name string, branches []string) (SyncRow, error) {
	ws.o.Logger.Info("measuring", "scenario", name, "rounds", ws.o.Rounds)
	before, err := ws.heads(ctx, branches)
	if err != nil {
		return SyncRow{}, err
	}
	row := SyncRow{Name: name, Way: noopWay, Target: SyncTarget}
	sides := []func() error{
		func() error {
			rep, d, err := ws.sync(ctx, branchesEnv(branches))
			if err != nil {
				return err
			}
			if err := expectStatus(rep, branches, report.SyncUpToDate); err != nil {
				return fmt.Errorf("hyperfork: %w", err)
			}
			row.Ours = append(row.Ours, d)
			return nil
		},
		func() error {
			d, err := ws.timePlain(func() error { return ws.plainNoop(ctx, branches) })
			if err != nil {
				return fmt.Errorf("plain git: %w", err)
			}
			row.Plain = append(row.Plain, d)
			return nil
		},
	}
	for round := 1; round <= ws.o.Rounds; round++ {
		for _, i := range roundOrder(round, len(sides)) {
			if err := sides[i](); err != nil {
				return SyncRow{}, fmt.Errorf("%s, round %d: %w", name, round, err)
			}
		}
	}
	after, err := ws.heads(ctx, branches)
	if err != nil {
		return SyncRow{}, err
	}
	if !slices.EqualFunc(before, after, slices.Equal) {
		return SyncRow{}, fmt.Errorf("%s: a fork branch moved during a sync that had nothing to do: %v -> %v", name, before, after)
	}
	row.Verified = true
	return row, nil
}

// plainNoop is the fastest correct plain-git check that the fork holds
// upstream, the same question hyperfork asks: list the branches of both
// remotes at once, then check ancestry for every branch at once in the
// persistent mirror, which already holds every commit.
func (ws *workspace) plainNoop(ctx context.Context, branches []string) error {
	remotes := []string{"upstream", "fork"}
	outs := make([]string, len(remotes))
	err := parallel(len(remotes), func(i int) error {
		args := []string{"ls-remote", "--heads", remotes[i]}
		for _, b := range branches {
			args = append(args, "refs/heads/"+b)
		}
		var err error
		outs[i], err = ws.git(ctx, ws.plainMirror, args...)
		return err
	})
	if err != nil {
		return err
	}
	heads := make([]map[string]string, len(remotes))
	for i, out := range outs {
		heads[i] = map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if hash, ref, ok := strings.Cut(line, "\t"); ok {
				heads[i][strings.TrimPrefix(ref, "refs/heads/")] = hash
			}
		}
	}
	return parallel(len(branches), func(i int) error {
		b := branches[i]
		up, fork := heads[0][b], heads[1][b]
		if up == "" || fork == "" {
			return fmt.Errorf("ls-remote lists upstream %s as %q and fork %s as %q: want both", b, up, b, fork)
		}
		if _, err := ws.git(ctx, ws.plainMirror, "merge-base", "--is-ancestor", up, fork); err != nil {
			return fmt.Errorf("fork %s does not contain upstream %s: %w", b, b, err)
		}
		return nil
	})
}

// parallel runs f(0) to f(n-1) at once, as a script's `&` and `wait` do,
// and returns every error.
func parallel(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
			Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out})
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
