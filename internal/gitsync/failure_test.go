package gitsync

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

func TestGitReasonQuotesWholeMessages(t *testing.T) {
	for _, tc := range []struct {
		name, output string
		want         []string
	}{
		{"missing file repository", "fatal: '/srv/missing.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
			[]string{"fatal: '/srv/missing.git' does not appear to be a git repository"}},
		{"ssh refused", "ssh: connect to host 127.0.0.1 port 1: Connection refused\r\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
			[]string{"ssh: connect to host 127.0.0.1 port 1: Connection refused"}},
		{"only the generic line", "fatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
			[]string{"fatal: Could not read from remote repository."}},
		{"ssh key refused", "git@example.com: Permission denied (publickey).\nfatal: Could not read from remote repository.\n",
			[]string{"git@example.com: Permission denied (publickey)."}},
		{"wrapped lock message", "fatal: Unable to create '/m/objects/info/commit-graphs/commit-graph-chain.lock': File exists.\n\nAnother git process seems to be running in this repository, e.g.\nan editor opened by 'git commit'. Please make sure all processes\nare terminated then try again.\n",
			[]string{"fatal: Unable to create '/m/objects/info/commit-graphs/commit-graph-chain.lock': File exists.",
				"Another git process seems to be running in this repository, e.g. an editor opened by 'git commit'. Please make sure all processes are terminated then try again."}},
		{"refused tag among updated refs", "From ../t\n * [new tag]         v1.0.0     -> v1.0.0\n   1234567..89abcde  master     -> refs/hyperfork/upstream/master\n ! [rejected]        v1.2.3     -> v1.2.3  (would clobber existing tag)\n",
			[]string{"! [rejected]        v1.2.3     -> v1.2.3  (would clobber existing tag)"}},
		{"github", "remote: Repository not found.\nfatal: repository 'https://github.com/a/b.git/' not found\n",
			[]string{"remote: Repository not found.", "fatal: repository 'https://github.com/a/b.git/' not found"}},
		{"nothing", "", []string{"git printed no reason (exit status 1)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := gitReason(&exec.RunError{Command: "git fetch", Output: tc.output, Inner: errors.New("exit status 1")})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("gitReason =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// A state folder whose path says 403, "not found" and "timed out" is no
// reason to call a missing repository an authentication failure: the class
// comes from git's own lines, never from the command line.
func TestClassifyReadsGitNotPaths(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	odd := filepath.Join(w.dir, "team-403 not found timed out")
	opts := w.options()
	opts.MirrorDir = filepath.Join(odd, "state", "mirror.git")
	branches := []Branch{{Name: "master", Upstream: "master"}}

	syncErr := func(o Options) error {
		t.Helper()
		out := only(t, w.syncer(o).Sync(ctx, branches, false))
		if out.Sync.Status != report.SyncError || out.Err == nil {
			t.Fatalf("sync: %+v", out)
		}
		return out.Err
	}
	notAuth := func(err error, want error) {
		t.Helper()
		if errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "authentication failed") || !errors.Is(err, want) {
			t.Fatalf("%v\nis not %v only", err, want)
		}
	}

	// A repository missing on the server (http-backend answers 404).
	o := opts
	o.Fork.URL = w.srv.URL("team-403/not-found/missing.git")
	notAuth(syncErr(o), ErrNotFound)

	// A missing repository on the file transport, under the odd folder.
	o = opts
	o.Fork.URL = "file://" + filepath.Join(odd, "403", "missing.git")
	notAuth(syncErr(o), ErrNotFound)

	// Nothing listens.
	o = opts
	o.Upstream.URL = "http://127.0.0.1:1/team-403/upstream.git"
	notAuth(syncErr(o), ErrUnreachable)

	// A real 401: the right server, the wrong token.
	o = opts
	o.Fork.Token = "wrong-token-27182818"
	err := syncErr(o)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "fork.tokenEnv") || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("wrong token: %v", err)
	}

	// A 403. gitserver answers wrong credentials with 401 only, so a server
	// that forbids is a handler of its own.
	forbid := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		http.Error(rw, "forbidden", http.StatusForbidden)
	}))
	defer forbid.Close()
	o = opts
	o.Fork.URL = forbid.URL + "/team/fork.git"
	if err := syncErr(o); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "The requested URL returned error: 403") {
		t.Fatalf("403: %v", err)
	}
}

// git's reason is quoted whole, not its advice paragraph cut in half.
func TestRemoteErrorMessages(t *testing.T) {
	gitfixture.Isolate(t)
	ctx := context.Background()
	dir := t.TempDir()
	g := &Git{Dir: filepath.Join(dir, "mirror.git")}
	if err := EnsureBare(ctx, g.Dir); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.git")
	_, err := g.LsRemote(ctx, Remote{Name: "fork", URL: "file://" + missing}, []string{"master"})
	want := "list branches of fork file://" + missing + ": repository not found (fatal: '" + missing +
		"' does not appear to be a git repository); check fork.url, then run again"
	if err == nil || err.Error() != want {
		t.Fatalf("missing file:// repository:\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("%v is not ErrNotFound", err)
	}

	_, err = g.LsRemote(ctx, Remote{Name: "upstream", URL: "ssh://127.0.0.1:1/x"}, []string{"master"})
	want = "list branches of upstream ssh://127.0.0.1:1/x: remote unreachable (ssh: connect to host 127.0.0.1 port 1: Connection refused); check upstream.url and the network, then run again"
	if err == nil || err.Error() != want {
		t.Fatalf("refused ssh port:\n got %v\nwant %s", err, want)
	}

	_, err = g.LsRemote(ctx, Remote{Name: "upstream", URL: "http://127.0.0.1:1/x"}, []string{"master"})
	// curl's wording of the refusal and its timing vary by version and run.
	re := regexp.MustCompile(`^list branches of upstream http://127\.0\.0\.1:1/x: remote unreachable \(fatal: unable to access 'http://127\.0\.0\.1:1/x/': ` +
		`Failed to connect to 127\.0\.0\.1 port 1[^)]*: (Couldn't connect to server|Connection refused)\); check upstream\.url and the network, then run again$`)
	if err == nil || !re.MatchString(err.Error()) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("refused http port: %v", err)
	}

	var re2 *exec.RunError
	if !errors.As(err, &re2) || !strings.Contains(re2.Command, "ls-remote") {
		t.Fatalf("the failed command is not reachable through the error: %v", err)
	}
}

// A failure that fits no class still says what git said, and the command.
func TestFetchFailureCarriesGitsReason(t *testing.T) {
	w := newSyncWorld(t)
	s := w.syncer(w.options())
	err := s.git.Fetch(context.Background(), s.opts.Upstream, []string{"no-such-branch"}, true)
	if err == nil {
		t.Fatal("fetched a missing branch")
	}
	msg := err.Error()
	if !strings.Contains(msg, "fatal: couldn't find remote ref refs/heads/no-such-branch") || !strings.Contains(msg, "git -C ") {
		t.Fatalf("%v", err)
	}
	if strings.Contains(msg, testToken) {
		t.Fatal("the token leaked")
	}
	// And a stale lock file left by a killed git: the reason names it.
	lock := filepath.Join(w.mirror, "objects", "info", "commit-graphs", "commit-graph-chain.lock")
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = s.git.Fetch(context.Background(), s.opts.Upstream, []string{"master"}, false)
	if err == nil || !strings.Contains(err.Error(), "commit-graph-chain.lock': File exists.") {
		t.Fatalf("fetch with a young lock, maybe a running git's: %v", err)
	}
	// Hours old, it is a dead git's: the fetch removes it and goes on, so
	// the next nightly run after a kill -9 needs no person.
	old := time.Now().Add(-3 * time.Hour)
	os.Chtimes(lock, old, old)
	if err := s.git.Fetch(context.Background(), s.opts.Upstream, []string{"master"}, false); err != nil {
		t.Fatalf("fetch with a lock left hours ago by a killed git: %v", err)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("the stale lock is still there (%v)", err)
	}
}
