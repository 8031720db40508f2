package gitfixture

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Delete, as the content of a path given to Commit, deletes that path. A
// marker rather than "" because an empty file is a legitimate fixture.
const Delete = "\x00gitfixture:delete\x00"

// DefaultBranch is the initial branch of repositories made here: the name
// Kubernetes uses, so fixtures look like the repository hyperfork syncs.
const DefaultBranch = "master"

// baseTime is the first commit date handed out: 2024-01-01T00:00:00Z.
const baseTime int64 = 1704067200

// Repo is a git repository in a temp dir, bare or with a work tree. Its
// methods fail the test on any git error, so a fixture reads as a list of
// steps. Its clock is locked, so a Repo may be used from a gitserver hook
// running on the server's goroutine; git itself still serializes writers
// to the same ref with its lock files.
type Repo struct {
	// Dir is the repository directory (the work tree, or the bare repo).
	Dir string
	// Bare reports whether the repository has no work tree.
	Bare bool
	// Home is the isolated HOME its git commands run with.
	Home string
	mu   sync.Mutex
	// when is the last commit date handed out, in Unix seconds. Dates only
	// move forward so hashes are stable and no commit predates its parent.
	when int64
}

// tick advances the clock to at least floor and then by a minute, and
// returns the new date.
func (r *Repo) tick(floor int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.when = max(r.when, floor) + 60
	return r.when
}

// Init creates a repository with a work tree on DefaultBranch in dir.
func Init(t testing.TB, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir, Home: t.TempDir(), when: baseTime}
	Git(t, r.Home, "", "init", "-q", "-b", DefaultBranch, dir)
	return r
}

// NewBare creates a bare repository on DefaultBranch in dir, such as the
// "remote" a test clones and pushes to. Commit and Checkout work on it too,
// through plumbing, which is how a test moves a branch on the server.
func NewBare(t testing.TB, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir, Bare: true, Home: t.TempDir(), when: baseTime}
	Git(t, r.Home, "", "init", "-q", "--bare", "-b", DefaultBranch, dir)
	return r
}

// Clone clones url into dir with a work tree. url may carry credentials.
func Clone(t testing.TB, url, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir, Home: t.TempDir(), when: baseTime}
	Git(t, r.Home, "", "clone", "-q", url, dir)
	return r
}

// Open wraps an existing repository, for example one that the code under
// test created.
func Open(t testing.TB, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir, Home: t.TempDir(), when: baseTime}
	r.Bare = r.Run(t, "rev-parse", "--is-bare-repository") == "true"
	return r
}

// Run runs git with args in the repository and returns its trimmed stdout.
// Commits it creates (merge, cherry-pick) get the next fixed date.
func (r *Repo) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := r.RunErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunErr is Run for commands expected to fail: it returns the error (an
// *Error holding git's stderr) instead of failing the test.
func (r *Repo) RunErr(args ...string) (string, error) {
	out, err := r.run(nil, nil, args...)
	return strings.TrimSpace(out), err
}

// run runs git with stdin and extra environment, returning raw stdout.
func (r *Repo) run(stdin []byte, extraEnv []string, args ...string) (string, error) {
	date := strconv.FormatInt(r.tick(0), 10) + " +0000"
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(Env(r.Home), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	cmd.Env = append(cmd.Env, extraEnv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &Error{Args: args, Dir: r.Dir, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.String(), nil
}

// Commit writes files (path -> content; the Delete marker removes the
// path) and commits them with msg on the current branch, together with
// anything already staged. It returns the new commit's hash. Commits with
// no changes are allowed, so a test can add history without content.
func (r *Repo) Commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	r.catchUp(t)
	if r.Bare {
		return r.commitBare(t, msg, files)
	}
	paths := slices.Sorted(maps.Keys(files))
	for _, p := range paths {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if files[p] == Delete {
			if err := os.Remove(full); err != nil {
				t.Fatalf("gitfixture: delete %s: %v", p, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatalf("gitfixture: %v", err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			t.Fatalf("gitfixture: %v", err)
		}
	}
	if len(paths) > 0 {
		r.Run(t, append([]string{"add", "-A", "--"}, paths...)...)
	}
	r.Run(t, "commit", "-q", "--allow-empty", "-m", msg)
	return r.Head(t)
}

// commitBare commits through a temporary index, since a bare repository
// has neither a work tree nor an index of its own.
func (r *Repo) commitBare(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(t.TempDir(), "index")}
	parent, err := r.RunErr("rev-parse", "-q", "--verify", "HEAD^{commit}")
	if err == nil {
		if _, err := r.run(nil, env, "read-tree", parent); err != nil {
			t.Fatal(err)
		}
	}
	var info strings.Builder
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if files[p] == Delete {
			// Mode 0 removes the entry (git update-index --index-info).
			fmt.Fprintf(&info, "0 %s\t%s\n", strings.Repeat("0", 40), p)
			continue
		}
		blob, err := r.run([]byte(files[p]), nil, "hash-object", "-w", "--stdin")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&info, "100644 %s\t%s\n", strings.TrimSpace(blob), p)
	}
	if _, err := r.run([]byte(info.String()), env, "update-index", "--index-info"); err != nil {
		t.Fatal(err)
	}
	tree, err := r.run(nil, env, "write-tree")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"commit-tree", strings.TrimSpace(tree), "-m", msg}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	commit := r.Run(t, args...)
	// update-ref follows HEAD to its branch, creating it if unborn.
	r.Run(t, "update-ref", "HEAD", commit)
	return commit
}

// catchUp moves the clock past HEAD's commit date, so a commit on top of
// history fetched from elsewhere never predates its parent.
func (r *Repo) catchUp(t testing.TB) {
	t.Helper()
	out, err := r.RunErr("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return // unborn branch
	}
	if ct, err := strconv.ParseInt(out, 10, 64); err == nil {
		r.tick(ct)
	}
}

// Head returns the hash of the commit HEAD points to.
func (r *Repo) Head(t testing.TB) string {
	t.Helper()
	return r.Run(t, "rev-parse", "HEAD")
}

// Branch creates branch name at HEAD without switching to it.
func (r *Repo) Branch(t testing.TB, name string) {
	t.Helper()
	r.Run(t, "branch", name)
}

// Checkout switches to ref. In a bare repository it points HEAD at branch
// ref, so that the next Commit lands there.
func (r *Repo) Checkout(t testing.TB, ref string) {
	t.Helper()
	if r.Bare {
		r.Run(t, "symbolic-ref", "HEAD", "refs/heads/"+strings.TrimPrefix(ref, "refs/heads/"))
		return
	}
	r.Run(t, "checkout", "-q", ref)
}

// Push pushes refspecs to remote (a remote name, a URL or a path).
func (r *Repo) Push(t testing.TB, remote string, refspecs ...string) {
	t.Helper()
	r.Run(t, append([]string{"push", "-q", remote}, refspecs...)...)
}

// Rename moves file from to path to in one commit and returns its hash:
// the upstream change that most often collides with a fork's carry.
func (r *Repo) Rename(t testing.TB, from, to string) string {
	t.Helper()
	content, err := r.run(nil, nil, "cat-file", "blob", "HEAD:"+from)
	if err != nil {
		t.Fatal(err)
	}
	return r.Commit(t, fmt.Sprintf("Rename %s to %s", from, to), map[string]string{from: Delete, to: content})
}

// Tag creates annotated tag name at HEAD. Annotated, because Kubernetes'
// version stamping runs `git describe`, which ignores lightweight tags.
func (r *Repo) Tag(t testing.TB, name string) {
	t.Helper()
	r.Run(t, "tag", "-a", "-m", name, name)
}

// Count returns the number of commits reachable from rev
// (git rev-list --count).
func (r *Repo) Count(t testing.TB, rev string) int {
	t.Helper()
	n, err := strconv.Atoi(r.Run(t, "rev-list", "--count", rev))
	if err != nil {
		t.Fatalf("gitfixture: rev-list --count %s: %v", rev, err)
	}
	return n
}
