// Package gitfixture builds git repositories for tests with the git CLI:
// small hand-written histories through Repo, and large generated ones for
// benchmarks through Generate, which streams into `git fast-import`.
//
// Every git command runs in an isolated environment (no system or user
// config, no credential prompts, C locale) with fixed author and committer
// identities and dates, so the same steps produce the same hashes on every
// machine and a developer's ~/.gitconfig cannot change an outcome.
package gitfixture

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Identity used for every commit and tag the package creates.
const (
	AuthorName  = "Hyperfork Fixture"
	AuthorEmail = "fixture@hyperfork.invalid"
)

// Env returns an environment for running git in tests: the process
// environment without any GIT_* variable (a test run from a git hook would
// otherwise inherit GIT_DIR), with HOME set to home, no system config, the
// global config at home/.gitconfig, no terminal or askpass prompts (a prompt
// would hang the test instead of failing it), and the C locale so tests can
// match git's English messages.
func Env(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "GIT_"), k == "HOME", k == "XDG_CONFIG_HOME",
			k == "LANG", k == "LANGUAGE", strings.HasPrefix(k, "LC_"),
			k == "SSH_ASKPASS", k == "EMAIL":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"LC_ALL=C",
		"GIT_AUTHOR_NAME="+AuthorName,
		"GIT_AUTHOR_EMAIL="+AuthorEmail,
		"GIT_COMMITTER_NAME="+AuthorName,
		"GIT_COMMITTER_EMAIL="+AuthorEmail,
	)
}

// Isolate applies the environment of Env to the test process with
// t.Setenv, for tests whose code under test runs git itself and inherits
// the process environment. Like t.Setenv it cannot be used in parallel
// tests. It returns the isolated home directory.
func Isolate(t testing.TB) string {
	t.Helper()
	home := t.TempDir()
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
		"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
		"GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_NAMESPACE"} {
		t.Setenv(k, "")
		// An empty GIT_DIR is not the same as none; unset for real, and
		// t.Setenv above has recorded the value to restore.
		_ = os.Unsetenv(k)
	}
	for _, kv := range Env(home) {
		k, v, _ := strings.Cut(kv, "=")
		if os.Getenv(k) != v {
			t.Setenv(k, v)
		}
	}
	return home
}

// Git runs git with args in dir under Env(home) and returns its trimmed
// stdout. A failure fails the test with the command and its stderr.
func Git(t testing.TB, home, dir string, args ...string) string {
	t.Helper()
	out, err := GitErr(home, dir, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// GitErr runs git like Git but returns the error, whose message holds the
// command and git's stderr, for tests that expect git to fail. extraEnv is
// appended to the environment.
func GitErr(home, dir string, extraEnv []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(Env(home), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), &Error{
			Args: args, Dir: dir, Stderr: strings.TrimSpace(stderr.String()), Err: err,
		}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Error is a failed git command. Its message is the command line and git's
// stderr, which is what a test author needs to see.
type Error struct {
	Args   []string
	Dir    string
	Stderr string
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("git %s (in %s): %v\n%s", strings.Join(e.Args, " "), e.Dir, e.Err, e.Stderr)
}

// Unwrap returns the underlying *exec.ExitError.
func (e *Error) Unwrap() error { return e.Err }
