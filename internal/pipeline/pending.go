package pipeline

import (
	"context"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// The test and publish stages are rows of the stage table already, with
// the keys of their inputs, so that plan, release and their own targets ask
// the same question of them; until they are built (issues 9 and 10) they
// report skipped and why. No result is made up: a candidate without a test
// result is never published.

const (
	testPending    = "the test stage is not built yet: the candidate stays a candidate, untested"
	publishPending = "the publish stage is not built yet, and nothing is published without a passed test"
)

// testKey is the test stage's input: the candidate's digests and the test
// config.
func (r *Runner) testKey(c *Candidate) string {
	t := r.cfg.Test
	return hashKey("test/v1", c.Primary, c.Images, t.Runner, t.Command, t.Timeout.String())
}

func (r *Runner) decideTest(_ context.Context, f *flow, _ store.BranchState) decision {
	if f.cand == nil {
		return decision{why: "no candidate to test (the build stage made none)"}
	}
	return decision{key: r.testKey(f.cand), why: testPending}
}

func (r *Runner) skipTest(f *flow, _ store.BranchState, d decision) {
	f.rb.Test = &report.Test{Status: report.TestSkipped, New: []string{}, Flaky: []string{}, Infra: []string{}, Reason: d.why}
}

func (r *Runner) runTest(_ context.Context, f *flow, d decision) {
	r.skipTest(f, store.BranchState{}, d)
}

// publishKey is the publish stage's input: the tested digest and the
// publish config.
func (r *Runner) publishKey(res *Result) string {
	p := r.cfg.Publish
	return hashKey("publish/v1", res.Candidate, p.Registry, p.Keep)
}

func (r *Runner) decidePublish(_ context.Context, f *flow, _ store.BranchState) decision {
	if f.result == nil || f.result.Status != report.TestPassed {
		return decision{why: publishPending}
	}
	return decision{key: r.publishKey(f.result), why: publishPending}
}

func (r *Runner) skipPublish(f *flow, _ store.BranchState, d decision) {
	f.rb.Publish = &report.Publish{Status: report.PublishSkipped, Tags: []string{}, Deleted: []string{}, Kept: []string{}, Reason: d.why}
}

func (r *Runner) runPublish(_ context.Context, f *flow, d decision) {
	r.skipPublish(f, store.BranchState{}, d)
}
