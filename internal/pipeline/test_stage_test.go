package pipeline_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// e2eScript is the exec runner's command in these tests: it runs the
// candidate's own binary from HYPERFORK_BINDIR and writes ginkgo-shaped
// JUnit. The file MODE beside it says how "beta" ends: pass, fail, or
// flake (fails unless rerun with HYPERFORK_FOCUS); crash writes passing
// JUnit and then exits 3, as a suite that died after its last report does.
const e2eScript = `#!/bin/sh
set -eu
mode=$(cat "$(dirname "$0")/MODE")
out=$("$HYPERFORK_BINDIR/alpha")
"$HYPERFORK_BINDIR/e2e.test" -test.v -test.run TestE2E
alpha=passed; body=""
case "$out" in *"$HYPERFORK_VERSION"*) ;; *) alpha=failed; body="<failure message=\"\" type=\"failed\">alpha printed $out</failure>";; esac
beta=passed; bbody=""
if [ "$mode" = fail ] || { [ "$mode" = flake ] && [ -z "${HYPERFORK_FOCUS:-}" ]; }; then
  beta=failed; bbody="<failure message=\"\" type=\"failed\">beta broke at 10.0.0.7:443 in namespace e2e-tests-beta-x7k2p</failure>"
fi
echo "testing $HYPERFORK_IMAGE on $HYPERFORK_BRANCH at $HYPERFORK_COMMIT"
cat > "$HYPERFORK_ARTIFACTS/junit_01.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="Kubernetes e2e suite" tests="2">
<testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="0.01"></testcase>
<testcase name="[It] alpha prints the candidate's version" classname="Kubernetes e2e suite" status="$alpha" time="6.7821e-05">$body</testcase>
<testcase name="[It] beta works" classname="Kubernetes e2e suite" status="$beta" time="0.2">$bbody</testcase>
</testsuite></testsuites>
XML
if [ "$mode" = crash ]; then echo "panic: the suite died" >&2; exit 3; fi
`

// TestReleaseTestsTheCandidate takes upstream changes through sync, build
// and the exec runner's tests on exactly the built candidate: a pass, a new
// failure (exit 4, with the log kept), and a flake that passes on the retry.
func TestReleaseTestsTheCandidate(t *testing.T) {
	addr := needBuildKit(t)
	w, _ := buildWorld(t, addr)
	mode := func(m string) { os.WriteFile(filepath.Join(w.dir, "MODE"), []byte(m), 0o644) }

	mode("pass")
	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	m := w.branch(rep, "master")
	if code != 0 || m.Test == nil || m.Test.Status != report.TestPassed || m.Test.Passed != 2 || m.Test.Failed != 0 {
		t.Fatalf("release with passing tests: exit %d, test %+v\n%s", code, m.Test, out)
	}
	// The log shows the candidate under test and its own e2e.test running.
	if b, err := os.ReadFile(m.Test.Log); err != nil || !strings.Contains(string(b), "testing "+m.Build.Image) || !strings.Contains(string(b), "e2e ran") {
		t.Fatalf("the test log %q does not show the candidate under test (%v)", m.Test.Log, err)
	}

	// It passed: published under its version and branch tags, announced once.
	if m.Publish == nil || m.Publish.Status != report.PublishPublished || len(m.Publish.Tags) != 2 || m.Publish.Image != m.Build.Image {
		t.Fatalf("publish after passing tests: %+v", m.Publish)
	}
	announced := func(event string) []notify.Message {
		var out []notify.Message
		for _, n := range w.notifications() {
			if n.Event == event {
				out = append(out, n)
			}
		}
		return out
	}
	if got := announced(notify.EventReleasePublished); len(got) != 1 || !got[0].Pushed || got[0].Image != m.Build.Image {
		t.Fatalf("published announcements: %+v", got)
	}

	// publish alone finds the recorded verdict of exactly this candidate.
	if code, rep, out := w.run("publish", "HYPERFORK_BRANCHES=master"); code != 0 ||
		w.branch(rep, "master").Publish.Status != report.PublishPublished || !strings.Contains(w.branch(rep, "master").Publish.Reason, "already") {
		t.Fatalf("publish target after release: exit %d\n%s", code, out)
	}

	// Nothing new: every stage is skipped, the result handed on, nothing sent.
	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master")
	if m := w.branch(rep, "master"); code != 0 || m.Test.Status != report.TestPassed || !strings.Contains(m.Test.Reason, "was tested") {
		t.Fatalf("no-op release: exit %d, test %+v\n%s", code, m.Test, out)
	}
	if got := announced(notify.EventReleasePublished); len(got) != 1 {
		t.Fatalf("a no-op release announced again: %d messages", len(got))
	}

	mode("fail")
	w.upstreamCommit("master", "upstream: beta change", map[string]string{"cmd/beta/more.go": "package main\n\nconst more = 1\n"})
	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master")
	m = w.branch(rep, "master")
	if code != report.ExitTests || m.Test.Status != report.TestFailed || m.Test.Failed != 1 {
		t.Fatalf("release with a failing test: exit %d, test %+v\n%s", code, m.Test, out)
	}
	if !slices.Contains(m.Test.New, "[It] beta works") {
		t.Errorf("the failure is not new: %+v", m.Test)
	}
	// Not published; the message says so, with the new failure and the log.
	if m.Publish == nil || m.Publish.Status != report.PublishNotPublished {
		t.Errorf("publish after a failing test: %+v", m.Publish)
	}
	if got := announced(notify.EventTestFailed); len(got) != 1 || got[0].Pushed || len(got[0].NewFailures) != 1 ||
		got[0].NewFailures[0].Test != "[It] beta works" || len(got[0].Attachments) != 1 {
		t.Errorf("failed announcement: %+v", got)
	}
	// The suspect range: the upstream commit merged since the last pass.
	if len(m.Test.Suspects) != 1 || len(m.Test.Suspects[0].Upstream) != 1 || m.Test.Suspects[0].Upstream[0].Subject != "upstream: beta change" {
		t.Errorf("suspects of the new failure: %+v", m.Test.Suspects)
	}
	if _, err := os.Stat(m.Test.Log); err != nil {
		t.Errorf("no log for the failed run: %v", err)
	}

	// report writes the test history as one HTML file with both runs.
	if code, _, out := w.run("report"); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, out)
	}
	if html, err := os.ReadFile(filepath.Join(w.dir, "report.html")); err != nil || !strings.Contains(string(html), "beta works") {
		t.Errorf("the HTML report lacks the failing test (%v)", err)
	} else if !strings.Contains(string(html), "upstream: beta change") || strings.Contains(string(html), "No suspect range recorded") {
		t.Errorf("the HTML report does not show the new failure's suspect commit")
	}
	if _, _, out := w.run("report"); !strings.Contains(out, "test     failed: 1 passed, 1 failed") ||
		!strings.Contains(out, "WAITS FOR YOU: 1 new test failure(s): [It] beta works; suspects: 1 upstream, 0 carry commits") ||
		!strings.Contains(out, "publish  not-published") {
		t.Errorf("report does not say what waits:\n%s", out)
	}

	mode("flake")
	junitDir := filepath.Join(w.dir, "ci-junit")
	os.MkdirAll(filepath.Join(junitDir, "master"), 0o755)
	os.WriteFile(filepath.Join(junitDir, "master", "run-stale.xml"), []byte("<testsuite/>"), 0o644)
	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master", "HYPERFORK_FORCE=1", "HYPERFORK_JUNIT="+junitDir)
	m = w.branch(rep, "master")
	if code != 0 || m.Test.Status != report.TestPassed || !slices.Contains(m.Test.Flaky, "[It] beta works") {
		t.Fatalf("release with a flake: exit %d, test %+v\n%s", code, m.Test, out)
	}
	// HYPERFORK_JUNIT holds this run's JUnit, the first pass and the
	// retry, for a CI system's own test view; nothing an earlier run left.
	copied, _ := filepath.Glob(filepath.Join(junitDir, "master", "*"))
	for i := range copied {
		copied[i] = filepath.Base(copied[i])
	}
	if want := []string{"retry-1-junit_01.xml", "run-junit_01.xml"}; !slices.Equal(copied, want) {
		t.Errorf("HYPERFORK_JUNIT/master holds %q, want %q", copied, want)
	}
	if b, err := os.ReadFile(filepath.Join(junitDir, "master", "retry-1-junit_01.xml")); err != nil || !strings.Contains(string(b), "beta works") {
		t.Errorf("the retry's JUnit copy lacks the retried spec (%v): %s", err, b)
	}

	// A command that fails after writing only passes is not a pass: an
	// error (exit 1), nothing published, the administrator told once.
	mode("crash")
	for round := 1; round <= 2; round++ {
		code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master", "HYPERFORK_FORCE=1")
		m = w.branch(rep, "master")
		if code != report.ExitFailed || m.Test.Status != report.TestError || !strings.Contains(m.Test.Reason, "records no failure") {
			t.Fatalf("round %d, a suite that crashed after passing: exit %d, test %+v\n%s", round, code, m.Test, out)
		}
		if m.Publish == nil || m.Publish.Status == report.PublishPublished {
			t.Errorf("round %d: a crashed suite's candidate was published: %+v", round, m.Publish)
		}
	}
	if got := announced(notify.EventTestError); len(got) != 1 || got[0].Pushed || !strings.Contains(got[0].Title, "could not run") ||
		!strings.Contains(got[0].Reason, "records no failure") || len(got[0].Attachments) != 1 {
		t.Errorf("test.error announcements after two crashed runs of one candidate: %+v", got)
	}
}

// TestTestLogsInS3 keeps the test logs in S3 (the real server): each run's
// log is uploaded, and only the newest logs.keep runs stay, never the
// current candidate's.
func TestTestLogsInS3(t *testing.T) {
	addr := needBuildKit(t)
	srv := s3test.Start(t)
	srv.MakeBucket("hyperfork")
	srv.Setenv(t)
	w, _ := buildWorld(t, addr)
	w.store = "s3://hyperfork/state"
	w.yaml += "logs:\n  keep: 1\n"
	logs, err := store.Open(context.Background(), "s3://hyperfork/state/logs", store.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	runs := func() map[string]bool {
		objs, err := logs.List(context.Background(), "test/master/")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, o := range objs {
			run, _, _ := strings.Cut(strings.TrimPrefix(o.Key, "test/master/"), "/")
			out[run] = true
		}
		return out
	}
	for round, change := range []bool{false, true} {
		if change {
			w.upstreamCommit("master", "upstream: alpha change", map[string]string{"cmd/alpha/more.go": "package main\n\nconst more = 1\n"})
		}
		code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
		m := w.branch(rep, "master")
		if code != 0 || m.Test.Status != report.TestPassed || !strings.HasPrefix(m.Test.Log, "s3://hyperfork/state/logs/test/master/") {
			t.Fatalf("round %d: exit %d, test %+v\n%s", round, code, m.Test, out)
		}
		got := runs()
		if len(got) != 1 {
			t.Fatalf("round %d: %d test runs kept in S3, want logs.keep = 1: %v", round, len(got), got)
		}
		for run := range got {
			if !strings.Contains(run, "-"+m.Build.Commit[:12]+"-passed") {
				t.Errorf("round %d: the kept run %s is not the current candidate's (%s)", round, run, m.Build.Commit[:12])
			}
		}
		// The announcement attaches the log, read back from S3, and links
		// it presigned: the link downloads that log, without credentials.
		key := strings.TrimPrefix(m.Test.Log, "s3://hyperfork/state/logs/")
		rc, err := logs.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(rc)
		rc.Close()
		var msg *notify.Message
		for _, n := range w.notifications() {
			if n.Event == notify.EventReleasePublished && n.ForkCommit == m.Build.Commit {
				msg = &n
			}
		}
		if msg == nil || len(msg.Attachments) != 1 || !bytes.Equal(msg.Attachments[0].Data, want) {
			t.Fatalf("round %d: the announcement does not attach the log kept in S3: %+v", round, msg)
		}
		if !strings.Contains(msg.LogURL, "X-Amz-Signature=") || !strings.HasPrefix(msg.LogURL, "http") {
			t.Fatalf("round %d: the announcement's log link is not presigned: %q", round, msg.LogURL)
		}
		resp, err := http.Get(msg.LogURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("round %d: GET of the presigned link: %s, %d bytes, want the %d bytes of the log", round, resp.Status, len(body), len(want))
		}
		if !strings.Contains(msg.Text, m.Test.Log) || strings.Contains(msg.Text, "X-Amz-Signature") {
			t.Errorf("round %d: the text names the log as %q? %s", round, m.Test.Log, msg.Text)
		}
	}
	// The HTML report links the kept run's log presigned too.
	if code, _, out := w.run("report"); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, out)
	}
	html, err := os.ReadFile(filepath.Join(w.dir, "report.html"))
	if err != nil || !strings.Contains(string(html), "X-Amz-Signature=") {
		t.Errorf("the HTML report has no presigned log link (%v)", err)
	}
}
