package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
)

func TestSyncMergesSeveralBranches(t *testing.T) {
	w := newWorld(t)
	oldMaster, oldRelease := w.forkHead("master"), w.forkHead("release-1.0")
	w.upstreamCommit("master", "upstream: change b", map[string]string{"pkg/b.go": "package b\n\nconst B = 2\n"})
	upHead := w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	w.upstreamCommit("release-1.0", "upstream: backport", map[string]string{"docs/x.md": "y\n"})

	code, rep, out := w.run("sync")
	if code != report.ExitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	m := w.branch(rep, "master")
	if m.Sync.Status != report.SyncMerged || m.Sync.MergedCommits != 2 || m.Sync.UpstreamCommit != upHead {
		t.Fatalf("master: %+v", m.Sync)
	}
	if got := w.forkHead("master"); got != m.Sync.ForkCommit || got == oldMaster {
		t.Fatalf("fork master %s, report %s, before %s", got, m.Sync.ForkCommit, oldMaster)
	}
	parents := strings.Fields(gitfixture.Git(t, w.fork.Home, w.forkBare, "rev-list", "--parents", "-n1", "master"))
	if len(parents) != 3 || parents[1] != oldMaster || parents[2] != upHead {
		t.Fatalf("merge commit parents %v, want fork %s then upstream %s", parents, oldMaster, upHead)
	}
	msg := gitfixture.Git(t, w.fork.Home, w.forkBare, "log", "-1", "--format=%B", "master")
	if !strings.Contains(msg, "2 commits") || !strings.Contains(msg, upHead[:12]) {
		t.Fatalf("merge message does not name the range and count:\n%s", msg)
	}
	// Both the carry and upstream's change are in the merged tree.
	for _, p := range []string{"company/patch.go", "pkg/c.go"} {
		gitfixture.Git(t, w.fork.Home, w.forkBare, "cat-file", "-e", "master:"+p)
	}
	if r := w.branch(rep, "release-1.0"); r.Sync.Status != report.SyncMerged || w.forkHead("release-1.0") == oldRelease {
		t.Fatalf("release-1.0: %+v", r.Sync)
	}

	// Nothing new: up-to-date, and not one object fetched.
	w.srv.ResetRequests()
	code, rep, out = w.run("sync")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncUpToDate || w.branch(rep, "release-1.0").Sync.Status != report.SyncUpToDate {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if n := w.srv.Requests(gitserver.Fetch) + w.srv.Requests(gitserver.ReceivePack); n != 0 {
		t.Fatalf("an up-to-date run fetched or pushed %d times", n)
	}
}

func TestConflictNextToCleanBranchAndNoRepeatNotification(t *testing.T) {
	w := newWorld(t)
	carry := w.forkCommit("master", "carry: tune A", map[string]string{"pkg/a.go": "package a\n\nconst A = 100 // company\n"})
	upc := w.upstreamCommit("master", "upstream: bump A", map[string]string{"pkg/a.go": "package a\n\nconst A = 2\n"})
	w.upstreamCommit("release-1.0", "upstream: docs", map[string]string{"docs/x.md": "z\n"})
	before := w.forkHead("master")
	// A signed webhook receiver next to the file channel.
	var mu sync.Mutex
	var hooks []notify.Message
	recv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Header.Get(notify.HeaderSignature) != notify.Sign([]byte("hook-secret-1234"), body) {
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooks = append(hooks, m)
		mu.Unlock()
	}))
	defer recv.Close()
	w.env["HOOK_URL"], w.env["HOOK_SECRET"] = recv.URL+"/hooks/hyperfork", "hook-secret-1234"
	w.notify = "  - type: webhook\n    urlEnv: HOOK_URL\n    secretEnv: HOOK_SECRET\n"

	code, rep, out := w.run("sync")
	if code != report.ExitConflict {
		t.Fatalf("exit %d, want 3\n%s", code, out)
	}
	mu.Lock()
	if len(hooks) != 1 || hooks[0].Event != notify.EventSyncConflict || hooks[0].Sync == nil || hooks[0].Sync.Conflicts[0].Path != "pkg/a.go" {
		t.Fatalf("webhook deliveries: %+v", hooks)
	}
	mu.Unlock()
	m := w.branch(rep, "master")
	if m.Sync.Status != report.SyncConflict || len(m.Sync.Conflicts) != 1 {
		t.Fatalf("master: %+v", m.Sync)
	}
	c := m.Sync.Conflicts[0]
	if c.Path != "pkg/a.go" || c.Kind != "content" {
		t.Fatalf("conflict %+v", c)
	}
	if len(c.Upstream) != 1 || c.Upstream[0].Hash != upc || len(c.Carries) != 1 || c.Carries[0].Hash != carry || c.Carries[0].Subject != "carry: tune A" {
		t.Fatalf("commits per side: %+v", c)
	}
	if !strings.Contains(m.Sync.Resolution, "git merge") || !strings.Contains(m.Sync.Resolution, upc) || strings.Contains(m.Sync.Resolution, "<") && strings.Contains(m.Sync.Resolution, ">") && !strings.Contains(m.Sync.Resolution, "<<<<<<<") {
		t.Fatalf("resolution:\n%s", m.Sync.Resolution)
	}
	if w.forkHead("master") != before {
		t.Fatal("the fork branch moved on a conflict")
	}
	if r := w.branch(rep, "release-1.0"); r.Sync.Status != report.SyncMerged {
		t.Fatalf("the clean branch next to the conflict: %+v", r.Sync)
	}
	if !strings.Contains(out, "pkg/a.go") || !strings.Contains(out, "git push origin") {
		t.Fatalf("stdout lacks the conflict report:\n%s", out)
	}
	msgs := w.notifications()
	if len(msgs) != 1 || msgs[0].Event != "sync.conflict" || !strings.Contains(msgs[0].Text, "pkg/a.go") || !strings.Contains(msgs[0].Text, carry[:12]) {
		t.Fatalf("notifications: %+v", msgs)
	}

	// The same conflict again: still exit 3 and in the report, not notified twice.
	code, rep, _ = w.run("sync")
	if code != report.ExitConflict || w.branch(rep, "master").Sync.Status != report.SyncConflict {
		t.Fatalf("second run exit %d", code)
	}
	if n := len(w.notifications()); n != 1 {
		t.Fatalf("%d notifications after the repeat, want 1", n)
	}
	mu.Lock()
	if len(hooks) != 1 {
		t.Fatalf("%d webhook deliveries after the repeat, want 1", len(hooks))
	}
	mu.Unlock()
	if w.forkHead("master") != before {
		t.Fatal("the fork branch moved on the repeat")
	}
	// status keeps showing the conflict.
	_, rep, out = w.run("status")
	if w.branch(rep, "master").Sync.Status != report.SyncConflict || !strings.Contains(out, "conflict") {
		t.Fatalf("status:\n%s", out)
	}
	// report says, per branch, what waits for a person: the conflict with
	// the commands that resolve it; the clean branch waits for nothing.
	_, _, out = w.run("report")
	if !strings.Contains(out, "master: sync conflict") || !strings.Contains(out, "WAITS FOR YOU: merge conflict in pkg/a.go; resolve it with:") ||
		!strings.Contains(out, "git push origin") || strings.Count(out, "WAITS FOR YOU") != 1 || !strings.Contains(out, "release-1.0: sync up-to-date") {
		t.Fatalf("report:\n%s", out)
	}
	// One branch's later run does not hide the other's last one.
	if code, _, out := w.run("sync", "HYPERFORK_BRANCHES=release-1.0"); code != 0 {
		t.Fatalf("sync release-1.0: exit %d\n%s", code, out)
	}
	if _, _, out = w.run("report"); !strings.Contains(out, "last run: sync") || !strings.Contains(out, "WAITS FOR YOU: merge conflict in pkg/a.go") {
		t.Fatalf("report after a run of the other branch:\n%s", out)
	}
}

func TestResolutionCommandsFinishTheMerge(t *testing.T) {
	w := newWorld(t)
	w.forkCommit("master", "carry: tune A", map[string]string{"pkg/a.go": "package a\n\nconst A = 100\n"})
	w.upstreamCommit("master", "upstream: bump A", map[string]string{"pkg/a.go": "package a\n\nconst A = 2\n"})
	code, rep, out := w.run("sync", "HYPERFORK_BRANCHES=master")
	if code != report.ExitConflict {
		t.Fatalf("exit %d\n%s", code, out)
	}
	steps := splitSteps(t, w.branch(rep, "master").Sync.Resolution)

	// A person's shell: their own git identity and credentials.
	home := t.TempDir()
	env := append(gitfixture.Env(home), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic "+basic(tokenUser, token))
	work := t.TempDir()
	sh := func(script string, mayFail bool) string {
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir, cmd.Env = work, env
		b, err := cmd.CombinedOutput()
		if err != nil && !mayFail {
			t.Fatalf("%v\n%s\n%s", err, script, b)
		}
		return string(b)
	}
	// Step 1 ends with the merge stopping on conflicts.
	sh(steps[0], true)
	clone := filepath.Join(work, "hyperfork-merge-master")
	if err := os.WriteFile(filepath.Join(clone, "pkg/a.go"), []byte("package a\n\nconst A = 102\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh("cd hyperfork-merge-master\n"+steps[2], false)

	head := w.forkHead("master")
	if n := len(strings.Fields(gitfixture.Git(t, w.fork.Home, w.forkBare, "rev-list", "--parents", "-n1", head))); n != 3 {
		t.Fatalf("the fork head is not a merge commit")
	}
	if got := gitfixture.Git(t, w.fork.Home, w.forkBare, "show", "master:pkg/a.go"); !strings.Contains(got, "102") {
		t.Fatalf("pkg/a.go on the fork: %s", got)
	}
	code, rep, _ = w.run("sync", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncUpToDate {
		t.Fatalf("after the resolution: exit %d %+v", code, w.branch(rep, "master").Sync)
	}
}

// splitSteps cuts the resolution text at its "# 1.", "# 2.", "# 3." headings.
func splitSteps(t *testing.T, res string) []string {
	t.Helper()
	idx := regexp.MustCompile(`(?m)^# [0-9]\. `).FindAllStringIndex(res, -1)
	var steps []string
	for i, loc := range idx {
		end := len(res)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		steps = append(steps, res[loc[0]:end])
	}
	if len(steps) != 3 {
		t.Fatalf("resolution has %d steps, want 3:\n%s", len(steps), res)
	}
	return steps
}

func TestLeaseRefusesWhenForkMovesDuringRun(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	var once sync.Once
	var theirs string
	w.srv.BeforeReceivePack(func() {
		once.Do(func() {
			// Someone else pushes to the fork between our ls-remote and our push.
			other := gitfixture.Clone(t, w.forkBare, filepath.Join(w.dir, "other"))
			theirs = other.Commit(t, "someone else's commit", map[string]string{"other.txt": "x\n"})
			other.Push(t, w.forkBare, "master")
		})
	})
	// The lease refuses the first push; the sync reads the new head, merges
	// again on top of it and pushes: their commit is kept, never forced out.
	code, rep, out := w.run("sync", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("exit %d, want the merge redone on the moved fork\n%s", code, out)
	}
	if theirs == "" {
		t.Fatal("the other push never happened")
	}
	gitfixture.Git(t, w.fork.Home, w.forkBare, "merge-base", "--is-ancestor", theirs, "master")
}

func TestUnreachableUpstreamAndWrongCredentials(t *testing.T) {
	w := newWorld(t)
	before := w.forkHead("master")
	// Port 1: nothing listens there, and unlike a freed ephemeral port no
	// other test server can take it meanwhile.
	w.upURL = "http://127.0.0.1:1/upstream.git"
	code, rep, out := w.run("sync")
	if code != report.ExitFailed || !strings.Contains(w.branch(rep, "master").Error, "unreachable") {
		t.Fatalf("unreachable: exit %d\n%s", code, out)
	}
	// The same fault on the next scheduled run is not notified again.
	if code, _, _ = w.run("sync"); code != report.ExitFailed {
		t.Fatalf("second unreachable run: exit %d", code)
	}
	if n := len(w.notifications()); n != 2 {
		t.Fatalf("%d notifications for two branches failing twice the same way, want 2", n)
	}
	if w.forkHead("master") != before {
		t.Fatal("the fork moved")
	}

	w = newWorld(t)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	before = w.forkHead("master")
	w.env["FORK_TOKEN"] = "wrong-token-31415926"
	code, rep, out = w.run("sync")
	e := w.branch(rep, "master").Error
	if code != report.ExitFailed || !strings.Contains(e, "authentication failed") || !strings.Contains(e, "tokenEnv") {
		t.Fatalf("wrong credentials: exit %d: %s\n%s", code, e, out)
	}
	if strings.Contains(out, "wrong-token-31415926") || strings.Contains(e, "wrong-token") {
		t.Fatal("the wrong token was printed")
	}
	if w.forkHead("master") != before {
		t.Fatal("the fork moved although the push could not authenticate")
	}
	for _, m := range w.notifications() {
		if strings.Contains(m.Text, "wrong-token") {
			t.Fatal("the token reached a notification")
		}
	}
}

func TestMissingUpstreamBranchAndFFOnly(t *testing.T) {
	w := newWorld(t)
	w.forkCommit("master", "carry", map[string]string{"company/x.go": "package company\n"})
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	before := w.forkHead("master")
	w.branches = "branches:\n  - name: master\n    strategy: ff-only\n  - name: release-1.0\n    upstream: release-9.9\n"
	code, rep, out := w.run("sync")
	if code != report.ExitFailed { // 1 outranks 3
		t.Fatalf("exit %d\n%s", code, out)
	}
	if r := w.branch(rep, "release-1.0"); r.Sync.Status != report.SyncError || !strings.Contains(r.Error, "release-9.9") {
		t.Fatalf("missing upstream branch: %+v %s", r.Sync, r.Error)
	}
	m := w.branch(rep, "master")
	if m.Sync.Status != report.SyncConflict || !strings.Contains(m.Sync.Message, "ff-only") {
		t.Fatalf("ff-only: %+v", m.Sync)
	}
	if w.forkHead("master") != before {
		t.Fatal("ff-only moved the fork")
	}
}

func TestEmbeddedForkCreatedOnFirstRun(t *testing.T) {
	w := newWorld(t)
	w.forkURL = ""
	w.upURL = "file://" + w.upBare // the file:// transport, next to smart HTTP elsewhere
	code, rep, out := w.run("sync")
	if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncCreated {
		t.Fatalf("exit %d\n%s", code, out)
	}
	embedded := filepath.Join(w.dir, "state", "fork.git")
	got := gitfixture.Git(t, w.fork.Home, embedded, "rev-parse", "refs/heads/release-1.0")
	want := gitfixture.Git(t, w.fork.Home, w.upBare, "rev-parse", "refs/heads/release-1.0")
	if got != want {
		t.Fatalf("embedded fork release-1.0 %s, upstream %s", got, want)
	}
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	if code, rep, out = w.run("sync"); code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
}

func TestPlanPredictsWithoutPushing(t *testing.T) {
	w := newWorld(t)
	w.forkCommit("master", "carry: tune A", map[string]string{"pkg/a.go": "package a\n\nconst A = 100\n"})
	w.upstreamCommit("master", "upstream: bump A", map[string]string{"pkg/a.go": "package a\n\nconst A = 2\n"})
	w.upstreamCommit("release-1.0", "upstream: docs", map[string]string{"docs/x.md": "z\n"})
	m0, r0 := w.forkHead("master"), w.forkHead("release-1.0")
	w.srv.ResetRequests()
	code, rep, out := w.run("plan")
	if code != report.ExitConflict {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if m := w.branch(rep, "master"); m.Sync.Status != report.SyncConflict || m.Sync.Conflicts[0].Path != "pkg/a.go" {
		t.Fatalf("master: %+v", m.Sync)
	}
	if r := w.branch(rep, "release-1.0"); r.Sync.Status != report.SyncMerged || r.Build == nil || r.Build.Status != report.BuildWouldBuild {
		t.Fatalf("release-1.0: %+v %+v", r.Sync, r.Build)
	}
	if w.forkHead("master") != m0 || w.forkHead("release-1.0") != r0 || w.srv.Requests(gitserver.ReceivePack) != 0 {
		t.Fatal("plan pushed")
	}
	if len(w.notifications()) != 0 {
		t.Fatal("plan notified")
	}
	// Every branch and stage gets a line: run or skip, and why.
	for _, want := range []string{
		"release-1.0: build run: the sync will make a new merge commit",
		"release-1.0: test run: after build, on what it hands on",
		"release-1.0: publish run: after test, on what it hands on",
		"master: build run: ", "master: test run: after build", "master: publish run: after test",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not say %q:\n%s", want, out)
		}
	}
	if r := w.branch(rep, "release-1.0"); r.Test == nil || r.Test.Status != report.TestSkipped || r.Publish == nil || r.Publish.Status != report.PublishSkipped {
		t.Errorf("release-1.0's test and publish in the report: %+v %+v", r.Test, r.Publish)
	}
}

func TestStatusShowsCarriesAlreadyUpstream(t *testing.T) {
	w := newWorld(t)
	// The fork carries a fix that upstream later takes as its own commit.
	fix := map[string]string{"pkg/b.go": "package b\n\nconst B = 3\n"}
	w.forkCommit("master", "carry: fix B", fix)
	w.upstreamCommit("master", "upstream: fix B (backport of the company fix)", fix)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	code, rep, out := w.run("status", "HYPERFORK_BRANCHES=master")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "candidate to drop") || !strings.Contains(out, "carry: fix B") {
		t.Fatalf("status:\n%s", out)
	}
	fields := strings.Fields(strings.Split(out, "\n")[1])
	// BRANCH UPSTREAM UPHEAD FORKHEAD BEHIND CARRIES UPSTREAMED
	if fields[0] != "master" || fields[4] != "2" || fields[5] != "2" || fields[6] != "1" {
		t.Fatalf("status row %v\n%s", fields, out)
	}
	_ = rep
}

func TestLockedBranchExitsFive(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("release-1.0", "upstream: docs", map[string]string{"docs/x.md": "z\n"})
	st, err := store.NewDir(filepath.Join(w.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	lease, err := st.LockBranch(context.Background(), "master", store.NewHolder("other-run", "release"))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())
	code, rep, out := w.run("sync")
	if code != report.ExitLocked {
		t.Fatalf("exit %d, want 5\n%s", code, out)
	}
	// Exit 5 names the holder: its run, target, host, pid and since when.
	host, _ := os.Hostname()
	m := w.branch(rep, "master")
	for _, want := range []string{"other-run", "target release", host, fmt.Sprintf("pid %d", os.Getpid()), "since"} {
		if m.ExitCode != report.ExitLocked || !strings.Contains(m.Error, want) {
			t.Fatalf("master's lock error does not name %q: %+v", want, m)
		}
	}
	if r := w.branch(rep, "release-1.0"); r.Sync == nil || r.Sync.Status != report.SyncMerged {
		t.Fatalf("the free branch did not sync: %+v", r)
	}
	// The locked branch's last run is still the one that did the work
	// (here: none), not this refusal; the free branch's is this sync.
	if _, _, out := w.run("report"); !strings.Contains(out, "master: no run yet") || !strings.Contains(out, "release-1.0: sync merged") {
		t.Fatalf("report after a refused branch:\n%s", out)
	}
}

func TestReportAndPrune(t *testing.T) {
	w := newWorld(t)
	if code, _, out := w.run("report"); code != report.ExitFailed || !strings.Contains(out, "no run report") {
		t.Fatalf("report before any run: exit %d\n%s", code, out)
	}
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	if code, _, out := w.run("sync"); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, out)
	}
	code, _, out := w.run("report")
	if code != 0 || !strings.Contains(out, "last run: sync") || !strings.Contains(out, "master: sync merged") {
		t.Fatalf("report: exit %d\n%s", code, out)
	}

	state := filepath.Join(w.dir, "state")
	gone := filepath.Join(state, "src", "removed-branch")
	os.MkdirAll(gone, 0o755)
	logs := filepath.Join(state, "logs", "build", "master")
	os.MkdirAll(logs, 0o755)
	for i := 0; i < 12; i++ {
		p := filepath.Join(logs, fmt.Sprintf("%02d.log", i))
		os.WriteFile(p, []byte("log\n"), 0o644)
		when := time.Unix(int64(1700000000+i), 0)
		os.Chtimes(p, when, when)
	}
	// What a git killed mid-fetch leaves in the mirror: a temporary pack and
	// a ref lock, hours old, and one a running git may still be writing.
	mirror := filepath.Join(state, "mirror.git")
	stalePack := filepath.Join(mirror, "objects", "pack", "tmp_pack_Ab12Cd")
	staleLock := filepath.Join(mirror, "packed-refs.lock")
	youngPack := filepath.Join(mirror, "objects", "pack", "tmp_pack_Ef34Gh")
	for _, p := range []string{stalePack, staleLock, youngPack} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-3 * time.Hour)
	os.Chtimes(stalePack, old, old)
	os.Chtimes(staleLock, old, old)
	// Delivery records in the state store: one from last spring goes, one
	// from today stays.
	deliveries := filepath.Join(state, "notify", "deliveries")
	os.MkdirAll(deliveries, 0o755)
	oldRecord, newRecord := filepath.Join(deliveries, "old.json"), filepath.Join(deliveries, "new.json")
	for _, p := range []string{oldRecord, newRecord} {
		os.WriteFile(p, []byte(`{"channels":{"file":"2026-03-01T00:00:00Z"}}`), 0o644)
	}
	spring := time.Now().Add(-100 * 24 * time.Hour)
	os.Chtimes(oldRecord, spring, spring)
	code, _, out = w.run("prune")
	if code != 0 {
		t.Fatalf("prune: exit %d\n%s", code, out)
	}
	for _, p := range []string{stalePack, staleLock} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("prune kept the stale %s (%v)", p, err)
		}
	}
	if _, err := os.Stat(oldRecord); !os.IsNotExist(err) {
		t.Errorf("prune kept a 100-day-old delivery record (%v)", err)
	}
	if _, err := os.Stat(newRecord); err != nil {
		t.Errorf("prune removed today's delivery record: %v", err)
	}
	if _, err := os.Stat(youngPack); err != nil {
		t.Errorf("prune removed %s, young enough to be a running git's: %v", youngPack, err)
	}
	os.Remove(youngPack)
	if _, err := os.Stat(gone); err == nil {
		t.Fatal("prune kept the folder of a branch no longer configured")
	}
	left, _ := filepath.Glob(filepath.Join(logs, "*.log"))
	if len(left) != 10 || filepath.Base(left[0]) != "02.log" {
		t.Fatalf("logs left after prune: %v, want the 10 newest", left)
	}
	loose := gitfixture.Git(t, w.fork.Home, filepath.Join(state, "mirror.git"), "count-objects", "-v")
	if !strings.Contains(loose, "count: 0\n") {
		t.Fatalf("the mirror was not repacked:\n%s", loose)
	}
}
