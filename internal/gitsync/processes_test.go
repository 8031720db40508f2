package gitsync

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
)

// gitLog puts a git first on PATH that appends its arguments to a file,
// one line per process, and then runs the real git; it returns a function
// that reads the lines of the processes started in dir (every command of
// a Git starts with -C dir). PATH is one of the variables internal/exec
// passes to children, so the wrapper is what gitsync starts.
func gitLog(t *testing.T, dir string) func() []string {
	t.Helper()
	real, err := osexec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	log := filepath.Join(bin, "calls.log")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + log + "'\nexec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		b, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var calls []string
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "-C "+dir+" "); ok {
				calls = append(calls, rest)
			}
		}
		return calls
	}
}

// threeBranches adds release-1.1 to the world, with a carry on the fork,
// and returns the world's three branches.
func threeBranches(t *testing.T, w *syncWorld) []Branch {
	t.Helper()
	w.up.Run(t, "branch", "-f", "release-1.1", "master")
	w.up.Push(t, w.upBare, "release-1.1")
	w.fork.Run(t, "fetch", "-q", w.upBare, "release-1.1")
	w.fork.Run(t, "checkout", "-q", "-b", "release-1.1", "FETCH_HEAD")
	w.fork.Commit(t, "carry: company patch on release-1.1", map[string]string{"company/r11.go": "package company\n"})
	w.fork.Push(t, w.forkBare, "release-1.1")
	w.fork.Checkout(t, "master")
	return []Branch{{Name: "master", Upstream: "master"}, {Name: "release-1.0", Upstream: "release-1.0"}, {Name: "release-1.1", Upstream: "release-1.1"}}
}

// syncAll syncs branches with a new Syncer and fails unless every branch
// ends with status want.
func syncAll(t *testing.T, w *syncWorld, branches []Branch, want string) {
	t.Helper()
	for _, o := range w.syncer(w.options()).Sync(context.Background(), branches, false) {
		if o.Err != nil || o.Sync.Status != want {
			t.Fatalf("%s: %+v %v", o.Branch, o.Sync, o.Err)
		}
	}
}

func count(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// A scheduled run with nothing new upstream costs what plain git needs to
// answer the same question (ls-remote of both remotes, one ancestry check
// per branch) and one process more, which reads the mirror's tags to
// compare them with upstream's.
func TestNoOpSyncStartsFewGitProcesses(t *testing.T) {
	w := newSyncWorld(t)
	branches := threeBranches(t, w)
	syncAll(t, w, branches, report.SyncUpToDate) // fills the mirror

	calls := gitLog(t, w.mirror)
	syncAll(t, w, branches, report.SyncUpToDate)
	got := calls()
	plain := 2 + len(branches)
	if len(got) > plain+1 || count(got, "fetch") > 0 {
		t.Errorf("a no-op sync of %d branches started %d git processes, want at most %d (plain git needs %d) and no fetch:\n%s",
			len(branches), len(got), plain+1, plain, strings.Join(got, "\n"))
	}
}

// A merge asks each question once: no presence check per commit, one
// count that also tells a fast-forward, one ref update for every branch.
func TestMergeSyncStartsFewGitProcesses(t *testing.T) {
	w := newSyncWorld(t)
	branches := threeBranches(t, w)
	syncAll(t, w, branches, report.SyncUpToDate)
	for _, b := range branches {
		w.upstreamCommit(b.Upstream, "upstream: new on "+b.Name, map[string]string{"pkg/" + b.Name + ".go": "package pkg\n"})
	}

	calls := gitLog(t, w.mirror)
	syncAll(t, w, branches, report.SyncMerged)
	got := calls()
	// ls-remote ×2, the mirror's tags, cat-file --batch-check, fetch and
	// update-ref once; per branch the ancestry check, rev-list --count,
	// merge-base, merge-tree, commit-tree and push.
	want := 6 + 6*len(branches)
	if len(got) > want || count(got, "update-ref") != 1 || count(got, "cat-file") != 1 || count(got, "merge-base --is-ancestor") != len(branches) {
		t.Errorf("a merge sync of %d branches started %d git processes, want at most %d with one update-ref, one cat-file and one ancestry check per branch:\n%s",
			len(branches), len(got), want, strings.Join(got, "\n"))
	}
	for _, b := range branches {
		if got, head := w.mirrorGit("rev-parse", mirrorRef("fork", b.Name)), w.forkHead(b.Name); got != head {
			t.Errorf("the mirror tracks %s at %s, the fork is at %s", b.Name, got, head)
		}
	}
}

// A fork branch someone pushed to outside hyperfork is missing from the
// mirror: the ancestry check fails on it, and the sync fetches the fork
// branch alone, then finds it up to date.
func TestSyncFetchesAForkHeadTheMirrorLacks(t *testing.T) {
	w := newSyncWorld(t)
	branches := threeBranches(t, w)
	syncAll(t, w, branches, report.SyncUpToDate)
	w.fork.Checkout(t, "release-1.1")
	w.fork.Commit(t, "carry: pushed by a person", map[string]string{"company/person.go": "package company\n"})
	w.fork.Push(t, w.forkBare, "release-1.1")
	head := w.forkHead("release-1.1")

	calls := gitLog(t, w.mirror)
	syncAll(t, w, branches, report.SyncUpToDate)
	got := calls()
	var fetches []string
	for _, c := range got {
		if strings.HasPrefix(c, "fetch") {
			fetches = append(fetches, c)
		}
	}
	if len(fetches) != 1 || !strings.Contains(fetches[0], "fork.git +refs/heads/release-1.1:") || strings.Count(fetches[0], "+refs/") != 1 {
		t.Fatalf("fetches %q, want release-1.1 of the fork alone:\n%s", fetches, strings.Join(got, "\n"))
	}
	if got := w.mirrorGit("rev-parse", mirrorRef("fork", "release-1.1")); got != head {
		t.Fatalf("the mirror has the fork's release-1.1 at %s, want %s", got, head)
	}
}
