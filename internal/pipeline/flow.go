package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/gitsync"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// ForkHead is what sync hands on: the fork branch's head after the sync.
type ForkHead struct {
	Commit   string
	Upstream string
	// SyncStatus is how the head came to be (merged, up-to-date, conflict).
	SyncStatus string
	// Pending is set by plan for a merge that has not been made: the head
	// will be a new commit, not Commit.
	Pending bool
}

// Candidate is what build hands on: the images of one fork commit, pushed
// under candidate tags only.
type Candidate struct {
	Commit  string
	Version string
	// Images maps each image's name to its candidate ref@digest.
	Images map[string]string
	// Primary is the hyperkube image (the report's build.image).
	Primary   string
	Platforms []string
	Log       string
	// Artifacts maps each artifact (server-linux-amd64) to where it is kept.
	Artifacts map[string]string
}

// Result is what test hands on to publish: the verdict recorded for exactly
// one candidate. A flow whose test stage ended in an error has none.
type Result struct {
	Status string
	// Candidate is the digest that was tested.
	Candidate string
}

// flow is one branch's way through the stages after sync. Its fields are
// the typed hand-offs; rb is output only, filled from them.
type flow struct {
	branch config.Branch
	rb     *report.Branch
	head   *ForkHead
	cand   *Candidate
	result *Result
	// syncFailed says why there is no head to work on.
	syncFailed string
}

// decision is a stage's answer to "run or skip?" for one flow.
type decision struct {
	run bool
	// key identifies the stage's inputs; a stage that ran records it.
	key string
	why string
}

// stage is one row of the table that release, plan and the single-stage
// targets all ask.
type stage struct {
	name string
	// slots bounds how many flows run the stage at once; nil: no bound.
	slots chan struct{}
	// decide answers from the key of the stage's inputs and the branch's
	// records; it changes nothing, so plan can ask it too.
	decide func(ctx context.Context, f *flow, st store.BranchState) decision
	// skip fills the flow's report for a stage that does not run.
	skip func(f *flow, st store.BranchState, d decision)
	// run runs the stage and fills the flow's hand-off and report.
	run func(ctx context.Context, f *flow, d decision)
}

// Stage names, in flow order.
const (
	stageBuild   = "build"
	stageTest    = "test"
	stagePublish = "publish"
)

// flowStages returns the stages after sync that target runs.
func flowStages(target string) []string {
	switch target {
	case "build":
		return []string{stageBuild}
	case "test":
		return []string{stageTest}
	case "publish":
		return []string{stagePublish}
	case "release":
		return []string{stageBuild, stageTest, stagePublish}
	}
	return nil
}

// defaultStages is the stage table. Builds share BuildKit, one at a time
// (it already builds a branch's platforms in parallel); tests run
// test.parallel at once; publishing is quick and unbounded.
func (r *Runner) defaultStages() []*stage {
	b := &builder{r: r}
	r.builder = b
	tests := r.cfg.Test.Parallel
	if tests < 1 {
		tests = 1
	}
	return []*stage{
		{name: stageBuild, slots: make(chan struct{}, 1), decide: b.decide, skip: b.skip, run: b.run},
		{name: stageTest, slots: make(chan struct{}, tests), decide: r.decideTest, skip: r.skipTest, run: r.runTest},
		{name: stagePublish, decide: r.decidePublish, skip: r.skipPublish, run: r.runPublish},
	}
}

func (r *Runner) stage(name string) *stage {
	for _, s := range r.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// runFlows runs each branch's flow through the named stages in its own
// goroutine: one branch's long stage never delays another's, beyond the
// bound of a shared stage. Each flow runs under its branch's lease and
// stops when the lease is lost.
func (r *Runner) runFlows(ctx context.Context, rep *report.Report, branches []config.Branch, leases map[string]*store.Lease, heads map[string]*ForkHead, names []string) {
	if len(branches) == 0 || len(names) == 0 {
		return
	}
	defer r.closeStages()
	flows := make([]*flow, len(branches))
	for i, br := range branches {
		flows[i] = &flow{branch: br, rb: rep.Branch(br.Name), head: heads[br.Name]}
		if heads != nil && heads[br.Name] == nil {
			// The sync ran and handed no head on: it failed.
			flows[i].syncFailed = "sync failed"
		}
	}
	var wg sync.WaitGroup
	for _, f := range flows {
		fctx, cancel := ctx, context.CancelFunc(func() {})
		// Under the lock: a flow started earlier may already be ending.
		r.leaseMu.Lock()
		l := leases[f.branch.Name]
		r.leaseMu.Unlock()
		if l != nil {
			fctx, cancel = l.Context(ctx)
		}
		wg.Go(func() {
			r.runFlow(fctx, f, names)
			cancel()
			r.endFlow(ctx, rep.Target, f, leases)
		})
	}
	wg.Wait()
}

// runFlow runs one branch's stages in order.
func (r *Runner) runFlow(ctx context.Context, f *flow, names []string) {
	if f.head == nil && f.syncFailed == "" && names[0] == stageBuild {
		// build alone: the fork head comes from a cheap ls-remote.
		if err := r.readForkHead(ctx, f); err != nil {
			f.syncFailed = err.Error()
			f.rb.Error, f.rb.ExitCode = r.redactor.String(err.Error()), report.ExitFailed
		}
	}
	for _, name := range names {
		s := r.stage(name)
		st, err := store.LoadBranch(ctx, r.state, f.branch.Name)
		if err != nil {
			f.rb.Error, f.rb.ExitCode = joinErr(f.rb.Error, err.Error()), report.Combine(f.rb.ExitCode, report.ExitFailed)
			return
		}
		if name != stageBuild && f.cand == nil && names[0] == name {
			// A single-stage target starts from the candidate the build
			// stage recorded, and publish from the verdict the test stage
			// recorded for exactly that candidate and test config.
			f.cand = candidateOf(st)
			if rec, ok := st.Stages[stageTest]; ok && f.cand != nil && rec.Key == r.testKey(f.cand) && name == stagePublish {
				f.result = &Result{Status: rec.Status, Candidate: f.cand.Primary}
			}
		}
		d := s.decide(ctx, f, st)
		if !d.run {
			s.skip(f, st, d)
			continue
		}
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
			case <-ctx.Done():
				f.rb.Error = joinErr(f.rb.Error, fmt.Sprintf("%s %v", name, context.Cause(ctx)))
				f.rb.ExitCode = report.Combine(f.rb.ExitCode, report.ExitFailed)
				return
			}
		}
		s.run(ctx, f, d)
		if s.slots != nil {
			<-s.slots
		}
	}
}

// readForkHead asks the fork for the branch's head.
func (r *Runner) readForkHead(ctx context.Context, f *flow) error {
	s, err := r.sharedSyncer(ctx)
	if err != nil {
		return err
	}
	head, err := s.ForkHead(ctx, f.branch.Name)
	if err != nil {
		return err
	}
	f.head = &ForkHead{Commit: head}
	return nil
}

// sharedSyncer opens the mirror once for all flows.
func (r *Runner) sharedSyncer(ctx context.Context) (*gitsync.Syncer, error) {
	r.syncerOnce.Do(func() { r.syncerShared, r.syncerErr = r.syncer(ctx) })
	return r.syncerShared, r.syncerErr
}

// closeStages ends what the stages opened for the run (BuildKit).
func (r *Runner) closeStages() {
	if r.builder != nil {
		r.builder.close()
	}
}

// record stores what a stage did with a key, with compare-and-swap so a
// runner sharing the state store never loses another's fields.
func (r *Runner) record(ctx context.Context, branch, stageName, key, status string, also func(*store.BranchState)) error {
	return store.UpdateBranch(context.WithoutCancel(ctx), r.state, branch, func(st *store.BranchState) error {
		if st.Stages == nil {
			st.Stages = map[string]store.StageRecord{}
		}
		st.Stages[stageName] = store.StageRecord{Key: key, Status: status, Time: r.opts.Now().UTC()}
		if also != nil {
			also(st)
		}
		return nil
	})
}

// hashKey makes a stage key from its inputs: a digest of their JSON.
func hashKey(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		_ = enc.Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// candidateOf rebuilds the build stage's hand-off from its record.
func candidateOf(st store.BranchState) *Candidate {
	b := st.Build
	if b.Status != report.BuildBuilt || b.Image == "" {
		return nil
	}
	c := &Candidate{Commit: b.Commit, Version: b.Version, Primary: b.Image, Images: b.Named, Platforms: b.Platforms, Log: b.Log, Artifacts: b.Artifacts}
	if c.Images == nil {
		c.Images = map[string]string{}
	}
	return c
}

// plan prints, per branch and stage, whether release would run it and why,
// from the same decisions release makes. It changes nothing.
func (r *Runner) plan(ctx context.Context, rep *report.Report, branches []config.Branch, heads map[string]*ForkHead) {
	for _, br := range branches {
		rb := rep.Branch(br.Name)
		f := &flow{branch: br, rb: rb, head: heads[br.Name]}
		if f.head == nil {
			f.syncFailed = "sync failed"
		}
		st, err := store.LoadBranch(ctx, r.state, br.Name)
		if err != nil {
			rb.Error, rb.ExitCode = joinErr(rb.Error, err.Error()), report.ExitFailed
			continue
		}
		// Once a stage would run, every later one runs on what it would
		// hand on (a new candidate, a new verdict), which a dry run cannot
		// know; asking the table about the recorded state would answer
		// for the old candidate instead.
		after := ""
		for _, s := range r.stages {
			if after != "" {
				why := fmt.Sprintf("after %s, on what it hands on", after)
				r.printf("%s: %s run: %s\n", br.Name, s.name, why)
				s.skip(f, st, decision{why: "would run " + why})
				after = s.name
				continue
			}
			d := s.decide(ctx, f, st)
			verb := "skip"
			if d.run {
				verb = "run"
			}
			r.printf("%s: %s %s: %s\n", br.Name, s.name, verb, d.why)
			switch {
			case s.name == stageBuild && d.run:
				rb.Build = &report.Build{Status: report.BuildWouldBuild, Platforms: r.cfg.Build.Platforms, Message: d.why}
				if f.head != nil && !f.head.Pending {
					rb.Build.Commit = f.head.Commit
				}
			default:
				// The build's skip hands on the recorded candidate, as
				// in release; a failed sync or a failed build hands on
				// none.
				s.skip(f, st, d)
			}
			if d.run {
				after = s.name
			}
		}
	}
}
