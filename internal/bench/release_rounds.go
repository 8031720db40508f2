package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
)

// measure warms both stores up, stops buildkitd, then runs the rounds and
// the profiled run, and fills res.
func (rw *releaseWorld) measure(ctx context.Context, res *ReleaseResult) error {
	log, stores := rw.o.Logger, []string{storeFolder, storeS3}
	for _, st := range stores {
		log.Info("warm-up release: builds every branch once", "state", st)
		rep, _, d, err := rw.inProcess(ctx, st)
		if err != nil {
			return fmt.Errorf("warm-up release, state in %s: %w", st, err)
		}
		if err := rw.checkBuilt(rep); err != nil {
			return fmt.Errorf("warm-up release, state in %s: %w", st, err)
		}
		res.Warmup[st] = d
	}
	if err := rw.stopDaemon(); err != nil {
		return fmt.Errorf("stop buildkitd after the warm-up: %w", err)
	}
	// One untimed no-op per row: the first `go tool mage` may compile the
	// magefiles, and the first run of each store after the builds reads
	// what they left.
	rows := []*ReleaseRow{
		{Name: "state in a folder, in-process", Store: storeFolder},
		{Name: "state in S3 (versitygw), in-process", Store: storeS3},
		{Name: "state in a folder, go tool mage release", Store: storeFolder, Mage: true},
		{Name: "state in S3 (versitygw), go tool mage release", Store: storeS3, Mage: true},
	}
	for _, row := range rows {
		row.Branches = len(rw.o.Branches)
		log.Info("untimed no-op release", "row", row.Name)
		if _, err := rw.noop(ctx, row); err != nil {
			return fmt.Errorf("untimed no-op release, %s: %w", row.Name, err)
		}
	}
	if _, err := rw.mageStartup(ctx); err != nil {
		return err
	}
	if _, err := rw.mageCompile(ctx, rw.stableMage()); err != nil {
		return err
	}

	res.LoadBefore = loadAverage()
	for round := 1; round <= rw.o.Rounds; round++ {
		log.Info("measuring", "round", round, "of", rw.o.Rounds)
		for _, row := range rows {
			for _, side := range roundOrder(round, 2) {
				if side == 0 {
					d, err := rw.noop(ctx, row)
					if err != nil {
						return fmt.Errorf("%s, round %d: %w", row.Name, round, err)
					}
					row.Ours = append(row.Ours, d)
					continue
				}
				d, err := rw.lsRemote(ctx)
				if err != nil {
					return fmt.Errorf("plain git beside %s, round %d: %w", row.Name, round, err)
				}
				row.Plain = append(row.Plain, d)
			}
		}
		d, err := rw.mageStartup(ctx)
		if err != nil {
			return err
		}
		res.MageStartup = append(res.MageStartup, d)
		fresh := filepath.Join(rw.o.WorkDir, "mage", fmt.Sprintf("round-%d", round), "mage")
		if d, err = rw.mageCompile(ctx, fresh); err != nil {
			return err
		}
		res.MageCompileFresh = append(res.MageCompileFresh, d)
		if err := os.RemoveAll(filepath.Dir(fresh)); err != nil {
			return err
		}
		if d, err = rw.mageCompile(ctx, rw.stableMage()); err != nil {
			return err
		}
		res.MageCompileStable = append(res.MageCompileStable, d)
	}
	res.LoadAfter = loadAverage()

	log.Info("profiling one more no-op release with state in S3, through a recording proxy")
	profile, err := rw.profile(ctx)
	if err != nil {
		return err
	}
	res.Profile = profile
	after, err := rw.heads(ctx, rw.fork)
	if err != nil {
		return err
	}
	moved := false
	for b, h := range rw.forkHeads {
		moved = moved || after[b] != h
	}
	res.Verified = !moved
	for _, row := range rows {
		row.Verified = len(row.Ours) == rw.o.Rounds && len(row.Plain) == rw.o.Rounds
		res.Verified = res.Verified && row.Verified
		res.Rows = append(res.Rows, *row)
	}
	if moved {
		return fmt.Errorf("a fork branch moved during releases that had nothing to do: %v -> %v", rw.forkHeads, after)
	}
	return nil
}

// noop runs one no-op release for row, checks its report and keeps it in
// row.Last. Every error means a round that was not a verified no-op.
func (rw *releaseWorld) noop(ctx context.Context, row *ReleaseRow) (time.Duration, error) {
	var rep *report.Report
	var d time.Duration
	var err error
	if row.Mage {
		rep, d, err = rw.viaMage(ctx, row.Store)
	} else {
		rep, _, d, err = rw.inProcess(ctx, row.Store)
	}
	if err != nil {
		return 0, err
	}
	if err := rw.checkNoop(rep); err != nil {
		return 0, err
	}
	row.Last = rep
	return d, nil
}

// inProcess runs hyperfork's release in this process exactly as `go tool
// mage release` runs it once mage has started, and returns its report, when
// the call started and the duration of the call alone.
func (rw *releaseWorld) inProcess(ctx context.Context, st string) (*report.Report, time.Time, time.Duration, error) {
	env := map[string]string{
		"HYPERFORK_CONFIG": rw.configs[st],
		"HYPERFORK_REPORT": rw.reports[st],
		"BUILDKIT_HOST":    rw.buildkit,
	}
	logf, err := rw.openLog("in-process release, state in " + st)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	defer logf.Close()
	if err := os.Remove(rw.reports[st]); err != nil && !os.IsNotExist(err) {
		return nil, time.Time{}, 0, err
	}
	start := time.Now()
	code, err := pipeline.Main(ctx, "release", pipeline.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: logf, Stderr: logf, ModuleDir: rw.o.ModuleDir})
	d := time.Since(start)
	if err != nil || code != 0 {
		return nil, start, d, fmt.Errorf("hyperfork release exited with code %d: %v\nthe end of its log %s:\n%s", code, err, rw.pipeLog, lastLines(rw.pipeLog, 30))
	}
	rep, err := readReport(rw.reports[st])
	return rep, start, d, err
}

// viaMage runs `go tool mage release` in hyperfork's module, as a person or
// a scheduler types it, and returns its report and the time from starting
// go to its exit.
func (rw *releaseWorld) viaMage(ctx context.Context, st string) (*report.Report, time.Duration, error) {
	logf, err := rw.openLog("go tool mage release, state in " + st)
	if err != nil {
		return nil, 0, err
	}
	defer logf.Close()
	if err := os.Remove(rw.reports[st]); err != nil && !os.IsNotExist(err) {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "mage", "release")
	cmd.Dir, cmd.Stdout, cmd.Stderr = rw.o.ModuleDir, logf, logf
	cmd.Env = append(rw.mageEnv(), "HYPERFORK_CONFIG="+rw.configs[st], "HYPERFORK_REPORT="+rw.reports[st], "BUILDKIT_HOST="+rw.buildkit)
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return nil, d, fmt.Errorf("go tool mage release in %s: %w\nthe end of its log %s:\n%s", rw.o.ModuleDir, err, rw.pipeLog, lastLines(rw.pipeLog, 30))
	}
	rep, err := readReport(rw.reports[st])
	return rep, d, err
}

// mageStartup times `go tool mage -l`: go, mage and the compiled magefile
// binary starting and listing the targets, with no target run.
func (rw *releaseWorld) mageStartup(ctx context.Context) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "mage", "-l")
	cmd.Dir, cmd.Env = rw.o.ModuleDir, rw.mageEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil || !strings.Contains(out.String(), "release") {
		return d, fmt.Errorf("go tool mage -l in %s: %v\n%s", rw.o.ModuleDir, err, out.String())
	}
	return d, nil
}

// mageCompile times `go tool mage -compile out`: the magefiles parsed,
// their main file generated and `go build -o out` run, under the same
// checkout lock as before a target.
func (rw *releaseWorld) mageCompile(ctx context.Context, out string) (time.Duration, error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "mage", "-compile", out)
	cmd.Dir, cmd.Env = rw.o.ModuleDir, rw.mageEnv()
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("go tool mage -compile %s in %s: %v\n%s", out, rw.o.ModuleDir, err, log.String())
	}
	if _, err := os.Stat(out); err != nil {
		return d, fmt.Errorf("go tool mage -compile %s wrote no binary: %w", out, err)
	}
	return d, nil
}

// stableMage is the one path MageCompileStable compiles to.
func (rw *releaseWorld) stableMage() string {
	return filepath.Join(rw.o.WorkDir, "mage", "stable", "mage")
}

// mageEnv is this process's environment without HYPERFORK_* variables, so
// that HYPERFORK_BRANCHES or HYPERFORK_FORCE set for the benchmark's own
// mage cannot change the release, with the S3 server's AWS_* variables.
func (rw *releaseWorld) mageEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HYPERFORK_") {
			env = append(env, kv)
		}
	}
	return append(env, rw.s3.env(rw.s3.endpoint)...)
}

// openLog opens the pipeline log for appending, headed by what runs next.
func (rw *releaseWorld) openLog(what string) (*os.File, error) {
	f, err := os.OpenFile(rw.pipeLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pipeline log: %w", err)
	}
	fmt.Fprintf(f, "\n=== %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), what)
	return f, nil
}

func readReport(path string) (*report.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hyperfork release wrote no report: %w", err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("hyperfork release report %s: %w", path, err)
	}
	return &rep, nil
}

// lsRemote is plain git's side: `git ls-remote --heads` of upstream and of
// the fork for every branch, both at once, the least any check for new
// commits must do. It checks that both list the heads the world was made
// with.
func (rw *releaseWorld) lsRemote(ctx context.Context) (time.Duration, error) {
	urls := []string{rw.upURL, rw.forkURL}
	want := []map[string]string{rw.upHeads, rw.forkHeads}
	outs := make([]string, len(urls))
	start := time.Now()
	err := parallel(len(urls), func(i int) error {
		args := []string{"ls-remote", "--heads", urls[i]}
		for _, b := range rw.o.Branches {
			args = append(args, "refs/heads/"+b)
		}
		var err error
		outs[i], err = rw.git(ctx, rw.o.WorkDir, args...)
		return err
	})
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	for i, out := range outs {
		got := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if hash, ref, ok := strings.Cut(line, "\t"); ok {
				got[strings.TrimPrefix(ref, "refs/heads/")] = hash
			}
		}
		for b, h := range want[i] {
			if got[b] != h {
				return d, fmt.Errorf("ls-remote %s lists %s at %q, want %s", urls[i], b, got[b], h)
			}
		}
	}
	return d, nil
}

// checkBuilt checks a warm-up report: every branch synced up to date and
// built.
func (rw *releaseWorld) checkBuilt(rep *report.Report) error {
	return rw.checkReport(rep, report.BuildBuilt)
}

// checkNoop checks that a release did nothing: exit code 0 and, for every
// branch, sync and build up to date at the heads the world was made with,
// test passed and publish published, handed on from the warm-up, no error.
func (rw *releaseWorld) checkNoop(rep *report.Report) error {
	return rw.checkReport(rep, report.BuildUpToDate)
}

func (rw *releaseWorld) checkReport(rep *report.Report, build string) error {
	if rep.Target != "release" || rep.ExitCode != 0 || rep.Error != "" || len(rep.Branches) != len(rw.o.Branches) {
		return fmt.Errorf("report of target %q has exit code %d, error %q and %d branches; want release, 0, none and %d", rep.Target, rep.ExitCode, rep.Error, len(rep.Branches), len(rw.o.Branches))
	}
	for _, b := range rep.Branches {
		up, ok := rw.upHeads[b.Name]
		if !ok {
			return fmt.Errorf("report names branch %s, which is not configured", b.Name)
		}
		switch {
		case b.ExitCode != 0 || b.Error != "":
			return fmt.Errorf("branch %s: exit code %d, error %q", b.Name, b.ExitCode, b.Error)
		case b.Sync == nil || b.Sync.Status != report.SyncUpToDate || b.Sync.UpstreamCommit != up || b.Sync.ForkCommit != rw.forkHeads[b.Name]:
			return fmt.Errorf("branch %s: sync %s, want up-to-date with upstream %s and fork %s", b.Name, jsonOf(b.Sync), up, rw.forkHeads[b.Name])
		case b.Build == nil || b.Build.Status != build || b.Build.Commit != rw.forkHeads[b.Name] || b.Build.Image == "":
			return fmt.Errorf("branch %s: build %s, want %s at %s with an image", b.Name, jsonOf(b.Build), build, rw.forkHeads[b.Name])
		case b.Test == nil || b.Test.Status != report.TestPassed:
			return fmt.Errorf("branch %s: test %s, want passed", b.Name, jsonOf(b.Test))
		case build == report.BuildUpToDate && !strings.Contains(b.Test.Reason, "was tested"):
			return fmt.Errorf("branch %s: test %s, want the candidate's earlier pass handed on", b.Name, jsonOf(b.Test))
		case b.Publish == nil || b.Publish.Status != report.PublishPublished:
			return fmt.Errorf("branch %s: publish %s, want published", b.Name, jsonOf(b.Publish))
		case build == report.BuildUpToDate && !strings.Contains(b.Publish.Reason, "already"):
			return fmt.Errorf("branch %s: publish %s, want the earlier publish handed on", b.Name, jsonOf(b.Publish))
		}
	}
	return nil
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
