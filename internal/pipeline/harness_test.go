package pipeline_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
)

const (
	tokenUser = "x-access-token"
	token     = "tok-9f8e7d6c5b4a39281706"
)

// world is an upstream and a fork served over smart HTTP with basic auth,
// plus work trees to change them, and a config that points at both.
type world struct {
	t        *testing.T
	dir      string
	srv      *gitserver.Server
	up       *gitfixture.Repo // work tree pushing to upstream.git
	fork     *gitfixture.Repo // work tree pushing to fork.git
	upBare   string
	forkBare string
	env      map[string]string
	yaml     string // extra YAML appended to the config
	notify   string // extra entries of notify:
	branches string // the branches: block
	forkURL  string
	upURL    string
	store    string // state.store; default "state", a folder beside the config
	workDir  string // state.workDir; default the state folder
	lease    string // state.lease; default 2m
}

func (w *world) storeOr() string { return or(w.store, "state") }
func (w *world) workDirOr() string {
	switch {
	case w.workDir != "":
		return w.workDir
	case strings.HasPrefix(w.store, "s3://"):
		return "work"
	}
	return w.storeOr()
}
func (w *world) leaseOr() string { return or(w.lease, "2m") }

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// newWorld makes upstream with master and release-1.0, and a fork that
// carries one commit on each.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, map[string]string{"README.md": "kubernetes\n", "pkg/a.go": "package a\n\nconst A = 1\n", "pkg/b.go": "package b\n\nconst B = 1\n", "docs/x.md": "x\n"})
}

// newWorldWith is newWorld with the given files in upstream's first commit,
// which is tagged v1.0.0.
func newWorldWith(t *testing.T, initial map[string]string) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), env: map[string]string{"UP_TOKEN": token, "FORK_TOKEN": token}}
	srvRoot := filepath.Join(w.dir, "srv")
	w.upBare, w.forkBare = filepath.Join(srvRoot, "upstream.git"), filepath.Join(srvRoot, "fork.git")
	gitfixture.NewBare(t, w.upBare)
	gitfixture.NewBare(t, w.forkBare)
	w.srv = gitserver.Start(t, srvRoot, gitserver.WithBasicAuth(tokenUser, token))
	w.upURL, w.forkURL = w.srv.URL("upstream.git"), w.srv.URL("fork.git")

	w.up = gitfixture.Init(t, filepath.Join(w.dir, "up"))
	w.up.Commit(t, "initial", initial)
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
	w.branches = "branches:\n  - name: master\n  - name: release-1.0\n"
	return w
}

// config writes branches.yaml and returns its path.
func (w *world) config() string {
	w.t.Helper()
	y := fmt.Sprintf(`apiVersion: hyperfork.dev/v1alpha1
kind: Pipeline
upstream:
  url: %s
  tokenEnv: UP_TOKEN
fork:
  url: %q
  tokenEnv: FORK_TOKEN
%s
notify:
  - type: file
    dir: notifications
%s
state:
  store: %s
  workDir: %s
  lease: %s
%s`, w.upURL, w.forkURL, w.branches, w.notify, w.storeOr(), w.workDirOr(), w.leaseOr(), w.yaml)
	p := filepath.Join(w.dir, "branches.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// run runs a target the way mage does and returns the exit code, the
// report and everything printed.
func (w *world) run(target string, extraEnv ...string) (int, *report.Report, string) {
	w.t.Helper()
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	env["HYPERFORK_CONFIG"] = w.config()
	env["HYPERFORK_REPORT"] = filepath.Join(w.dir, "report.json")
	env["HYPERFORK_HTML"] = filepath.Join(w.dir, "report.html")
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	os.Remove(env["HYPERFORK_REPORT"])
	var out bytes.Buffer
	code, err := pipeline.Main(context.Background(), target, pipeline.Env{
		Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out})
	if err != nil {
		fmt.Fprintf(&out, "\nerror: %v\n", err)
	}
	b, rerr := os.ReadFile(env["HYPERFORK_REPORT"])
	if rerr != nil {
		w.t.Fatalf("%s wrote no report: %v\n%s", target, rerr, out.String())
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		w.t.Fatal(err)
	}
	if rep.ExitCode != code {
		w.t.Fatalf("report exit code %d, process exit code %d", rep.ExitCode, code)
	}
	if strings.Contains(out.String(), token) || strings.Contains(string(b), token) {
		w.t.Fatalf("the token leaked into the output or the report:\n%s\n%s", out.String(), b)
	}
	return code, &rep, out.String()
}

func (w *world) branch(rep *report.Report, name string) *report.Branch {
	w.t.Helper()
	for _, b := range rep.Branches {
		if b.Name == name {
			return b
		}
	}
	w.t.Fatalf("branch %s missing from the report: %+v", name, rep)
	return nil
}

// forkHead reads a fork branch straight from the served bare repository.
func (w *world) forkHead(branch string) string {
	w.t.Helper()
	return gitfixture.Git(w.t, w.fork.Home, w.forkBare, "rev-parse", "refs/heads/"+branch)
}

// upstreamCommit adds a commit on an upstream branch and pushes it.
func (w *world) upstreamCommit(branch, msg string, files map[string]string) string {
	w.t.Helper()
	w.up.Checkout(w.t, branch)
	h := w.up.Commit(w.t, msg, files)
	w.up.Push(w.t, w.upBare, branch)
	return h
}

// forkCommit adds a carry on a fork branch and pushes it.
func (w *world) forkCommit(branch, msg string, files map[string]string) string {
	w.t.Helper()
	w.fork.Run(w.t, "fetch", "-q", w.forkBare, "+refs/heads/"+branch+":refs/remotes/f/"+branch)
	w.fork.Run(w.t, "checkout", "-q", "-B", branch, "refs/remotes/f/"+branch)
	h := w.fork.Commit(w.t, msg, files)
	w.fork.Push(w.t, w.forkBare, branch)
	return h
}

// notifications returns the messages the file channel wrote.
func (w *world) notifications() []notify.Message {
	w.t.Helper()
	files, _ := filepath.Glob(filepath.Join(w.dir, "notifications", "*.json"))
	var out []notify.Message
	for _, f := range files {
		m, err := notify.ReadFile(f)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func basic(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}
