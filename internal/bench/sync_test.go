package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// TestSyncBenchSmall runs the whole sync benchmark on a small history and
// checks its structure: every row has each side's time for every round,
// the headline rows compare with the fastest plain-git way against the
// target and the clone row is context, the table prints median, spread
// and ratio of medians, and the world holds a sync-only config with no
// images/. It asserts nothing about timings: those depend on the machine.
func TestSyncBenchSmall(t *testing.T) {
	gitfixture.Isolate(t)
	var out bytes.Buffer
	const rounds = 2 // both orders
	dir := t.TempDir()
	res, err := Sync(context.Background(), &out, SyncOptions{
		WorkDir: dir, Commits: 500, Files: 200, NewCommits: 20, Rounds: rounds,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	if !res.Verified {
		t.Fatalf("results not verified: %+v", res.Rows)
	}
	// one all-branch no-op, one per branch, the merge against the fastest
	// way and, for context, a clone
	if want := 3 + len(DefaultBranches); len(res.Rows) != want {
		t.Fatalf("%d rows, want %d: %+v", len(res.Rows), want, res.Rows)
	}
	table := out.String()
	for i, r := range res.Rows {
		if !r.Verified || len(r.Ours) != rounds || len(r.Plain) != rounds {
			t.Errorf("row %q: want verified with %d rounds a side: %+v", r.Name, rounds, r)
		}
		for _, s := range []Samples{r.Ours, r.Plain} {
			if s.Min() <= 0 || s.Min() > s.Median() || s.Median() > s.Max() {
				t.Errorf("row %q: times %v: want 0 < min <= median <= max", r.Name, s)
			}
		}
		if want := float64(r.Ours.Median()) / float64(r.Plain.Median()); r.Ratio() != want {
			t.Errorf("row %q: ratio %v, want the ratio of medians %v", r.Name, r.Ratio(), want)
		}
		context := i == len(res.Rows)-1
		switch {
		case context && (r.Target != 0 || r.Way != mergeCloneWay || !strings.Contains(r.Name, "context")):
			t.Errorf("last row %+v: want the clone, labelled as context, without a target", r)
		case !context && (r.Target != SyncTarget || (r.Way != noopWay && r.Way != mergeFastWay)):
			t.Errorf("row %+v: want the fastest plain-git way and target %v", r, SyncTarget)
		}
		// The row as printed: its median and spread on both sides, the
		// ratio and the target next to it.
		line := tableLine(table, r.Name+"  ")
		target := "context only"
		if !context {
			target = "target ≤ 1.3x"
		}
		for _, want := range []string{r.Way, secs(r.Ours.Median()), r.Ours.Spread(), secs(r.Plain.Median()), r.Plain.Spread(),
			fmt.Sprintf("%.2fx", r.Ratio()), target, "verified"} {
			if !strings.Contains(line, want) {
				t.Errorf("table row %q lacks %q", line, want)
			}
		}
	}
	merge, clone := res.Rows[len(res.Rows)-2], res.Rows[len(res.Rows)-1]
	if !slices.Equal(merge.Ours, clone.Ours) || slices.Equal(merge.Plain, clone.Plain) {
		t.Errorf("merge rows: want the same hyperfork runs against two plain ways: %+v, %+v", merge, clone)
	}
	for _, s := range []string{"ROUNDS", "MEDIAN", "(MIN–MAX)", "RATIO OF MEDIANS", "RUSAGE_SELF"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q", s)
		}
	}
	if res.Memory.SelfMaxRSS == 0 || res.Memory.OursGit == 0 || res.Memory.PlainGit == 0 || res.Memory.PlainGitRusage == 0 {
		t.Errorf("memory not measured: %+v", res.Memory)
	}

	// A user who only syncs has no images/ and no build section.
	cfg, err := os.ReadFile(filepath.Join(dir, "hyperfork", "branches.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "build:") || strings.Contains(string(cfg), "images") {
		t.Errorf("the sync benchmark's config has a build section:\n%s", cfg)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "images" {
			t.Errorf("the sync benchmark's world has %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tableLine returns the line of table that starts with prefix.
func tableLine(table, prefix string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestSamples(t *testing.T) {
	ms := func(ns ...int) Samples {
		var s Samples
		for _, n := range ns {
			s = append(s, time.Duration(n)*time.Millisecond)
		}
		return s
	}
	for _, c := range []struct {
		s                Samples
		median, min, max time.Duration
	}{
		{ms(30, 10, 20), 20 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond},
		{ms(40, 10, 20, 30), 25 * time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond},
		{nil, 0, 0, 0},
	} {
		if c.s.Median() != c.median || c.s.Min() != c.min || c.s.Max() != c.max {
			t.Errorf("%v: median %v min %v max %v, want %v %v %v", c.s, c.s.Median(), c.s.Min(), c.s.Max(), c.median, c.min, c.max)
		}
	}
	if got := ms(30, 10, 20).Spread(); got != "10ms–30ms" {
		t.Errorf("spread %q", got)
	}
	row := SyncRow{Ours: ms(13, 100, 12), Plain: ms(10, 11, 9), Target: SyncTarget}
	if row.Ratio() != 1.3 || !row.Met() || !strings.Contains(row.targetCell(), "target ≤ 1.3x: met") {
		t.Errorf("ratio %v, met %v, %q: want the ratio of medians 13/10 within the target", row.Ratio(), row.Met(), row.targetCell())
	}
}

func TestRoundOrder(t *testing.T) {
	// hyperfork is side 0: first in odd rounds, last in even rounds.
	for round, want := range map[int][]int{1: {0, 1}, 2: {1, 0}, 3: {0, 1}} {
		if got := roundOrder(round, 2); !slices.Equal(got, want) {
			t.Errorf("round %d: order %v, want %v", round, got, want)
		}
	}
	if got := roundOrder(2, 3); !slices.Equal(got, []int{2, 1, 0}) {
		t.Errorf("round 2 of three sides: order %v", got)
	}
}

func TestSyncOptionsFromEnv(t *testing.T) {
	env := map[string]string{EnvCommits: "2000", EnvBranches: "master, release-1.34", EnvFiles: "x", EnvRounds: "0", envRunsRenamed: "3"}
	o, err := SyncOptionsFromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), EnvFiles) || !strings.Contains(err.Error(), EnvRounds+`="0"`) || !strings.Contains(err.Error(), envRunsRenamed) {
		t.Fatalf("want errors for %s, %s and %s, got %v", EnvFiles, EnvRounds, envRunsRenamed, err)
	}
	if o.Commits != 2000 || len(o.Branches) != 2 || o.Branches[1] != "release-1.34" {
		t.Fatalf("options %+v", o)
	}
	env = map[string]string{EnvRounds: "7"}
	if o, err = SyncOptionsFromEnv(func(k string) string { return env[k] }); err != nil || o.Rounds != 7 {
		t.Fatalf("%s=7: options %+v, %v", EnvRounds, o, err)
	}
}

func TestWorkDirMustBeEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := emptyDir(dir); err != nil {
		t.Fatal(err)
	}
	_ = gitfixture.Git(t, t.TempDir(), dir, "init", "-q")
	if err := emptyDir(dir); err == nil {
		t.Fatal("a folder with content was accepted")
	}
}

// testWriter sends the benchmark's progress log to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
