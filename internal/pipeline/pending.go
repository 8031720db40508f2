package pipeline

import (
	"context"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// The publish stage is a row of the stage table already, with the key of
// its inputs, so that plan, release and its own target ask the same
// question of it; until it is built (issue 10) it reports skipped and why.
// Nothing is published without a passed test.

const publishPending = "the publish stage is not built yet, and nothing is published without a passed test"

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
