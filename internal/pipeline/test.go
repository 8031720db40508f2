package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/conformance"
	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/gitsync"
	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// testKey is the test stage's input: the candidate's digests and the test
// config.
func (r *Runner) testKey(c *Candidate) string {
	t := r.cfg.Test
	parts := []any{"test/v1", c.Primary, c.Images, t.Runner, t.Command, t.Timeout.String(), t.Retries, t.MinTests, t.Platform}
	if t.Runner == config.RunnerKubetest2 {
		// What the specs and the cluster are; exec's keys stay as they were.
		parts = append(parts, t.FocusRegex, t.SkipRegex, t.GinkgoParallel, t.SerialFocusRegex, t.SerialSkipRegex, t.BaseImage, t.NodeImage)
	}
	return hashKey(parts...)
}

// decideTest runs the tests of a candidate not tested with this config.
func (r *Runner) decideTest(_ context.Context, f *flow, st store.BranchState) decision {
	if f.cand == nil {
		return decision{why: "no candidate to test (the build stage made none)"}
	}
	key := r.testKey(f.cand)
	rec, seen := st.Stages[stageTest]
	switch {
	case r.opts.Force:
		return decision{run: true, key: key, why: "HYPERFORK_FORCE=1"}
	case seen && rec.Key == key:
		return decision{key: key, why: fmt.Sprintf("candidate %s was tested with this test config (%s)", short(f.cand.Commit), rec.Status)}
	}
	return decision{run: true, key: key, why: fmt.Sprintf("candidate %s was not tested yet", short(f.cand.Commit))}
}

// skipTest reports a test stage that does not run; a tested candidate
// hands its result on.
func (r *Runner) skipTest(f *flow, st store.BranchState, d decision) {
	t := &report.Test{Status: report.TestSkipped, New: []string{}, Flaky: []string{}, Infra: []string{}, Reason: d.why}
	if rec, ok := st.Stages[stageTest]; ok && d.key != "" && rec.Key == d.key {
		t = testReportOf(st.Test)
		t.Reason = d.why
		f.result = &Result{Status: rec.Status, Candidate: f.cand.Primary}
	}
	f.rb.Test = t
}

// testReportOf turns the recorded summary back into the report's fields.
func testReportOf(s store.TestState) *report.Test {
	return &report.Test{Status: s.Status, Passed: s.Passed, Failed: s.Failed, Skipped: s.Skipped, Log: s.Log,
		New: orEmpty(s.New), Flaky: orEmpty(s.Flaky), Infra: orEmpty(s.Infra)}
}

func orEmpty(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// runTest runs the configured runner on exactly the candidate, retries the
// failed specs, reads the results against the branch's history, keeps the
// logs and records the outcome.
func (r *Runner) runTest(ctx context.Context, f *flow, d decision) {
	t := &report.Test{Status: report.TestError, New: []string{}, Flaky: []string{}, Infra: []string{}}
	f.rb.Test = t
	fail := func(code int, err error) {
		t.Reason = r.redactor.String(err.Error())
		f.rb.Error = joinErr(f.rb.Error, "test: "+t.Reason)
		f.rb.ExitCode = report.Combine(f.rb.ExitCode, code)
		r.printf("%s: test %s: %s\n", f.branch.Name, t.Status, t.Reason)
	}
	c, err := r.testCandidate(ctx, f)
	if err != nil {
		fail(report.ExitFailed, err)
		r.announceTestError(ctx, f)
		return
	}
	runner, err := r.testRunner()
	if err != nil {
		fail(report.ExitFailed, err)
		r.announceTestError(ctx, f)
		return
	}
	base := filepath.Join(r.work, "test", safeName(f.branch.Name), f.cand.Commit[:12]+"-"+r.runID)
	out := r.runPasses(ctx, runner, c, base)
	if err := r.exportJUnit(f.branch.Name, out); err != nil {
		r.log.Warn("copy JUnit to HYPERFORK_JUNIT", "branch", f.branch.Name, "err", err)
		r.printf("%s: test: could not copy JUnit to HYPERFORK_JUNIT: %v\n", f.branch.Name, err)
	}
	if stopped := interruption(ctx); stopped != nil {
		// Stopped midway: no verdict, nothing recorded; the log is kept.
		t.Log = r.keepTestLogs(ctx, f, base, "interrupted")
		fail(report.ExitFailed, fmt.Errorf("%v", stopped))
		return
	}
	v := r.verdict(f.cand, out)
	t.Status, t.Passed, t.Failed, t.Skipped = v.status, v.counts.Passed, v.counts.Failed+v.counts.Errors, v.counts.Skipped
	t.Infra = orEmpty(v.infra)
	for _, fl := range v.merged.Flakes() {
		t.Flaky = append(t.Flaky, fl.Name)
	}
	if v.merged != nil {
		r.readHistory(ctx, f, v, t)
	}
	// Crash tests: the verdict and the history entry exist, the logs are
	// not kept yet.
	killpoint.Reach("test.verdict")
	t.Log = r.keepTestLogs(ctx, f, base, v.status)
	// Crash tests: the logs are kept, older ones not pruned, nothing recorded.
	killpoint.Reach("test.kept")
	kept, err := r.pruneTestLogs(ctx, f, t.Log)
	if err != nil {
		r.log.Warn("prune test logs", "branch", f.branch.Name, "err", err)
	}
	if v.status != report.TestError || v.record {
		serr := r.record(ctx, f.branch.Name, stageTest, d.key, v.status, func(st *store.BranchState) {
			logs := map[string]string{}
			suspects := map[string][]store.SuspectRange{}
			for id, loc := range st.Test.RunLogs {
				if kept[loc] {
					logs[id] = loc
					if s, ok := st.Test.RunSuspects[id]; ok {
						suspects[id] = s
					}
				}
			}
			if t.Log != "" {
				logs[r.runID] = t.Log
			}
			if len(t.Suspects) > 0 {
				suspects[r.runID] = suspectRanges(t.Suspects)
			}
			st.Test = store.TestState{Status: t.Status, Candidate: f.cand.Primary, Commit: f.cand.Commit, Passed: t.Passed,
				Failed: t.Failed, Skipped: t.Skipped, Log: t.Log, New: t.New, Flaky: t.Flaky, Infra: t.Infra, Time: r.opts.Now().UTC(),
				RunLogs: logs, RunSuspects: suspects}
		})
		if serr != nil {
			// Unrecorded, the verdict is not the stage's: the next run
			// tests the candidate again, so nothing may go on from here.
			verdict := t.Status
			t.Status = report.TestError
			fail(report.ExitFailed, fmt.Errorf("the tests %s, but their result could not be recorded, so the next run tests again: %w", verdict, serr))
			return
		}
		// Crash tests: the verdict is recorded, publish not begun.
		killpoint.Reach("test.recorded")
	}
	switch v.status {
	case report.TestPassed:
		f.result = &Result{Status: report.TestPassed, Candidate: f.cand.Primary}
		r.printf("%s: test passed: %d passed, %d skipped, %d flaky (%s)\n", f.branch.Name, t.Passed, t.Skipped, len(t.Flaky), t.Log)
	case report.TestFailed:
		// The verdict goes on to publish, which announces it unpublished.
		f.result = &Result{Status: report.TestFailed, Candidate: f.cand.Primary}
		fail(report.ExitTests, v.err)
	default:
		// No verdict, so no publish stage to announce it: said here.
		fail(report.ExitFailed, v.err)
		r.announceTestError(ctx, f)
	}
}

// readHistory appends the run to the branch's test history and reads its
// failures against it: new (passed in the last run), persistent, flaky.
func (r *Runner) readHistory(ctx context.Context, f *flow, v verdict, t *report.Test) {
	run := history.Run{ID: r.runID, Time: r.opts.Now().UTC(), Commit: f.cand.Commit, Candidate: f.cand.Primary,
		Result: v.merged, Infra: v.status == report.TestError}
	if v.err != nil && run.Infra {
		run.InfraReason = v.err.Error()
	}
	if err := history.Append(context.WithoutCancel(ctx), r.state, f.branch.Name, run); err != nil {
		r.log.Warn("record test history", "branch", f.branch.Name, "err", err)
		return
	}
	h, err := history.Load(ctx, r.state, f.branch.Name, 100)
	if err != nil || len(h.Runs) == 0 {
		return
	}
	cls := h.Classify(len(h.Runs) - 1)
	t.New = orEmpty(h.Names(cls.New))
	if fl := h.Names(cls.Flaky); len(fl) > 0 {
		t.Flaky = fl
	}
	t.Suspects = r.suspects(ctx, f, h, cls.New)
}

// suspectRanges is what the branch record keeps of a run's suspects.
func suspectRanges(in []report.Suspects) []store.SuspectRange {
	out := make([]store.SuspectRange, 0, len(in))
	for _, s := range in {
		sr := store.SuspectRange{Tests: s.Tests}
		for _, c := range s.Upstream {
			sr.Upstream = append(sr.Upstream, store.SuspectCommit{Hash: c.Hash, Subject: c.Subject})
		}
		for _, c := range s.Carries {
			sr.Carries = append(sr.Carries, store.SuspectCommit{Hash: c.Hash, Subject: c.Subject})
		}
		out = append(out, sr)
	}
	return out
}

// suspects finds, for new failures, the changes between the last candidate
// each passed on and this one, from the mirror: the upstream commits merged
// and the carries changed. Failures with the same last pass share a range.
func (r *Runner) suspects(ctx context.Context, f *flow, h *history.History, fails []history.Failure) []report.Suspects {
	byGood := map[string][]string{}
	var order []string
	for _, fl := range fails {
		good := ""
		if fl.Streak.LastPassing != nil {
			good = fl.Streak.LastPassing.Commit
		}
		if _, seen := byGood[good]; !seen {
			order = append(order, good)
		}
		byGood[good] = append(byGood[good], h.Tests[fl.Test].Name)
	}
	if len(order) == 0 {
		return nil
	}
	s, err := r.sharedSyncer(ctx)
	if err != nil {
		return nil
	}
	var out []report.Suspects
	for _, good := range order {
		sr := report.Suspects{Tests: byGood[good], Good: good, Bad: f.cand.Commit, Upstream: []report.Commit{}, Carries: []report.Commit{}}
		if good != "" {
			rng, err := s.Suspects(ctx, f.branch.Name, good, f.cand.Commit, 50)
			if err != nil {
				r.log.Warn("suspect range", "branch", f.branch.Name, "err", err)
			} else {
				sr.Upstream, sr.MoreUpstream = suspectCommits(rng.Upstream), rng.MoreUpstream
				sr.Carries, sr.MoreCarries = suspectCommits(rng.Carries), rng.MoreCarries
			}
		}
		out = append(out, sr)
	}
	return out
}

func suspectCommits(cs []gitsync.SuspectCommit) []report.Commit {
	out := make([]report.Commit, len(cs))
	for i, c := range cs {
		out[i] = report.Commit{Hash: c.Hash, Subject: c.Subject, Author: c.Author}
	}
	return out
}

// testCandidate is the runner's view of the candidate: its images, and its
// binaries and server tarball for the test platform from this work folder.
func (r *Runner) testCandidate(ctx context.Context, f *flow) (conformance.Candidate, error) {
	c := conformance.Candidate{Branch: f.branch.Name, Commit: f.cand.Commit, Version: f.cand.Version,
		Image: f.cand.Primary, Images: f.cand.Images}
	platform := r.cfg.Test.Platform
	if platform == "" {
		platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	out := filepath.Join(r.work, "out", safeName(f.branch.Name))
	c.BinDir = filepath.Join(out, build.PlatformDir(platform))
	if _, err := os.Stat(c.BinDir); err != nil {
		c.BinDir = out // a single-platform build writes its binaries flat
	}
	if !r.outputOf(f.branch.Name, f.cand.Commit) {
		// Another machine built it: its images hold what it built.
		dir, err := r.extractCandidate(ctx, f, platform)
		if err != nil {
			return c, err
		}
		c.BinDir = dir
	}
	_, arch, _ := strings.Cut(platform, "/")
	arch, _, _ = strings.Cut(arch, "/")
	if loc := f.cand.Artifacts["server-linux-"+arch]; loc != "" {
		local, err := r.fetchArtifact(ctx, loc, "candidates/"+safeName(f.branch.Name)+"/"+f.cand.Commit[:12]+"/"+filepath.Base(loc))
		if err != nil {
			return c, err
		}
		c.ServerTarball = local
	}
	return c, nil
}

// fetchArtifact returns a local path for the artifact at loc: loc itself
// for a folder store, else a copy of key in the work folder.
func (r *Runner) fetchArtifact(ctx context.Context, loc, key string) (string, error) {
	if _, err := os.Stat(loc); err == nil {
		return loc, nil
	}
	rc, err := r.logs.Open(ctx, key)
	if err != nil {
		return "", fmt.Errorf("fetch %s from logs.store: %w", key, err)
	}
	defer rc.Close()
	local := filepath.Join(r.work, "tmp", filepath.Base(key))
	f, err := createFile(local)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("fetch %s from logs.store: %w", key, err)
	}
	return local, nil
}

// outputOf reports whether the work folder's build output is commit's.
func (r *Runner) outputOf(branch, commit string) bool {
	b, err := os.ReadFile(filepath.Join(r.work, "out", safeName(branch)+".commit"))
	return err == nil && strings.TrimSpace(string(b)) == commit
}

// testRunner makes the configured runner.
func (r *Runner) testRunner() (conformance.Runner, error) {
	t := r.cfg.Test
	switch t.Runner {
	case config.RunnerExec:
		return &conformance.Exec{Command: t.Command, Dir: r.cfg.Dir, Timeout: t.Timeout, Redactor: r.redactor, Logger: r.log}, nil
	case config.RunnerKubetest2:
		o := conformance.DefaultOptions()
		o.FocusRegex, o.SkipRegex, o.Parallel = t.FocusRegex, t.SkipRegex, t.GinkgoParallel
		o.SerialFocusRegex, o.SerialSkipRegex = t.SerialFocusRegex, t.SerialSkipRegex
		o.BaseImage, o.NodeImage = t.BaseImage, t.NodeImage
		return &conformance.Kubetest2{Options: o, Timeout: t.Timeout, Redactor: r.redactor, Logger: r.log}, nil
	}
	return nil, fmt.Errorf("test.runner %q is unknown", t.Runner)
}
