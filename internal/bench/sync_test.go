package bench

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// TestSyncBenchSmall runs the whole sync benchmark on a small history and
// checks that both sides' results were verified and the table printed. It
// asserts nothing about timings: those depend on the machine.
func TestSyncBenchSmall(t *testing.T) {
	gitfixture.Isolate(t)
	var out bytes.Buffer
	res, err := Sync(context.Background(), &out, SyncOptions{
		WorkDir: t.TempDir(), Commits: 500, Files: 200, NewCommits: 20, Runs: 1,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	if !res.Verified {
		t.Fatalf("results not verified: %+v", res.Timings)
	}
	// one all-branch no-op, one per branch, the merge against both plain-git ways
	if want := 3 + len(DefaultBranches); len(res.Timings) != want {
		t.Fatalf("%d scenarios, want %d: %+v", len(res.Timings), want, res.Timings)
	}
	for _, tm := range res.Timings {
		if !tm.Verified || tm.Ours <= 0 || tm.Plain <= 0 {
			t.Errorf("scenario %q: %+v", tm.Name, tm)
		}
	}
	if res.Memory.SelfMaxRSS == 0 || res.Memory.OursGit == 0 || res.Memory.PlainGit == 0 || res.Memory.PlainGitRusage == 0 {
		t.Errorf("memory not measured: %+v", res.Memory)
	}
	for _, s := range []string{"merge 20 new commits x 3 branches (git: bare, merge-tree)", "no-op, release-1.34", "RUSAGE_SELF"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
}

func TestSyncOptionsFromEnv(t *testing.T) {
	env := map[string]string{EnvCommits: "2000", EnvBranches: "master, release-1.34", EnvFiles: "x", EnvRuns: "0"}
	o, err := SyncOptionsFromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), EnvFiles) || !strings.Contains(err.Error(), EnvRuns) {
		t.Fatalf("want errors for %s and %s, got %v", EnvFiles, EnvRuns, err)
	}
	if o.Commits != 2000 || len(o.Branches) != 2 || o.Branches[1] != "release-1.34" {
		t.Fatalf("options %+v", o)
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
