package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

func testRunner(t *testing.T, extra string) *Runner {
	t.Helper()
	dir := t.TempDir()
	y := `apiVersion: hyperfork.dev/v1alpha1
kind: Pipeline
upstream: {url: "file:///nonexistent/upstream.git"}
branches:
  - name: master
  - name: release-1.0
` + extra
	p := filepath.Join(dir, "branches.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFor(p, config.Stages()...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFlowsDoNotWaitForEachOther gives master a slow test stage: release-1.0
// must pass through test and publish and finish while master is still
// testing, since each branch is its own flow.
func TestFlowsDoNotWaitForEachOther(t *testing.T) {
	r := testRunner(t, "test:\n  parallel: 2\n")
	var mu sync.Mutex
	finished := map[string]time.Time{}
	release := make(chan struct{})
	run := func(f *flow) {
		if f.branch.Name == "master" {
			<-release // master's conformance run takes hours
		}
	}
	for _, s := range r.stages {
		s.decide = func(context.Context, *flow, store.BranchState) decision { return decision{run: true, why: "test"} }
	}
	r.stage(stageTest).run = func(_ context.Context, f *flow, _ decision) { run(f) }
	r.stage(stagePublish).run = func(_ context.Context, f *flow, _ decision) {
		mu.Lock()
		finished[f.branch.Name] = time.Now()
		mu.Unlock()
		if f.branch.Name == "release-1.0" {
			close(release)
		}
	}
	rep := &report.Report{}
	heads := map[string]*ForkHead{"master": {Commit: "a"}, "release-1.0": {Commit: "b"}}
	done := make(chan struct{})
	go func() {
		r.runFlows(context.Background(), rep, r.cfg.Branches, nil, heads, []string{stageTest, stagePublish})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("release-1.0 waited for master's test stage: the flows are not independent")
	}
	if !finished["release-1.0"].Before(finished["master"]) {
		t.Fatalf("finish times %v: release-1.0 should finish first", finished)
	}
}

// TestStageSlotsBoundAStage: with test.parallel 1, two branches' test
// stages never overlap, while other stages do not wait on that bound.
func TestStageSlotsBoundAStage(t *testing.T) {
	r := testRunner(t, "")
	var mu sync.Mutex
	running, most := 0, 0
	for _, s := range r.stages {
		s.decide = func(context.Context, *flow, store.BranchState) decision { return decision{run: true} }
	}
	r.stage(stageTest).run = func(context.Context, *flow, decision) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
	}
	heads := map[string]*ForkHead{"master": {Commit: "a"}, "release-1.0": {Commit: "b"}}
	r.runFlows(context.Background(), &report.Report{}, r.cfg.Branches, nil, heads, []string{stageTest})
	if most != 1 {
		t.Fatalf("%d test stages ran at once with test.parallel 1", most)
	}
}

// TestAFinishedFlowLetsItsBranchGo runs release-1.0 through while master's
// test stage still runs: release-1.0's lease is free and its report kept
// before master ends, so a run for release-1.0 alone need not exit 5 for
// hours. master's lease stays held until its own flow ends.
func TestAFinishedFlowLetsItsBranchGo(t *testing.T) {
	r := testRunner(t, "test:\n  parallel: 2\n")
	ctx := context.Background()
	rep := &report.Report{Target: "release"}
	_, leases, releaseAll := r.leaseAll(ctx, rep, "release", r.cfg.Branches)
	defer releaseAll()
	for _, s := range r.stages {
		s.decide = func(context.Context, *flow, store.BranchState) decision { return decision{run: true, why: "test"} }
	}
	other := store.NewHolder("another-run", "release")
	var checked error
	r.stage(stageTest).run = func(ctx context.Context, f *flow, _ decision) {
		if f.branch.Name != "master" {
			return
		}
		// master's conformance run: meanwhile, release-1.0 must come free.
		deadline := time.Now().Add(10 * time.Second)
		for {
			l, err := r.state.LockBranch(ctx, "release-1.0", other)
			if err == nil {
				l.Release(ctx)
				break
			}
			if time.Now().After(deadline) {
				checked = err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		var br branchReport
		if ok, err := store.GetJSON(ctx, r.state, branchReportKey("release", "release-1.0"), &br); !ok || err != nil {
			checked = fmt.Errorf("release-1.0's lease is free but its report is not kept (%v)", err)
			return
		}
		if _, err := r.state.LockBranch(ctx, "master", other); err == nil {
			checked = errors.New("master's lease is free while its flow still runs")
		}
	}
	heads := map[string]*ForkHead{"master": {Commit: "a"}, "release-1.0": {Commit: "b"}}
	r.runFlows(ctx, rep, r.cfg.Branches, leases, heads, []string{stageTest})
	if checked != nil {
		t.Fatal(checked)
	}
	if len(leases) != 0 {
		t.Errorf("leases still held after every flow ended: %v", leases)
	}
	if l, err := r.state.LockBranch(ctx, "master", other); err != nil {
		t.Errorf("master's lease after its flow: %v", err)
	} else {
		l.Release(ctx)
	}
}
