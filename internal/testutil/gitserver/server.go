// Package gitserver serves bare repositories over git's smart HTTP protocol
// for tests. It runs the real `git http-backend` through net/http/cgi on a
// loopback listener, so the code under test talks to the same server
// implementation as in production (GitHub, GitLab and Gerrit all speak this
// protocol) instead of a fake that could drift from it.
package gitserver

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Keys accepted by Requests and RepoRequests.
const (
	// InfoRefs counts ref advertisements (GET .../info/refs). Every
	// ls-remote, fetch, clone and push starts with one.
	InfoRefs = "info/refs"
	// UploadPack counts POST .../git-upload-pack: ls-refs and fetch commands.
	UploadPack = "git-upload-pack"
	// ReceivePack counts POST .../git-receive-pack: pushes that sent updates.
	ReceivePack = "git-receive-pack"
	// LsRefs counts protocol v2 ls-refs commands. With protocol v2 an
	// ls-remote is a POST to git-upload-pack too, so UploadPack alone cannot
	// tell "listed refs" from "downloaded objects".
	LsRefs = "ls-refs"
	// Fetch counts object negotiations: v2 fetch commands and v0/v1
	// upload-pack requests. Zero means no objects were downloaded.
	Fetch = "fetch"
	// Unauthorized counts requests answered with 401. A git client first
	// tries without credentials, so one 401 per session is normal.
	Unauthorized = "unauthorized"
)

// Server is a smart HTTP git server on 127.0.0.1 serving every repository
// under its root directory, including repositories created after Start.
type Server struct {
	root     string
	user     string
	password string
	gitPath  string
	tmp      string // HOME of http-backend, and where chunked bodies are spooled
	tb       testing.TB
	srv      *httptest.Server

	mu            sync.Mutex
	counts        map[string]int // by key, and by repo+"\x00"+key
	beforeReceive func()
}

// Option configures a Server. An option returns an error for invalid input
// so a typo fails the test at Start instead of silently weakening it.
type Option func(*Server) error

// WithBasicAuth makes the server demand HTTP basic authentication with
// exactly these credentials for every request, fetches and pushes alike.
// Missing or wrong credentials get 401 with a WWW-Authenticate challenge,
// which is what makes git report "Authentication failed".
func WithBasicAuth(user, password string) Option {
	return func(s *Server) error {
		if user == "" || password == "" {
			return errors.New("gitserver: WithBasicAuth needs a non-empty user and password")
		}
		s.user, s.password = user, password
		return nil
	}
}

// Start serves every bare repository under root until the test ends.
// Repository "a/b.git" under root is reachable at s.URL("a/b.git").
// Pushes are accepted (http.receivepack=true) with or without auth.
func Start(t testing.TB, root string, opts ...Option) *Server {
	t.Helper()
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatalf("gitserver: root: %v", err)
	}
	if !fi.IsDir() {
		t.Fatalf("gitserver: root %s is not a directory", root)
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("gitserver: git is required: %v", err)
	}
	s := &Server{
		root:    root,
		gitPath: gitPath,
		// http-backend must not read the developer's ~/.gitconfig: a
		// receive.denyNonFastForwards there would change test outcomes.
		tmp:    t.TempDir(),
		tb:     t,
		counts: map[string]int{},
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			t.Fatal(err)
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.Close)
	return s
}

// URL returns the clone URL of repo (a path relative to root), without
// credentials, so tests can check that the code under test adds them.
func (s *Server) URL(repo string) string {
	return s.srv.URL + "/" + strings.TrimPrefix(repo, "/")
}

// URLWithAuth returns the clone URL of repo with the server's credentials
// in the userinfo part; it equals URL when the server has no auth.
func (s *Server) URLWithAuth(repo string) string {
	if s.user == "" {
		return s.URL(repo)
	}
	u, err := url.Parse(s.URL(repo))
	if err != nil {
		s.tb.Fatalf("gitserver: %v", err)
	}
	u.User = url.UserPassword(s.user, s.password)
	return u.String()
}

// Credentials returns the basic auth user and password, empty without auth.
func (s *Server) Credentials() (user, password string) {
	return s.user, s.password
}

// Root returns the directory whose repositories the server serves.
func (s *Server) Root() string { return s.root }

// Close stops the server and waits for in-flight requests. Start registers
// it with t.Cleanup; calling it earlier simulates a server going away.
func (s *Server) Close() { s.srv.Close() }

// Requests returns how many requests of one kind (InfoRefs, UploadPack,
// ReceivePack, LsRefs, Fetch, Unauthorized) the server answered, over all
// repositories. Tests use it to prove that an up-to-date branch caused no
// fetch: Requests(Fetch) == 0.
func (s *Server) Requests(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

// RepoRequests is Requests restricted to one repository (as passed to URL),
// for tests that serve the upstream and the fork from the same server.
func (s *Server) RepoRequests(repo, key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[repoKey(repo, key)]
}

// ResetRequests sets every counter to zero, so a test can count the
// requests of one phase only.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// BeforeReceivePack sets fn to run at the start of every push, before the
// server answers the push's ref advertisement (only for authorized
// requests). Whatever fn changes is therefore what the pusher sees, which is
// how a test moves a branch between the code's ls-remote and its push to
// make a --force-with-lease push fail. fn runs on every push; wrap it in a
// sync.Once for a one-shot change. nil removes the hook. fn runs on the
// server's goroutine, where t.Fatal must not be called: use t.Error.
func (s *Server) BeforeReceivePack(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeReceive = fn
}

// ClosedURL returns an http URL on 127.0.0.1 whose port nothing listens on,
// for tests of an unreachable remote: connecting fails at once with
// "connection refused" instead of hanging until a timeout.
func ClosedURL(t testing.TB) string {
	t.Helper()
	// Port 1 (tcpmux) is privileged and unused: unlike an ephemeral port
	// that was free a moment ago, no server of a parallel test can take it.
	return "http://127.0.0.1:1/closed.git"
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.count("", Unauthorized)
		w.Header().Set("WWW-Authenticate", `Basic realm="gitserver"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	repo, kind := classify(r)
	if kind == "" {
		// Dumb-protocol paths (objects/, HEAD) are still served by
		// http-backend; they are not counted because git never uses them
		// against a smart server.
		s.cgi(w, r)
		return
	}
	s.count(repo, kind)
	switch {
	case kind == InfoRefs && r.URL.Query().Get("service") == ReceivePack:
		s.mu.Lock()
		hook := s.beforeReceive
		s.mu.Unlock()
		if hook != nil {
			hook()
		}
	case kind == UploadPack:
		cmd, err := peekUploadPackCommand(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.count(repo, cmd)
	}
	s.cgi(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.user == "" {
		return true
	}
	user, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	// Constant time, because test helpers get copied into real code.
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.user))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(s.password))
	return u&p == 1
}

func (s *Server) count(repo, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[key]++
	if repo != "" {
		s.counts[repoKey(repo, key)]++
	}
}

func repoKey(repo, key string) string {
	return strings.Trim(repo, "/") + "\x00" + key
}

// classify returns the repository path and the counter key of a smart HTTP
// request, or an empty key for anything else.
func classify(r *http.Request) (repo, kind string) {
	p := r.URL.Path
	for _, k := range []string{InfoRefs, UploadPack, ReceivePack} {
		if strings.HasSuffix(p, "/"+k) {
			return strings.Trim(strings.TrimSuffix(p, "/"+k), "/"), k
		}
	}
	return "", ""
}

func (s *Server) cgi(w http.ResponseWriter, r *http.Request) {
	cleanup, err := spoolChunked(r, s.tmp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer cleanup()
	env := []string{
		"GIT_PROJECT_ROOT=" + s.root,
		// Serve repositories without a git-daemon-export-ok file.
		"GIT_HTTP_EXPORT_ALL=1",
		"HOME=" + s.tmp,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		// Pushes are enabled through the environment so repositories
		// made by any helper, or by the code under test, accept them
		// without per-repository config.
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=http.receivepack",
		"GIT_CONFIG_VALUE_0=true",
		// Allow fetching any reachable commit by hash, as GitHub does.
		"GIT_CONFIG_KEY_1=uploadpack.allowReachableSHA1InWant",
		"GIT_CONFIG_VALUE_1=true",
	}
	if s.user != "" {
		// http-backend records the pusher in reflogs from REMOTE_USER.
		env = append(env, "REMOTE_USER="+s.user)
	}
	h := &cgi.Handler{
		Path:       s.gitPath,
		Args:       []string{"http-backend"},
		Dir:        s.root,
		Env:        env,
		InheritEnv: []string{"PATH", "LANG", "LC_ALL", "TMPDIR"},
		Stderr:     &logWriter{tb: s.tb},
	}
	h.ServeHTTP(w, r)
}

// logWriter sends http-backend's stderr to the test log, where a failing
// test shows it next to its own output.
type logWriter struct{ tb testing.TB }

func (l *logWriter) Write(p []byte) (int, error) {
	l.tb.Logf("git http-backend: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// String describes the server for test logs.
func (s *Server) String() string {
	return fmt.Sprintf("gitserver %s serving %s", s.srv.URL, s.root)
}
