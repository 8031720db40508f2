package pipeline

// The test stage's reading of what the runner left: the passes it ran and
// the verdict they give, kept apart from the stage's flow in test.go.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/conformance"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
	"github.com/hyperfork/hyperfork/internal/report"
)

// passes is what the runner left: the first run, then each retry.
type passes struct {
	runs []*conformance.Run
	errs []error
	// results are each run's parsed JUnit, nil where it had none; parsed
	// holds only those that exist.
	results []*junit.Result
	parsed  []*junit.Result
	perr    error
}

// runPasses runs the tests, then reruns exactly the failed specs up to
// test.retries times.
func (r *Runner) runPasses(ctx context.Context, runner conformance.Runner, c conformance.Candidate, base string) passes {
	var p passes
	add := func(run *conformance.Run, err error) *junit.Result {
		p.runs, p.errs = append(p.runs, run), append(p.errs, err)
		var res *junit.Result
		if run != nil && len(run.JUnit) > 0 {
			var perr error
			res, perr = junit.ParseFiles(run.JUnit...)
			if perr != nil {
				p.perr = errors.Join(p.perr, perr)
			}
			if res != nil {
				p.parsed = append(p.parsed, res)
			}
		}
		p.results = append(p.results, res)
		return res
	}
	res := add(runner.Run(ctx, c, filepath.Join(base, "run")))
	for i := 0; i < r.cfg.Test.Retries && res != nil && ctx.Err() == nil; i++ {
		var names []string
		for _, fc := range res.Failures() {
			names = append(names, fc.Name)
		}
		if len(names) == 0 {
			break
		}
		res = add(runner.Retry(ctx, c, filepath.Join(base, fmt.Sprintf("retry-%d", i+1)), names))
	}
	return p
}

// verdict is the test stage's judgement of its passes.
type verdict struct {
	status string
	err    error
	merged *junit.Result
	counts junit.Counts
	infra  []string
	// record says an error is still the candidate's verdict (recorded so
	// it is not retested in a loop), as opposed to a fault to retry.
	record bool
}

// verdict reads the passes: an infrastructure failure (timeout, a runner
// that died, suite nodes or kubetest2's Up/Down) is an error, exit 1, never
// counted against a test; failures left after the retries, or fewer tests
// than test.minTests, are a failure, exit 4.
func (r *Runner) verdict(c *Candidate, p passes) verdict {
	var v verdict
	if len(p.parsed) > 0 {
		v.merged = junit.Merge(p.parsed...)
		v.counts = v.merged.Counts()
		for _, ic := range v.merged.InfraFailures() {
			v.infra = append(v.infra, ic.Name)
		}
	}
	first := p.runs[0]
	switch {
	case p.errs[0] != nil:
		v.status, v.err = report.TestError, p.errs[0]
	case p.perr != nil:
		v.status, v.err = report.TestError, fmt.Errorf("JUnit does not parse: %w", p.perr)
	case first.TimedOut:
		v.status, v.err = report.TestError, fmt.Errorf("the run timed out after test.timeout %s: an infrastructure failure, retry later", r.cfg.Test.Timeout)
	case len(v.infra) > 0:
		v.status, v.err = report.TestError, fmt.Errorf("infrastructure failure in %s: not the candidate's fault, retry later", strings.Join(v.infra, ", "))
	case v.merged == nil:
		v.status, v.err = report.TestError, errors.New("the runner wrote no JUnit")
	default:
		v.status, v.err = retryFault(p, r.cfg.Test.Timeout)
		if v.status == "" {
			v.status, v.err = crashedPass(p)
		}
	}
	if v.status != "" {
		return v
	}
	min := r.cfg.Test.MinTests
	if min == 0 {
		min = conformance.MinTestsExec
		if r.cfg.Test.Runner == config.RunnerKubetest2 {
			n, err := conformance.ConformanceTests(c.Version, r.cfg.Test.SerialFocusRegex != "")
			if err != nil {
				return verdict{status: report.TestError, err: err, merged: v.merged, counts: v.counts}
			}
			min = n
		}
	}
	if err := conformance.CheckMinTests(v.counts.Executed(), min); err != nil {
		v.status, v.err, v.record = report.TestFailed, err, true
		return v
	}
	if fails := v.merged.Failures(); len(fails) > 0 {
		var names []string
		for _, fc := range fails {
			names = append(names, fc.Name)
		}
		v.status, v.err = report.TestFailed, fmt.Errorf("%d test(s) failed: %s", len(fails), strings.Join(names, "; "))
		return v
	}
	v.status = report.TestPassed
	return v
}

// retryFault finds a retry that could not say whether its specs pass: it
// timed out, or its runner failed before writing JUnit. Its specs would
// otherwise stay failed from the first pass and read as test failures.
func retryFault(p passes, timeout time.Duration) (string, error) {
	for i := 1; i < len(p.runs); i++ {
		switch {
		case p.runs[i] != nil && p.runs[i].TimedOut:
			return report.TestError, fmt.Errorf("retry %d timed out after test.timeout %s: an infrastructure failure, retry later", i, timeout)
		case p.errs[i] != nil:
			return report.TestError, fmt.Errorf("retry %d: %w", i, p.errs[i])
		}
	}
	return "", nil
}

// crashedPass finds a pass whose command failed although its JUnit records
// no failure: a suite that crashed after writing part of its results, a
// teardown that failed, a cluster left up. Ginkgo and kubetest2 fail when a
// spec fails, so a failed command beside failed specs says nothing more; a
// failed command beside only passes means the passes are not the whole
// story, and publishing on them would publish what was not tested.
func crashedPass(p passes) (string, error) {
	for i, run := range p.runs {
		if run == nil || run.Err == nil || p.results[i] == nil || len(p.results[i].Failures()) > 0 {
			continue
		}
		which := "the test run"
		if i > 0 {
			which = fmt.Sprintf("retry %d", i)
		}
		return report.TestError, fmt.Errorf("%s failed although its JUnit records no failure (%v): an infrastructure failure or a crashed suite, see the log; retry later", which, run.Err)
	}
	return "", nil
}
