package gitsync

import (
	"context"
	"crypto/sha256"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// snapshot returns every file under dir with a hash of its content.
func snapshot(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	files := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		dt, err := os.ReadFile(p)
		files[strings.TrimPrefix(p, dir)] = sha256.Sum256(dt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSyncIgnoresTheCallersGitEnvironment runs a sync the way a git hook or
// `git rebase -x` would start it: with GIT_DIR and friends pointing at
// another repository. The mirror must get the objects; the other repository
// must not change at all.
func TestSyncIgnoresTheCallersGitEnvironment(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	up := gitfixture.NewBare(t, filepath.Join(tmp, "up.git"))
	up.Commit(t, "base", map[string]string{"a.txt": "a\n"})
	fork := gitfixture.NewBare(t, filepath.Join(tmp, "fork.git"))
	fork.Run(t, "fetch", "--quiet", up.Dir, "master:master")
	upHead := up.Commit(t, "upstream: add b", map[string]string{"b.txt": "b\n"})

	decoy := gitfixture.NewBare(t, filepath.Join(tmp, "decoy.git"))
	decoy.Commit(t, "decoy", map[string]string{"d.txt": "d\n"})
	before := snapshot(t, decoy.Dir)
	wt := filepath.Join(tmp, "decoy-worktree")
	os.Mkdir(wt, 0o755)
	for k, v := range map[string]string{
		"GIT_DIR":               decoy.Dir,
		"GIT_WORK_TREE":         wt,
		"GIT_INDEX_FILE":        filepath.Join(decoy.Dir, "index"),
		"GIT_OBJECT_DIRECTORY":  filepath.Join(decoy.Dir, "objects"),
		"GIT_CONFIG_PARAMETERS": "'core.logallrefupdates'='always'",
		"GIT_SSH_COMMAND":       "false",
	} {
		t.Setenv(k, v)
	}

	mirror := filepath.Join(tmp, "mirror.git")
	s, err := New(ctx, Options{MirrorDir: mirror,
		Upstream: Remote{URL: "file://" + up.Dir}, Fork: Remote{URL: "file://" + fork.Dir}})
	if err != nil {
		t.Fatal(err)
	}
	out := s.Sync(ctx, []Branch{{Name: "master", Upstream: "master"}}, false)
	if out[0].Err != nil || out[0].Sync.Status != report.SyncMerged {
		t.Fatalf("sync: %s, %v", out[0].Sync.Status, out[0].Err)
	}

	after := snapshot(t, decoy.Dir)
	var changed []string
	for p := range maps.Keys(after) {
		if before[p] != after[p] {
			changed = append(changed, p)
		}
	}
	for p := range maps.Keys(before) {
		if _, ok := after[p]; !ok {
			changed = append(changed, p+" (removed)")
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		t.Errorf("sync changed the caller's repository: %s", strings.Join(changed, ", "))
	}
	if _, err := os.Stat(filepath.Join(decoy.Dir, "refs", "hyperfork")); err == nil {
		t.Errorf("sync wrote refs/hyperfork into the caller's repository")
	}
	m := gitfixture.Open(t, mirror)
	if got := m.Run(t, "rev-parse", "refs/hyperfork/upstream/master"); got != upHead {
		t.Errorf("mirror refs/hyperfork/upstream/master = %q, want %s", got, upHead)
	}
	m.Run(t, "cat-file", "-e", upHead+"^{tree}")
	if got := fork.Run(t, "rev-parse", "master"); got != upHead {
		t.Errorf("fork master = %s, want %s", got, upHead)
	}
}

func TestGitIgnoresTheCallersSSHCommand(t *testing.T) {
	t.Setenv("GIT_SSH_COMMAND", "ssh -o ProxyCommand=evil")
	env := (&Git{}).baseEnv()
	if !slices.Contains(env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new") {
		t.Fatalf("baseEnv = %q", env)
	}
}

func TestGitTrustsTheCAFilesOfSSLCertFile(t *testing.T) {
	t.Setenv("GIT_SSL_CAINFO", "/callers/own.pem")
	t.Setenv("SSL_CERT_FILE", "/etc/company/ca.pem")
	t.Setenv("SSL_CERT_DIR", "")
	env := (&Git{}).baseEnv()
	if !slices.Contains(env, "GIT_SSL_CAINFO=/etc/company/ca.pem") || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GIT_SSL_CAPATH=") }) {
		t.Fatalf("baseEnv = %q", env)
	}
}
