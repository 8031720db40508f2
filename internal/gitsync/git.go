// Package gitsync keeps fork branches current with their upstream branches:
// ls-remote, a persistent bare mirror, three-way merges without a work tree
// (git merge-tree --write-tree), push with a lease, and the analysis a person
// needs to finish a conflicted merge.
//
// The git CLI does the heavy lifting. go-git has no three-way merge and needs
// gigabytes of memory on a repository the size of Kubernetes, and a merge
// algorithm written here would be wrong in ways git's is not.
package gitsync

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Remote is a repository hyperfork talks to.
type Remote struct {
	// Name is "upstream" or "fork", for messages.
	Name string
	// URL is where the repository is; credentials never appear in it.
	URL string
	// Token authenticates HTTPS requests when set. It travels in an HTTP
	// header set through the environment, never on the command line.
	Token string
}

// authEnv returns the environment that makes git send the token to this
// remote. GIT_CONFIG_COUNT keeps it out of argv, where ps could show it.
func (r Remote) authEnv() []string {
	if r.Token == "" || !strings.HasPrefix(r.URL, "http") {
		return nil
	}
	cred := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + r.Token))
	return []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + cred,
	}
}

// Git runs git commands in one repository.
type Git struct {
	// Dir is the repository (a bare mirror, usually).
	Dir      string
	Redactor *exec.Redactor
	// Identity is the author and committer of merge commits.
	Identity Identity
}

// Identity is a git author or committer.
type Identity struct {
	Name  string
	Email string
}

// DefaultIdentity is used when no identity is configured.
var DefaultIdentity = Identity{Name: "hyperfork", Email: "hyperfork@localhost"}

// baseEnv keeps runs hermetic: no prompts, no user or system config that
// could change merge results, and a fixed locale so output parses. It is
// added on top of exec.BaseEnv, which passes no GIT_* variable of the
// caller's: run from a git hook or `git rebase -x`, hyperfork would
// otherwise read and write the caller's repository (GIT_DIR,
// GIT_OBJECT_DIRECTORY, …) instead of the mirror.
func (g *Git) baseEnv() []string {
	id := g.Identity
	if id.Name == "" {
		id = DefaultIdentity
	}
	return append(caEnv(os.Getenv), []string{
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/true",
		"SSH_ASKPASS=/bin/true",
		"GIT_SSH_COMMAND=" + sshCommand(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		// The system gitattributes could change merges and exports.
		"GIT_ATTR_NOSYSTEM=1",
		"LC_ALL=C",
		"GIT_AUTHOR_NAME=" + id.Name,
		"GIT_AUTHOR_EMAIL=" + id.Email,
		"GIT_COMMITTER_NAME=" + id.Name,
		"GIT_COMMITTER_EMAIL=" + id.Email,
	}...)
}

// caEnv makes git trust the certificate authorities the user named in
// SSL_CERT_FILE and SSL_CERT_DIR, the variables exec.BaseEnv passes for
// that: Debian's git talks HTTPS through libcurl-gnutls, which reads neither,
// and the caller's own GIT_SSL_CAINFO is not passed on.
func caEnv(getenv func(string) string) []string {
	var env []string
	if f := getenv("SSL_CERT_FILE"); f != "" {
		env = append(env, "GIT_SSL_CAINFO="+f)
	}
	if d := getenv("SSL_CERT_DIR"); d != "" {
		env = append(env, "GIT_SSL_CAPATH="+d)
	}
	return env
}

// sshCommand keeps SSH non-interactive; the user's agent still provides
// keys, and ~/.ssh/config still names hosts. A GIT_SSH_COMMAND of the
// caller's is not honoured: it could carry options (a ProxyCommand, another
// identity) that make a run behave differently on one machine.
func sshCommand() string {
	return "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
}

// run runs git with args in g.Dir, authenticating to remote when given.
func (g *Git) run(ctx context.Context, remote *Remote, args ...string) (string, error) {
	env := g.baseEnv()
	if remote != nil {
		env = append(env, remote.authEnv()...)
	}
	full := append([]string{"-C", g.Dir}, args...)
	out, err := exec.Run(ctx, exec.Cmd{Name: "git", Args: full, Env: env, Redactor: g.Redactor})
	return string(out), err
}

// runStdin is run with standard input.
func (g *Git) runStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	full := append([]string{"-C", g.Dir}, args...)
	out, err := exec.Run(ctx, exec.Cmd{Name: "git", Args: full, Env: g.baseEnv(), Redactor: g.Redactor, Stdin: strings.NewReader(stdin)})
	return string(out), err
}

// EnsureBare creates a bare repository at dir if there is none.
func EnsureBare(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create repository %s: %w", dir, err)
	}
	// Through run, with the environment every other git command gets: a
	// caller's GIT_DIR would otherwise make init and config act on the
	// caller's repository.
	g := &Git{Dir: dir}
	if _, err := g.run(ctx, nil, "init", "--quiet", "--bare"); err != nil {
		return fmt.Errorf("create repository %s: %w", dir, err)
	}
	// A commit-graph keeps merge-base and ancestry checks fast on a
	// Kubernetes-sized history; gc would repack the mirror at random times.
	for _, kv := range [][2]string{{"fetch.writeCommitGraph", "true"}, {"gc.auto", "0"}, {"core.commitGraph", "true"}} {
		if _, err := g.run(ctx, nil, "config", kv[0], kv[1]); err != nil {
			return fmt.Errorf("configure repository %s: %w", dir, err)
		}
	}
	return nil
}

// hasCommit reports whether the repository holds the commit object.
func (g *Git) hasCommit(ctx context.Context, commit string) bool {
	if commit == "" {
		return false
	}
	_, err := g.run(ctx, nil, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// haveCommits reports which of commits the repository holds, in one
// process however many there are. A failure to ask counts as holding none,
// so the caller fetches.
func (g *Git) haveCommits(ctx context.Context, commits []string) map[string]bool {
	have := make(map[string]bool, len(commits))
	asked := slices.DeleteFunc(dedupe(commits), func(c string) bool { return c == "" })
	var in strings.Builder
	for _, c := range asked {
		in.WriteString(c + "^{commit}\n")
	}
	if len(asked) == 0 {
		return have
	}
	// One answer line per question, in order: "commit", or "<question> missing".
	out, err := g.runStdin(ctx, in.String(), "cat-file", "--batch-check=%(objecttype)")
	if err != nil {
		return have
	}
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if i < len(asked) {
			have[asked[i]] = line == "commit"
		}
	}
	return have
}

// isAncestor reports whether a is an ancestor of (or equal to) b. An error
// is not an answer: it is what git says when the repository lacks a or b.
func (g *Git) isAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := g.run(ctx, nil, "merge-base", "--is-ancestor", a, b)
	if err == nil {
		return true, nil
	}
	var re *exec.RunError
	if errors.As(err, &re) && re.ExitCode() == 1 {
		return false, nil
	}
	return false, err
}

// count returns the number of commits in the range.
func (g *Git) count(ctx context.Context, args ...string) (int, error) {
	out, err := g.run(ctx, nil, append([]string{"rev-list", "--count"}, args...)...)
	if err != nil {
		return 0, err
	}
	var n int
	_, err = fmt.Sscan(strings.TrimSpace(out), &n)
	return n, err
}

// leftRight returns the number of commits only a has and the number only b
// has, in one walk: zero on the right means b is in a's history, zero on
// the left that a is in b's.
func (g *Git) leftRight(ctx context.Context, a, b string) (left, right int, err error) {
	out, err := g.run(ctx, nil, "rev-list", "--left-right", "--count", a+"..."+b)
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscan(strings.TrimSpace(out), &left, &right); err != nil {
		return 0, 0, fmt.Errorf("read the output of rev-list --left-right --count %s...%s, %q: %w", short(a), short(b), out, err)
	}
	return left, right, nil
}

// Maintain repacks the mirror and drops unreachable objects older than git's
// default expiry. Runs keep gc.auto off so that no repack starts in the
// middle of a merge; the prune target calls this instead.
func (g *Git) Maintain(ctx context.Context) error {
	// gc rewrites packed-refs, packs and the commit-graph: a sync's fetch
	// at the same time would collide with it as two fetches once did.
	return g.withWriteLock(ctx, func() error {
		if _, err := g.run(ctx, nil, "gc", "--quiet"); err != nil {
			return fmt.Errorf("repack mirror %s: %w", g.Dir, err)
		}
		return nil
	})
}
