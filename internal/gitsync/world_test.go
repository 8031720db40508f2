package gitsync

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
)

const (
	testUser  = "x-access-token"
	testToken = "tok-5a4b3c2d1e0f99887766"
)

// syncWorld is an upstream and a fork served over smart HTTP with basic
// auth (the real git http-backend), work trees that change them, and a
// mirror folder for Syncers.
type syncWorld struct {
	t                *testing.T
	dir              string
	srv              *gitserver.Server
	up, fork         *gitfixture.Repo // work trees
	upBare, forkBare string
	mirror           string
	log              *lockedBuffer
}

// newSyncWorld makes upstream with master and release-1.0 (tagged v1.0.0
// at the start) and a fork that carries one commit on each.
func newSyncWorld(t *testing.T) *syncWorld {
	t.Helper()
	gitfixture.Isolate(t)
	w := &syncWorld{t: t, dir: t.TempDir(), log: &lockedBuffer{}}
	root := filepath.Join(w.dir, "srv")
	w.upBare, w.forkBare = filepath.Join(root, "upstream.git"), filepath.Join(root, "fork.git")
	gitfixture.NewBare(t, w.upBare)
	gitfixture.NewBare(t, w.forkBare)
	w.srv = gitserver.Start(t, root, gitserver.WithBasicAuth(testUser, testToken))
	w.mirror = filepath.Join(w.dir, "state", "mirror.git")

	w.up = gitfixture.Init(t, filepath.Join(w.dir, "up"))
	w.up.Commit(t, "initial", map[string]string{"README.md": "kubernetes\n", "pkg/a.go": "package a\n\nconst A = 1\n", "docs/x.md": "x\n"})
	w.up.Tag(t, "v1.0.0")
	w.up.Branch(t, "release-1.0")
	w.up.Push(t, w.upBare, "master", "release-1.0", "v1.0.0")

	w.fork = gitfixture.Clone(t, w.upBare, filepath.Join(w.dir, "fork"))
	w.fork.Commit(t, "carry: company patch on master", map[string]string{"company/patch.go": "package company\n"})
	w.fork.Push(t, w.forkBare, "master")
	w.fork.Checkout(t, "release-1.0")
	w.fork.Commit(t, "carry: company patch on release-1.0", map[string]string{"company/release.go": "package company\n"})
	w.fork.Push(t, w.forkBare, "release-1.0")
	w.fork.Checkout(t, "master")
	return w
}

// options are a Syncer's options for this world.
func (w *syncWorld) options() Options {
	return Options{
		MirrorDir: w.mirror,
		Upstream:  Remote{URL: w.srv.URL("upstream.git"), Token: testToken},
		Fork:      Remote{URL: w.srv.URL("fork.git"), Token: testToken},
		Logger:    slog.New(slog.NewTextHandler(w.log, nil)),
	}
}

// syncer returns a Syncer on the world's mirror.
func (w *syncWorld) syncer(opts Options) *Syncer {
	w.t.Helper()
	s, err := New(context.Background(), opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// upstreamCommit adds a commit on an upstream branch and pushes it.
func (w *syncWorld) upstreamCommit(branch, msg string, files map[string]string) string {
	w.t.Helper()
	w.up.Checkout(w.t, branch)
	h := w.up.Commit(w.t, msg, files)
	w.up.Push(w.t, w.upBare, branch)
	return h
}

// forkHead reads a fork branch straight from the served bare repository.
func (w *syncWorld) forkHead(branch string) string {
	w.t.Helper()
	return gitfixture.Git(w.t, w.fork.Home, w.forkBare, "rev-parse", "refs/heads/"+branch)
}

// mirrorGit runs git in the mirror.
func (w *syncWorld) mirrorGit(args ...string) string {
	w.t.Helper()
	return gitfixture.Git(w.t, w.fork.Home, w.mirror, args...)
}

// isAncestor reports whether a is in the history of b in the served fork.
func (w *syncWorld) isAncestor(a, b string) bool {
	_, err := gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "merge-base", "--is-ancestor", a, b)
	return err == nil
}

// only returns the outcome of a one-branch sync, failing on an error.
func only(t *testing.T, out []Outcome) Outcome {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("%d outcomes, want 1", len(out))
	}
	return out[0]
}

// lockedBuffer is a log sink several goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// srvHead is forkHead for a branch that may not exist.
func (w *syncWorld) srvHead(branch string) (string, error) {
	return gitfixture.GitErr(w.fork.Home, w.forkBare, nil, "rev-parse", "--verify", "refs/heads/"+branch)
}
