package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// publishKey is the publish stage's input: the tested digest, its test
// verdict and the publish config.
func (r *Runner) publishKey(c *Candidate, res *Result) string {
	p := r.cfg.Publish
	return hashKey("publish/v1", res.Candidate, res.Status, c.Images, p.Registry, p.Keep, p.MaxDeletes, p.KeepCandidates)
}

// decidePublish runs for every test verdict not announced yet: a passed
// candidate is promoted; a failed one is announced as not published. A
// candidate without a verdict is never published, whatever the flags.
func (r *Runner) decidePublish(_ context.Context, f *flow, st store.BranchState) decision {
	if f.cand == nil || f.result == nil {
		return decision{why: "no tested candidate: nothing is published without a passed test"}
	}
	key := r.publishKey(f.cand, f.result)
	if rec, ok := st.Stages[stagePublish]; ok && rec.Key == key {
		return decision{key: key, why: fmt.Sprintf("candidate %s was %s already", short(f.cand.Commit), rec.Status)}
	}
	if f.result.Status != report.TestPassed {
		return decision{run: true, key: key, why: fmt.Sprintf("candidate %s %s its tests: it is announced, not published", short(f.cand.Commit), f.result.Status)}
	}
	return decision{run: true, key: key, why: fmt.Sprintf("candidate %s passed its tests", short(f.cand.Commit))}
}

func (r *Runner) skipPublish(f *flow, st store.BranchState, d decision) {
	p := &report.Publish{Status: report.PublishSkipped, Tags: []string{}, Deleted: []string{}, Kept: []string{}, Reason: d.why}
	if rec, ok := st.Stages[stagePublish]; ok && d.key != "" && rec.Key == d.key {
		p.Status, p.Image, p.Tags = rec.Status, st.Publish.Image, orEmpty(st.Publish.Tags)
	}
	f.rb.Publish = p
}

// runPublish promotes a passed candidate (every image together, after
// checking it is complete), applies retention, and tells the administrator;
// for a failed candidate it only tells.
func (r *Runner) runPublish(ctx context.Context, f *flow, d decision) {
	p := &report.Publish{Status: report.PublishNotPublished, Tags: []string{}, Deleted: []string{}, Kept: []string{}}
	f.rb.Publish = p
	fail := func(err error) {
		p.Status, p.Reason = report.PublishError, r.redactor.String(err.Error())
		f.rb.Error = joinErr(f.rb.Error, "publish: "+p.Reason)
		f.rb.ExitCode = report.Combine(f.rb.ExitCode, report.ExitFailed)
		r.printf("%s: publish error: %s\n", f.branch.Name, p.Reason)
	}
	if f.result.Status == report.TestPassed {
		repo, err := r.builder.repository()
		if err != nil {
			fail(err)
			return
		}
		promoted, err := repo.Promote(ctx, f.cand.Images, registry.PromotionTags(f.cand.Version, f.branch.Name))
		if err != nil {
			// Promotion is all images or none: what it wrote is rolled
			// back (PromoteError names any tag a registry would not let
			// go). Not recorded: the next run promotes again, and the
			// message, under one delivery id per candidate, is sent once.
			fail(fmt.Errorf("promote %s: %w", short(f.cand.Commit), err))
			if aerr := r.announce(ctx, f, p); aerr != nil {
				f.rb.Error = joinErr(f.rb.Error, r.redactor.String(aerr.Error()))
			}
			return
		}
		p.Status, p.Image, p.Tags = report.PublishPublished, f.cand.Primary, promoted.Tags
		r.printf("%s: published %s as %s\n", f.branch.Name, f.cand.Primary, strings.Join(promoted.Tags, ", "))
		// Crash tests: tagged, retention not applied.
		killpoint.Reach("publish.promoted")
		if err := r.retain(ctx, repo, f.branch.Name, true, p); err != nil {
			// The promotion stands and is recorded; a retention fault
			// deletes nothing, and the plan is made afresh by the next
			// published candidate or by prune.
			p.Reason = r.redactor.String(err.Error())
			f.rb.Error = joinErr(f.rb.Error, "retention: "+p.Reason)
			f.rb.ExitCode = report.Combine(f.rb.ExitCode, report.ExitFailed)
		}
		// Crash tests: retention applied, nothing announced.
		killpoint.Reach("publish.retained")
	} else {
		p.Reason = fmt.Sprintf("tests %s: nothing published", f.result.Status)
	}
	if err := r.announce(ctx, f, p); err != nil {
		// Not recorded: the next run announces again, under the same
		// delivery id, so no channel shows it twice.
		if p.Status != report.PublishPublished {
			fail(err)
			return
		}
		// The tags are on the image: the report must not say otherwise.
		why := r.redactor.String(err.Error())
		p.Reason = "published; the announcement failed and the next run sends it again: " + why
		f.rb.Error = joinErr(f.rb.Error, "publish: announce: "+why)
		f.rb.ExitCode = report.Combine(f.rb.ExitCode, report.ExitFailed)
		r.printf("%s: published, but the announcement failed: %s\n", f.branch.Name, why)
		return
	}
	// Crash tests: announced (and in the delivery ledger), not recorded.
	killpoint.Reach("publish.announced")
	err := r.record(ctx, f.branch.Name, stagePublish, d.key, p.Status, func(st *store.BranchState) {
		st.Publish = store.PublishState{Status: p.Status, Image: p.Image, Tags: p.Tags, Commit: f.cand.Commit}
	})
	if err != nil {
		fail(err)
		return
	}
	// Crash tests: everything is done but the lease and the report.
	killpoint.Reach("publish.recorded")
}

// retain applies the retention plan of branch's images: keep publish.keep
// stable images by their created annotation, clean old candidates. The plan
// is printed; with apply false nothing is deleted (prune's dry run).
func (r *Runner) retain(ctx context.Context, repo *registry.Repository, branch string, apply bool, p *report.Publish) error {
	var names []string
	for _, img := range r.cfg.Images {
		names = append(names, img.Name)
	}
	plan, err := repo.Plan(ctx, registry.RetentionPolicy{Branch: branch, Images: names, Keep: r.cfg.Publish.Keep,
		MaxDeletes: r.cfg.Publish.MaxDeletes, KeepCandidates: r.cfg.Publish.KeepCandidatesFor(), Now: r.opts.Now()})
	if err != nil {
		return fmt.Errorf("retention plan for %s: %w (nothing was deleted)", branch, err)
	}
	r.printf("%s: retention plan:\n%s\n", branch, indent(plan.String()))
	if p != nil {
		p.Kept = orEmpty(plan.KeptTags())
	}
	if !apply {
		return nil
	}
	if err := repo.Apply(ctx, plan); err != nil {
		var ae *registry.ApplyError
		if p != nil && errors.As(err, &ae) {
			p.Deleted = orEmpty(ae.Done)
		}
		return fmt.Errorf("apply retention for %s: %w", branch, err)
	}
	if p != nil {
		p.Deleted = orEmpty(plan.Deleted())
	}
	return nil
}

// announce sends the one message of this verdict: pass or fail, published
// or not and why, the image with its tags, the counts, new failures with
// their suspects, the log attached. Its event says which: release.published;
// test.failed (tests ran, some failed, nothing published); release.failed
// (tests passed, publishing did not).
func (r *Runner) announce(ctx context.Context, f *flow, p *report.Publish) error {
	var event, title string
	switch {
	case p.Status == report.PublishPublished:
		event = notify.EventReleasePublished
		title = fmt.Sprintf("hyperfork: %s %s passed and is published as %s", f.branch.Name, f.cand.Version, strings.Join(p.Tags, ", "))
	case f.result.Status != report.TestPassed:
		event = notify.EventTestFailed
		title = fmt.Sprintf("hyperfork: %s %s failed its tests and was not published", f.branch.Name, f.cand.Version)
	default:
		event = notify.EventReleaseFailed
		title = fmt.Sprintf("hyperfork: %s %s passed its tests but was not published: %s", f.branch.Name, f.cand.Version, p.Reason)
	}
	return r.notifier.Send(ctx, r.testMessage(ctx, f, event, title, p))
}

// announceTestError tells the administrator the tests of a candidate could
// not run (a cluster that did not come up, a timeout, a suite that crashed):
// nothing is published and the next run tests again. One message per
// candidate: the delivery id names the commit, so a nightly retry that
// meets the same fault does not repeat it.
func (r *Runner) announceTestError(ctx context.Context, f *flow) {
	if interruption(ctx) != nil {
		// Stopped by a person or a supervisor: nothing to tell them.
		return
	}
	title := fmt.Sprintf("hyperfork: the tests of %s %s could not run; nothing was published and the next run tests again: %s",
		f.branch.Name, f.cand.Version, f.rb.Test.Reason)
	if err := r.notifier.Send(ctx, r.testMessage(ctx, f, notify.EventTestError, title, nil)); err != nil {
		f.rb.Error = joinErr(f.rb.Error, r.redactor.String(err.Error()))
		f.rb.ExitCode = report.Combine(f.rb.ExitCode, report.ExitFailed)
	}
}

// testMessage is the message about one candidate's tests: the counts, new
// failures with their suspects, the log linked and attached, and with p the
// publish outcome.
func (r *Runner) testMessage(ctx context.Context, f *flow, event, title string, p *report.Publish) notify.Message {
	t := f.rb.Test
	m := notify.Message{Event: event, Branch: f.branch.Name, Title: title,
		ID: f.branch.Name + "/" + event + "/" + f.cand.Commit, ForkCommit: f.cand.Commit,
		Image: f.cand.Primary, Build: f.rb.Build, Test: t}
	if p != nil {
		m.Status, m.Pushed, m.Reason, m.Tags, m.Publish = p.Status, p.Status == report.PublishPublished, p.Reason, p.Tags, p
	} else if t != nil {
		m.Status, m.Reason = t.Status, t.Reason
	}
	if f.head != nil {
		m.UpstreamCommit = f.head.Upstream
	}
	if t != nil {
		m.Counts = &notify.Counts{Passed: t.Passed, Failed: t.Failed, Flaky: len(t.Flaky), Skipped: t.Skipped}
		if t.Log != "" {
			m.LogURL = r.artifactLink(ctx, t.Log)
		}
		// Every new failure, with its suspects where the mirror could
		// tell them: a failure without a suspect range is still news.
		suspects := map[string][]notify.Commit{}
		for _, s := range t.Suspects {
			for _, name := range s.Tests {
				for _, c := range s.Upstream {
					suspects[name] = append(suspects[name], notify.Commit{Hash: c.Hash, Subject: c.Subject, Side: notify.SideUpstream})
				}
				for _, c := range s.Carries {
					suspects[name] = append(suspects[name], notify.Commit{Hash: c.Hash, Subject: c.Subject, Side: notify.SideCarry})
				}
			}
		}
		for _, name := range t.New {
			m.NewFailures = append(m.NewFailures, notify.Failure{Test: name, Suspects: suspects[name]})
		}
		// From logs.store, not the local run folder: publish may run on
		// another machine than the tests did.
		if t.Log != "" {
			data, cut, err := r.readArtifact(ctx, t.Log)
			switch {
			case err != nil:
				r.log.Warn("attach the test log", "branch", f.branch.Name, "err", err)
			case cut:
				// A cut log misleads; the link has it whole.
				r.log.Info("test log too large to attach; the message links it", "branch", f.branch.Name, "bytes", maxAttached)
			default:
				m.Attachments = append(m.Attachments, notify.Attachment{Name: filepath.Base(t.Log), ContentType: "text/plain", Data: data})
			}
		}
	}
	logLine := "-"
	if t != nil && t.Log != "" {
		logLine = t.Log
	}
	m.Text = fmt.Sprintf("%s\n\nimage: %s\ntests: %s\nlog: %s\n", title, f.cand.Primary, testLine(t), logLine)
	return m
}

func testLine(t *report.Test) string {
	if t == nil {
		return "-"
	}
	s := fmt.Sprintf("%s, %d passed, %d failed, %d skipped", t.Status, t.Passed, t.Failed, t.Skipped)
	if len(t.New) > 0 {
		s += "; new failures: " + strings.Join(t.New, ", ")
	}
	if len(t.Flaky) > 0 {
		s += "; flaky: " + strings.Join(t.Flaky, ", ")
	}
	return s
}
