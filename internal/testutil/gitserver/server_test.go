package gitserver_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
)

// serve starts a server over a root holding "up.git" with two commits on
// master and returns the server and the bare repository.
func serve(t *testing.T, opts ...gitserver.Option) (*gitserver.Server, *gitfixture.Repo) {
	t.Helper()
	root := t.TempDir()
	bare := gitfixture.NewBare(t, filepath.Join(root, "up.git"))
	bare.Commit(t, "one", map[string]string{"a.txt": "1\n"})
	bare.Commit(t, "two", map[string]string{"b.txt": "2\n"})
	return gitserver.Start(t, root, opts...), bare
}

func TestCloneFetchPush(t *testing.T) {
	s, bare := serve(t)
	work := gitfixture.Clone(t, s.URL("up.git"), filepath.Join(t.TempDir(), "w"))
	if work.Head(t) != bare.Head(t) {
		t.Fatalf("clone HEAD %s, server %s", work.Head(t), bare.Head(t))
	}
	if s.Requests(gitserver.Fetch) != 1 || s.RepoRequests("up.git", gitserver.Fetch) != 1 {
		t.Errorf("clone made %d fetches, want 1", s.Requests(gitserver.Fetch))
	}
	c := work.Commit(t, "three", map[string]string{"c.txt": "3\n"})
	work.Push(t, "origin", "master")
	if bare.Head(t) != c {
		t.Errorf("server master = %s after push, want %s", bare.Head(t), c)
	}
	if got := s.Requests(gitserver.ReceivePack); got != 1 {
		t.Errorf("ReceivePack = %d, want 1", got)
	}
	if s.Requests(gitserver.InfoRefs) < 2 || s.Requests(gitserver.Unauthorized) != 0 {
		t.Errorf("InfoRefs = %d, Unauthorized = %d", s.Requests(gitserver.InfoRefs), s.Requests(gitserver.Unauthorized))
	}
}

func TestUpToDateFetchDownloadsNothing(t *testing.T) {
	s, bare := serve(t)
	work := gitfixture.Clone(t, s.URL("up.git"), filepath.Join(t.TempDir(), "w"))
	s.ResetRequests()

	if got := work.Run(t, "ls-remote", s.URL("up.git"), "refs/heads/master"); !strings.HasPrefix(got, bare.Head(t)) {
		t.Errorf("ls-remote = %q", got)
	}
	work.Run(t, "fetch", "-q", "origin")
	// Protocol v2 lists refs with a POST to git-upload-pack; only the
	// Fetch counter tells whether objects were negotiated.
	if got := s.Requests(gitserver.Fetch); got != 0 {
		t.Errorf("up-to-date ls-remote and fetch made %d fetches, want 0", got)
	}
	if got := s.Requests(gitserver.LsRefs); got != 2 {
		t.Errorf("LsRefs = %d, want 2", got)
	}

	bare.Commit(t, "new upstream", map[string]string{"d.txt": "4\n"})
	work.Run(t, "fetch", "-q", "origin")
	if got := s.Requests(gitserver.Fetch); got != 1 {
		t.Errorf("fetch of a new commit made %d fetches, want 1", got)
	}
}

func TestBasicAuth(t *testing.T) {
	s, bare := serve(t, gitserver.WithBasicAuth("bot", "s3cret-token"))
	dir := t.TempDir()
	home := t.TempDir()

	wrong := strings.Replace(s.URLWithAuth("up.git"), "s3cret-token", "wrong", 1)
	_, err := gitfixture.GitErr(home, dir, nil, "clone", "-q", wrong, "w1")
	if err == nil || !strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("clone with a wrong password: %v, want an authentication failure", err)
	}
	_, err = gitfixture.GitErr(home, dir, nil, "clone", "-q", s.URL("up.git"), "w2")
	if err == nil || !strings.Contains(err.Error(), "could not read Username") {
		t.Errorf("clone without credentials: %v, want a refused prompt", err)
	}
	if s.Requests(gitserver.Unauthorized) == 0 || s.Requests(gitserver.Fetch) != 0 {
		t.Errorf("Unauthorized = %d, Fetch = %d", s.Requests(gitserver.Unauthorized), s.Requests(gitserver.Fetch))
	}

	work := gitfixture.Clone(t, s.URLWithAuth("up.git"), filepath.Join(dir, "ok"))
	c := work.Commit(t, "authorized", nil)
	// Push goes through the same check: a wrong password is refused and
	// the branch stays put.
	if _, err := work.RunErr("push", wrong, "master"); err == nil || !strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("push with a wrong password: %v, want an authentication failure", err)
	}
	if bare.Head(t) == c {
		t.Fatal("push with a wrong password moved the branch")
	}
	work.Push(t, "origin", "master")
	if bare.Head(t) != c {
		t.Errorf("authorized push did not land")
	}
	if user, pass := s.Credentials(); user != "bot" || pass != "s3cret-token" {
		t.Errorf("Credentials() = %q, %q", user, pass)
	}
}

func TestWithBasicAuthRejectsEmpty(t *testing.T) {
	if err := gitserver.WithBasicAuth("", "x")(&gitserver.Server{}); err == nil {
		t.Error("empty user accepted")
	}
}

func TestBeforeReceivePackMakesLeaseFail(t *testing.T) {
	s, bare := serve(t)
	work := gitfixture.Clone(t, s.URL("up.git"), filepath.Join(t.TempDir(), "w"))
	seen := strings.Fields(work.Run(t, "ls-remote", "origin", "refs/heads/master"))[0]
	work.Commit(t, "mine", map[string]string{"mine.txt": "x\n"})

	// Someone else's commit, made now and published by the hook.
	other := bare.Run(t, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "someone else")
	var once sync.Once
	var fired atomic.Int32
	s.BeforeReceivePack(func() {
		fired.Add(1)
		once.Do(func() {
			if _, err := bare.RunErr("update-ref", "refs/heads/master", other); err != nil {
				t.Error(err)
			}
		})
	})
	_, err := work.RunErr("push", "--force-with-lease=refs/heads/master:"+seen, "origin", "HEAD:refs/heads/master")
	if err == nil || !strings.Contains(err.Error(), "stale info") {
		t.Fatalf("push with a stale lease: %v, want rejected (stale info)", err)
	}
	if fired.Load() != 1 || bare.Head(t) != other {
		t.Fatalf("hook fired %d times; server head %s", fired.Load(), bare.Head(t))
	}
	s.BeforeReceivePack(nil)
	work.Run(t, "pull", "-q", "--no-rebase", "origin", "master")
	work.Push(t, "origin", "master")
	if fired.Load() != 1 {
		t.Errorf("removed hook still fired")
	}
}

func TestLargePush(t *testing.T) {
	// Over git's 1 MiB http.postBuffer the push body is chunked, which
	// reaches CGI without CONTENT_LENGTH, and git must probe for auth
	// first because it cannot rewind a streamed body after a 401.
	s, bare := serve(t, gitserver.WithBasicAuth("bot", "s3cret-token"))
	work := gitfixture.Clone(t, s.URLWithAuth("up.git"), filepath.Join(t.TempDir(), "w"))
	blob := make([]byte, 3<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	c := work.Commit(t, "big", map[string]string{"big.hex": hex.EncodeToString(blob)})
	work.Push(t, "origin", "master")
	if bare.Head(t) != c {
		t.Error("large push did not land")
	}
}

func TestClosedURL(t *testing.T) {
	u := gitserver.ClosedURL(t)
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("ClosedURL = %s", u)
	}
	_, err := gitfixture.GitErr(t.TempDir(), t.TempDir(), nil, "ls-remote", u)
	if err == nil || !strings.Contains(err.Error(), "Failed to connect") {
		t.Errorf("ls-remote of a closed port: %v", err)
	}
	if _, err := http.Get(u); err == nil {
		t.Error("something listens on the closed port")
	}
}

func TestServesReposCreatedAfterStart(t *testing.T) {
	root := t.TempDir()
	s := gitserver.Start(t, root)
	bare := gitfixture.NewBare(t, filepath.Join(root, "team", "late.git"))
	bare.Commit(t, "late", nil)
	got := gitfixture.Git(t, t.TempDir(), t.TempDir(), "ls-remote", s.URL("team/late.git"), "HEAD")
	if !strings.HasPrefix(got, bare.Head(t)) {
		t.Errorf("ls-remote = %q", got)
	}
	if s.RepoRequests("team/late.git", gitserver.InfoRefs) != 1 {
		t.Errorf("per-repo counter: %d", s.RepoRequests("team/late.git", gitserver.InfoRefs))
	}
}
