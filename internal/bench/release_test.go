package bench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// BenchmarkRelease runs the release benchmark at its default size (or as
// the HYPERFORK_BENCH_RELEASE_* variables say) and prints its table:
//
//	go test -run '^$' -bench Release -benchtime 1x ./internal/bench/
//
// It reports each row's median per branch as a metric.
func BenchmarkRelease(b *testing.B) {
	needBuildKit(b)
	opts, err := ReleaseOptionsFromEnv(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	opts.ModuleDir = "../.."
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	for b.Loop() {
		res, err := Release(b.Context(), os.Stdout, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Verified {
			b.Fatal("results not verified")
		}
		for _, r := range res.Rows {
			b.ReportMetric(r.PerBranch().Seconds()*1000, "ms-per-branch-"+metricName(strings.ToLower(r.Name)))
		}
	}
}

// TestReleaseBenchSmall runs the whole release benchmark with two branches
// and one round and checks the result's structure: every row present with
// positive medians, and every report a no-op of every branch. It asserts
// nothing about timings.
func TestReleaseBenchSmall(t *testing.T) {
	needBuildKit(t)
	branches := []string{"master", "release-1.34"}
	var out bytes.Buffer
	res, err := Release(context.Background(), &out, ReleaseOptions{
		WorkDir: t.TempDir(), Branches: branches, Rounds: 1, ModuleDir: "../..", CI: true,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	if !res.Verified || res.Skipped != "" {
		t.Fatalf("results not verified (skipped: %q): %+v", res.Skipped, res.Rows)
	}
	want := map[string]bool{"folder/false": true, "s3/false": true, "folder/true": true, "s3/true": true}
	if len(res.Rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(res.Rows), len(want))
	}
	for _, r := range res.Rows {
		key := r.Store + "/" + map[bool]string{false: "false", true: "true"}[r.Mage]
		if !want[key] {
			t.Errorf("row %q: store %s, mage %v: unexpected or repeated", r.Name, r.Store, r.Mage)
		}
		delete(want, key)
		if len(r.Ours) != 1 || len(r.Plain) != 1 || r.Ours.Median() <= 0 || r.Plain.Median() <= 0 || r.PerBranch() <= 0 {
			t.Errorf("row %q: samples %v and %v, per branch %v: want one positive time each", r.Name, r.Ours, r.Plain, r.PerBranch())
		}
		if r.Branches != len(branches) || !r.Verified {
			t.Errorf("row %q: %d branches, verified %v", r.Name, r.Branches, r.Verified)
		}
		checkNoopReport(t, r.Name, r.Last, branches)
		if !strings.Contains(out.String(), strings.SplitN(r.Name, ",", 2)[0]) {
			t.Errorf("the table has no row for %q", r.Name)
		}
	}
	for name, s := range map[string]Samples{"start-up": res.MageStartup, "fresh compile": res.MageCompileFresh, "stable compile": res.MageCompileStable} {
		if len(s) != 1 || s[0] <= 0 {
			t.Errorf("mage %s samples %v: want one positive time", name, s)
		}
	}
	for _, st := range []string{storeFolder, storeS3} {
		if res.Warmup[st] <= 0 {
			t.Errorf("no warm-up time for state in %s", st)
		}
	}
	p := res.Profile
	if p == nil || p.Total <= 0 || len(p.Requests) == 0 || len(p.Phases) == 0 {
		t.Fatalf("profile %+v: want a total, requests and phases", p)
	}
	kinds := map[string]int{}
	for _, k := range p.Kinds {
		kinds[k.What] = k.Requests
	}
	// Every branch takes its lease and gives it back; the report is written
	// once, and each branch's part of it once (what report prints per branch).
	for what, n := range map[string]int{"lease take (PUT If-None-Match)": len(branches), "lease release (DELETE If-Match)": len(branches),
		"report write (PUT)": 1, "branch report write (PUT)": len(branches)} {
		if kinds[what] != n {
			t.Errorf("profile: %d requests of kind %q, want %d (all kinds: %v)", kinds[what], what, n, kinds)
		}
	}
	for _, r := range p.Requests {
		if r.Status >= 500 {
			t.Errorf("profile: %s %s answered %d", r.Method, r.Key, r.Status)
		}
	}
	if !strings.Contains(out.String(), "WHERE A NO-OP RELEASE WITH STATE IN S3 SPENDS ITS TIME") {
		t.Error("the profile is not printed")
	}
}

// checkNoopReport checks, apart from the benchmark's own check, that a
// report is a no-op of exactly branches: every stage up-to-date or skipped.
func checkNoopReport(t *testing.T, row string, rep *report.Report, branches []string) {
	t.Helper()
	if rep == nil || rep.ExitCode != 0 || len(rep.Branches) != len(branches) {
		t.Fatalf("row %q: report %+v: want exit code 0 and %d branches", row, rep, len(branches))
	}
	for _, b := range rep.Branches {
		if b.Sync == nil || b.Sync.Status != report.SyncUpToDate || b.Build == nil || b.Build.Status != report.BuildUpToDate ||
			b.Test == nil || b.Test.Status != report.TestPassed || !strings.Contains(b.Test.Reason, "was tested") || b.Publish == nil || b.Publish.Status != report.PublishPublished || !strings.Contains(b.Publish.Reason, "already") {
			t.Errorf("row %q, branch %s: sync %s, build %s, test %s, publish %s: not a no-op", row, b.Name, jsonOf(b.Sync), jsonOf(b.Build), jsonOf(b.Test), jsonOf(b.Publish))
		}
	}
}

// TestReleaseOptionsFromEnv reads every variable and reports every
// malformed one.
func TestReleaseOptionsFromEnv(t *testing.T) {
	env := map[string]string{EnvReleaseRounds: "3", EnvReleaseBranches: "master, release-1.34", EnvReleaseWorkDir: "/tmp/x", "CI": "true"}
	o, err := ReleaseOptionsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.Rounds != 3 || strings.Join(o.Branches, ",") != "master,release-1.34" || o.WorkDir != "/tmp/x" || !o.CI {
		t.Errorf("options %+v", o)
	}
	env = map[string]string{EnvReleaseRounds: "zero"}
	if _, err := ReleaseOptionsFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), EnvReleaseRounds) {
		t.Errorf("a malformed %s gave %v", EnvReleaseRounds, err)
	}
	d, err := ReleaseOptions{}.withDefaults()
	if err != nil || d.Rounds != DefaultReleaseRounds || len(d.Branches) != 4 {
		t.Errorf("defaults %+v, %v", d, err)
	}
	if _, err := (ReleaseOptions{Branches: []string{"a", "a"}}).withDefaults(); err == nil {
		t.Error("a branch listed twice was accepted")
	}
}

// TestReleasePhases merges a made-up request sequence into phases: runs of
// one kind with short gaps are one phase, longer gaps are idle phases.
func TestReleasePhases(t *testing.T) {
	m := time.Millisecond
	reqs := []ReleaseRequest{
		{What: "lease take", Start: 5 * m, End: 6 * m},
		{What: "lease take", Start: 6*m + m/2, End: 7 * m},
		{What: "branch record read", Start: 30 * m, End: 31 * m},
		{What: "branch record write", Start: 31 * m, End: 33 * m},
	}
	got, kinds := phases(reqs, 40*m)
	want := []ReleasePhase{
		{Start: 0, End: 5 * m},
		{What: "lease take", Start: 5 * m, End: 7 * m, Requests: 2},
		{Start: 7 * m, End: 30 * m},
		{What: "branch record read", Start: 30 * m, End: 31 * m, Requests: 1},
		{What: "branch record write", Start: 31 * m, End: 33 * m, Requests: 1},
		{Start: 33 * m, End: 40 * m},
	}
	if len(got) != len(want) {
		t.Fatalf("phases %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("phase %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(kinds) != 3 || kinds[0].Requests != 2 || kinds[0].Busy != 3*m/2 {
		t.Errorf("kinds %+v", kinds)
	}
}

// TestReleaseRequestKind names the state store's requests by their keys.
func TestReleaseRequestKind(t *testing.T) {
	for _, c := range []struct{ method, key, want string }{
		{"PUT", "state/locks/branches/master.json", "lease take (PUT If-None-Match)"},
		{"DELETE", "state/locks/branches/master.json", "lease release (DELETE If-Match)"},
		{"GET", "state/branches/master/state.json", "branch record read (GET)"},
		{"PUT", "state/branches/master/state.json", "branch record write (PUT If-Match)"},
		{"PUT", "state/reports/release.json", "report write (PUT)"},
	} {
		if got := requestKind(c.method, c.key); got != c.want {
			t.Errorf("requestKind(%s, %s) = %q, want %q", c.method, c.key, got, c.want)
		}
	}
}
