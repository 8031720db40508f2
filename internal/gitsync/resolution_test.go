package gitsync

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

const (
	upSub   = "2222222222222222222222222222222222222222"
	forkSub = "3333333333333333333333333333333333333333"
)

// setGitlink stages a submodule entry at path pointing at commit.
func setGitlink(t *testing.T, r *gitfixture.Repo, path, commit string) {
	t.Helper()
	r.Run(t, "update-index", "--add", "--cacheinfo", "160000,"+commit+","+path)
}

// conflictsOfEveryKind makes upstream and the fork disagree on a binary
// file, a file one side deleted, a file one side renamed and the other
// deleted, and a submodule, and returns the sync's conflict outcome.
func conflictsOfEveryKind(t *testing.T, w *syncWorld) Outcome {
	t.Helper()
	ctx := context.Background()
	s := w.syncer(w.options())
	master := []Branch{{Name: "master", Upstream: "master"}}
	w.up.Checkout(t, "master")
	setGitlink(t, w.up, "sub", "1111111111111111111111111111111111111111")
	w.up.Commit(t, "upstream: files to disagree on", map[string]string{
		"a.bin": "\x00\x01base", "md.txt": "1\n", "ren.txt": "one\ntwo\nthree\nfour\nfive\n"})
	w.up.Push(t, w.upBare, "master")
	if o := only(t, s.Sync(ctx, master, false)); o.Sync.Status != report.SyncMerged {
		t.Fatalf("%+v %v", o.Sync, o.Err)
	}

	setGitlink(t, w.up, "sub", upSub)
	w.up.Run(t, "mv", "ren.txt", "renamed.txt")
	w.up.Commit(t, "upstream: change them", map[string]string{"a.bin": "\x00\x02upstream", "md.txt": gitfixture.Delete})
	w.up.Push(t, w.upBare, "master")

	w.fork.Run(t, "fetch", "-q", w.forkBare, "master")
	w.fork.Run(t, "checkout", "-q", "-B", "master", "FETCH_HEAD")
	setGitlink(t, w.fork, "sub", forkSub)
	w.fork.Commit(t, "carry: change them otherwise", map[string]string{"a.bin": "\x00\x03fork", "md.txt": "fork\n", "ren.txt": gitfixture.Delete})
	w.fork.Push(t, w.forkBare, "master")

	o := only(t, s.Sync(ctx, master, false))
	if o.Sync.Status != report.SyncConflict {
		t.Fatalf("%+v %v", o.Sync, o.Err)
	}
	kinds := map[string]string{}
	for _, c := range o.Sync.Conflicts {
		kinds[c.Path] = c.Kind
	}
	want := map[string]string{"a.bin": "binary", "md.txt": "modify/delete", "renamed.txt": "rename/delete", "sub": "submodule"}
	for p, k := range want {
		if kinds[p] != k {
			t.Fatalf("conflict kinds %v, want %v", kinds, want)
		}
	}
	return o
}

func TestResolutionAdviceByKind(t *testing.T) {
	w := newSyncWorld(t)
	res := conflictsOfEveryKind(t, w).Sync.Resolution
	for _, want := range []string{
		"#       git checkout --ours -- a.bin     # the fork's version\n",
		"#       git checkout --theirs -- a.bin   # upstream's version\n",
		"#       git update-index --cacheinfo 160000," + forkSub + ",sub   # the fork's commit\n",
		"#       git update-index --cacheinfo 160000," + upSub + ",sub   # upstream's commit\n",
		"#   md.txt (modify/delete): the fork changed it and upstream deleted it; keep it (edit it to what both sides need) or delete it (git rm -q -- md.txt)\n",
		"#   renamed.txt (rename/delete): upstream renamed ren.txt to renamed.txt and the fork deleted ren.txt; keep renamed.txt (edit it as needed) or delete it (git rm -q -- renamed.txt)\n",
		"\ngit add -u ",
	} {
		if !strings.Contains(res, want) {
			t.Errorf("resolution lacks %q:\n%s", want, res)
		}
	}
	// No "remove the markers" for what has none.
	for _, line := range strings.Split(res, "\n") {
		if strings.Contains(line, "<<<<<<<") && (strings.Contains(line, "a.bin (") || strings.Contains(line, "sub (")) {
			t.Errorf("marker advice for a binary file or a submodule: %s", line)
		}
	}
}

// The printed commands finish the merge: the binary file taken from
// upstream, the modified file resolved by deleting it, the submodule set to
// upstream's commit, the renamed file kept.
func TestResolutionCommandsResolveDeletionsBinariesAndSubmodules(t *testing.T) {
	w := newSyncWorld(t)
	o := conflictsOfEveryKind(t, w)
	res := o.Sync.Resolution
	steps := regexp.MustCompile(`(?m)^# [0-9]\. `).FindAllStringIndex(res, -1)
	if len(steps) != 3 {
		t.Fatalf("resolution has %d steps:\n%s", len(steps), res)
	}
	step1, step3 := res[steps[0][0]:steps[1][0]], res[steps[2][0]:]

	// The person's choices, copied from the advice.
	pick := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(res)
		if m == nil {
			t.Fatalf("no %s in:\n%s", re, res)
		}
		return m[1]
	}
	choices := strings.Join([]string{
		pick(`(?m)^#\s+(git checkout --theirs -- a\.bin)\s+#`),
		pick(`(?m)^#   md\.txt \(modify/delete\).*\((git rm -q -- md\.txt)\)$`),
		pick(`(?m)^#\s+(git update-index --cacheinfo 160000,` + upSub + `,sub)\s+#`),
	}, "\n")

	home := t.TempDir()
	cred := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testToken))
	env := append(gitfixture.Env(home), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic "+cred)
	work := t.TempDir()
	sh := func(dir, script string, mayFail bool) {
		t.Helper()
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir, cmd.Env = dir, env
		if b, err := cmd.CombinedOutput(); err != nil && !mayFail {
			t.Fatalf("%v\n%s\n%s", err, script, b)
		}
	}
	sh(work, step1, true) // the merge stops on the conflicts
	clone := filepath.Join(work, "hyperfork-merge-master")
	sh(clone, choices, false)
	sh(clone, step3, false)

	head := w.forkHead("master")
	if parents := strings.Fields(gitfixture.Git(t, w.fork.Home, w.forkBare, "rev-list", "--parents", "-n1", head)); len(parents) != 3 || parents[1] != o.Sync.ForkCommit {
		t.Fatalf("fork head %v is not the merge of %s", parents, o.Sync.ForkCommit)
	}
	show := func(path string) string {
		out, _ := gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "ls-tree", head, "--", path)
		return out
	}
	if got := gitfixture.Git(t, w.fork.Home, w.forkBare, "cat-file", "blob", head+":a.bin"); got != "\x00\x02upstream" {
		t.Fatalf("a.bin = %q", got)
	}
	if got := show("md.txt"); got != "" {
		t.Fatalf("md.txt survived its deletion: %s", got)
	}
	if got := show("sub"); !strings.HasPrefix(got, "160000 commit "+upSub) {
		t.Fatalf("sub = %q", got)
	}
	if got := show("renamed.txt"); got == "" {
		t.Fatal("renamed.txt is gone")
	}
	if _, err := os.Stat(filepath.Join(clone, "md.txt")); err == nil {
		t.Fatal("md.txt is in the clone")
	}
}
