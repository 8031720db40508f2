package pipeline_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
)

// TestSyncOnlyConfigInAnEmptyFolder starts as a new user does: a folder
// holding nothing but the branches.yaml they wrote, with no build section
// and no images/. Every target that does not build must run.
func TestSyncOnlyConfigInAnEmptyFolder(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	home := t.TempDir()
	cfg := `apiVersion: hyperfork.dev/v1alpha1
kind: Pipeline
upstream:
  url: ` + w.upURL + `
  tokenEnv: UP_TOKEN
fork:
  url: ` + w.forkURL + `
  tokenEnv: FORK_TOKEN
branches:
  - name: master
`
	path := filepath.Join(home, "branches.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HYPERFORK_CONFIG": path, "UP_TOKEN": token, "FORK_TOKEN": token, "HYPERFORK_HTML": filepath.Join(home, "report.html")}
	for _, target := range []string{"plan", "sync", "status", "report"} {
		var out bytes.Buffer
		code, err := pipeline.Main(context.Background(), target, pipeline.Env{
			Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out})
		if code != 0 {
			t.Fatalf("%s in a folder with only branches.yaml: exit %d: %v\n%s", target, code, err, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(home, "images")); err == nil {
		t.Error("a run made an images/ folder")
	}
	if w.forkHead("master") == "" {
		t.Fatal("no fork head")
	}
}

// TestUnknownBranchWritesNothing: HYPERFORK_BRANCHES naming no configured
// branch is a usage error that says which branches exist, and no state is
// written for a run that did nothing.
func TestUnknownBranchWritesNothing(t *testing.T) {
	w := newWorld(t)
	code, _, out := w.run("sync", "HYPERFORK_BRANCHES=nosuch")
	if code != report.ExitConfig {
		t.Fatalf("exit %d, want 2\n%s", code, out)
	}
	if !strings.Contains(out, "master") || !strings.Contains(out, "release-1.0") {
		t.Errorf("the message does not list the configured branches:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "state", "reports")); err == nil {
		t.Error("a usage error wrote reports into the state folder")
	}
}

// TestReportPathIsAFolder: HYPERFORK_REPORT naming a folder is an error
// that says what to write, and leaves no temporary file behind.
func TestReportPathIsAFolder(t *testing.T) {
	w := newWorld(t)
	dir := filepath.Join(w.dir, "out")
	os.MkdirAll(dir, 0o755)
	env := map[string]string{"HYPERFORK_CONFIG": w.config(), "HYPERFORK_REPORT": dir}
	for k, v := range w.env {
		env[k] = v
	}
	var out bytes.Buffer
	code, _ := pipeline.Main(context.Background(), "sync", pipeline.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out})
	if code == 0 || !strings.Contains(out.String(), "is a folder") {
		t.Errorf("exit %d; want a failure saying the report path is a folder:\n%s", code, out.String())
	}
	left, _ := filepath.Glob(filepath.Join(w.dir, "*.tmp*"))
	inside, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left)+len(inside) > 0 {
		t.Errorf("temporary files left: %v %v", left, inside)
	}
}

// TestSameFailureOnEveryBranchIsSaidOnce: an unreachable upstream fails
// every branch the same way; its long reason is printed once, with one
// short line per branch.
func TestSameFailureOnEveryBranchIsSaidOnce(t *testing.T) {
	w := newWorld(t)
	w.branches = "branches:\n  - name: master\n  - name: release-1.0\n  - name: release-1.1\n    upstream: release-1.0\n"
	w.upURL = "http://127.0.0.1:1/closed.git"
	code, _, out := w.run("sync")
	if code != report.ExitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	// Once where the sync reports it, once in the closing summary. curl
	// words it one of two ways, by version; either must be there, or the
	// count below checks nothing.
	reason := "Couldn't connect to server"
	if !strings.Contains(out, reason) {
		reason = "Connection refused"
	}
	if n := strings.Count(out, reason); n == 0 || n > 2 {
		t.Errorf("git's reason (%q) is printed %d times; want it once, plus once in the summary:\n%s", reason, n, out)
	}
	for _, b := range []string{"master", "release-1.0", "release-1.1"} {
		if !strings.Contains(out, b+":") && !strings.Contains(out, b+",") {
			t.Errorf("no line for %s:\n%s", b, out)
		}
	}
}

// TestReportShowsTheLastRunOfWork: report prints the last sync, build or
// release, not a status run that came after it.
func TestReportShowsTheLastRunOfWork(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	if code, _, out := w.run("sync"); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, out)
	}
	if code, _, out := w.run("status"); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	code, _, out := w.run("report")
	if code != 0 || !strings.Contains(out, "last run: sync") {
		t.Fatalf("report after sync then status: exit %d\n%s", code, out)
	}
}

// TestBranchNamesThatFoldTogether: branches rel/1 and rel_1 once mapped to
// one lock and one folder, so rel_1 always exited 5. Both must sync.
func TestBranchNamesThatFoldTogether(t *testing.T) {
	w := newWorld(t)
	w.up.Checkout(t, "master")
	w.up.Branch(t, "rel/1")
	w.up.Branch(t, "rel_1")
	w.up.Push(t, w.upBare, "rel/1", "rel_1")
	w.branches = "branches:\n  - name: rel/1\n  - name: rel_1\n"
	for round := range 2 {
		code, rep, out := w.run("sync")
		if code != 0 {
			t.Fatalf("round %d: exit %d\n%s", round, code, out)
		}
		for _, b := range []string{"rel/1", "rel_1"} {
			if rb := w.branch(rep, b); rb.ExitCode != 0 || rb.Sync == nil {
				t.Fatalf("round %d: %s: %+v", round, b, rb)
			}
		}
	}
}
