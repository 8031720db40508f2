package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
	"github.com/hyperfork/hyperfork/internal/testutil/gitserver"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

const (
	tokenUser = "x-access-token"
	token     = "tok-reliability-5b4a39281706"
	// lease is state.lease in these worlds: a killed run's lock must be
	// free this long after the kill, plus the S3 lease's slack.
	lease = 3 * time.Second
	// leaseSlack is what a taker adds before it judges a lock expired
	// (store's clockSlack) plus the one-second resolution of S3's
	// Last-Modified and Date, plus a margin for a loaded machine.
	leaseSlack = 3500 * time.Millisecond
)

// goProject is a small Go module with two commands that print the version
// stamped into them, and an e2e suite the build compiles with go test -c.
var goProject = map[string]string{
	"go.mod":               "module example.com/kube\n\ngo 1.22\n",
	"cmd/alpha/main.go":    "package main\n\nimport \"fmt\"\n\nvar version, commit, date string\n\nfunc main() { fmt.Println(\"alpha\", version, commit, date) }\n",
	"cmd/beta/main.go":     "package main\n\nimport \"fmt\"\n\nvar version string\n\nfunc main() { fmt.Println(\"beta\", version) }\n",
	"test/e2e/e2e_test.go": "package e2e\n\nimport \"testing\"\n\nfunc TestE2E(t *testing.T) { t.Log(\"e2e ran\") }\n",
}

// e2eScript is test.command: it runs the candidate's own binaries and
// writes JUnit, and appends each passed candidate to tested.txt beside it,
// the test's own record of which digests passed. With a file HOLD beside
// it, it says so in RUNNING and waits to be killed instead; with a file
// PAUSE, it says so in RUNNING and goes on when PAUSE is gone.
const e2eScript = `#!/bin/sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -e "$here/HOLD" ]; then : > "$here/RUNNING"; exec sleep 300; fi
if [ -e "$here/PAUSE" ]; then : > "$here/RUNNING"; while [ -e "$here/PAUSE" ]; do sleep 0.1; done; rm -f "$here/RUNNING"; fi
out=$("$HYPERFORK_BINDIR/alpha")
"$HYPERFORK_BINDIR/e2e.test" -test.run TestE2E >/dev/null
case "$out" in *"$HYPERFORK_VERSION"*) ;; *) echo "alpha printed $out, not $HYPERFORK_VERSION"; exit 1;; esac
echo "testing $HYPERFORK_IMAGE on $HYPERFORK_BRANCH at $HYPERFORK_COMMIT"
cat > "$HYPERFORK_ARTIFACTS/junit_01.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="Kubernetes e2e suite" tests="2">
<testcase name="[It] alpha prints the candidate's version" classname="Kubernetes e2e suite" status="passed" time="0.01"></testcase>
<testcase name="[It] beta works" classname="Kubernetes e2e suite" status="passed" time="0.01"></testcase>
</testsuite></testsuites>
XML
echo "$HYPERFORK_IMAGE passed" >> "$here/tested.txt"
`

// world is one company's fork: upstream and fork repositories served over
// smart HTTP (behind a proxy the test can hold fetches in), a repository
// in the shared registry, a bucket for state and logs, a webhook receiver,
// and the config that ties them together.
type world struct {
	t        *testing.T
	name     string
	dir      string
	srv      *gitserver.Server
	git      *gitProxy
	up, fork *gitfixture.Repo
	upBare   string
	forkBare string
	bucket   string
	repo     string // publish.registry
	hook     *receiver
	s3       *s3test.Server
	env      []string
	// registry, when set, is the host the config names for publishing
	// instead of the shared registry's (an outage front for it).
	registry string
	// workDir is state.workDir, the runner's own; default dir/work.
	workDir string
	yaml    string // appended to the config
	runs    atomic.Int64
}

func newWorld(t *testing.T, s *servers, name string) *world {
	t.Helper()
	return newWorldOn(t, s, s.s3, name)
}

// newWorldOn is newWorld with its state and logs on the S3 server s3.
func newWorldOn(t *testing.T, s *servers, s3 *s3test.Server, name string) *world {
	t.Helper()
	w := &world{t: t, name: name, dir: t.TempDir(), bucket: "hf-" + name, s3: s3}
	root := filepath.Join(w.dir, "srv")
	w.upBare, w.forkBare = filepath.Join(root, "upstream.git"), filepath.Join(root, "fork.git")
	gitfixture.NewBare(t, w.upBare)
	gitfixture.NewBare(t, w.forkBare)
	w.srv = gitserver.Start(t, root, gitserver.WithBasicAuth(tokenUser, token))
	w.git = startGitProxy(t, strings.TrimSuffix(w.srv.URL(""), "/"))

	w.up = gitfixture.Init(t, filepath.Join(w.dir, "up"))
	w.up.Commit(t, "initial", goProject)
	w.up.Tag(t, "v1.0.0")
	w.up.Push(t, w.upBare, "master", "v1.0.0")
	w.fork = gitfixture.Clone(t, w.upBare, filepath.Join(w.dir, "fork"))
	w.fork.Commit(t, "carry: company patch", map[string]string{"company/patch.go": "package company\n"})
	w.fork.Push(t, w.forkBare, "master")

	s3.MakeBucket(w.bucket)
	w.repo = s.registry + "/" + name + "/hyperkube"
	w.hook = startReceiver(t)
	img := "name: hyperkube\nbase: scratch\nhyperkube: true\nbinaries: [alpha, beta]\nentrypoint: [/usr/local/bin/hyperkube]\n"
	os.MkdirAll(filepath.Join(w.dir, "images"), 0o755)
	for p, body := range map[string]string{"images/hyperkube.yaml": img, "e2e.sh": e2eScript} {
		if err := os.WriteFile(filepath.Join(w.dir, p), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.env = append(s3.Env(), "UP_TOKEN="+token, "FORK_TOKEN="+token, "BUILDKIT_HOST="+s.buildkit,
		"HOOK_URL="+w.hook.url, "HYPERFORK_BRANCHES=", "HYPERFORK_FORCE=", targetEnv+"=")
	w.yaml = fmt.Sprintf(`build:
  builderImage: %s
  platforms: [linux/amd64]
  targets: [./cmd/alpha, ./cmd/beta]
  ldflags: ["-X main.version={{.Version}}", "-X main.commit={{.Commit}}"]
  images: [%s]
  testTargets: [./test/e2e]
  testCommands: []
test:
  runner: exec
  command: [%s]
  timeout: 2m
  retries: 0
`, s.builder, filepath.Join(w.dir, "images", "hyperkube.yaml"), filepath.Join(w.dir, "e2e.sh"))
	return w
}

// config writes the config of the runner with w.workDir and returns its
// path. Every path in it but the work folder is absolute, so runners with
// their own work folders share the rest.
func (w *world) config() string {
	w.t.Helper()
	repo := w.repo
	if w.registry != "" {
		_, path, _ := strings.Cut(repo, "/")
		repo = w.registry + "/" + path
	}
	work := w.workDir
	if work == "" {
		work = filepath.Join(w.dir, "work")
	}
	y := fmt.Sprintf(`apiVersion: hyperfork.dev/v1alpha1
kind: Pipeline
upstream:
  url: %s/upstream.git
  tokenEnv: UP_TOKEN
fork:
  url: %s/fork.git
  tokenEnv: FORK_TOKEN
branches:
  - name: master
publish:
  registry: %s
  keep: 2
  keepCandidates: 1s
logs:
  store: s3://%s/logs
  keep: 2
notify:
  - type: file
    dir: %s
  - type: webhook
    urlEnv: HOOK_URL
state:
  store: s3://%s/state
  workDir: %s
  lease: %s
%s`, w.git.url, w.git.url, repo, w.bucket, filepath.Join(w.dir, "notifications"), w.bucket, work, lease, w.yaml)
	p := filepath.Join(w.dir, "branches-"+filepath.Base(work)+".yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// upstreamCommit adds a commit on upstream's master and pushes it.
func (w *world) upstreamCommit(msg string, files map[string]string) string {
	w.t.Helper()
	h := w.up.Commit(w.t, msg, files)
	w.up.Push(w.t, w.upBare, "master")
	return h
}

// forkCommit adds a carry on the fork's master and pushes it.
func (w *world) forkCommit(msg string, files map[string]string) string {
	w.t.Helper()
	w.fork.Run(w.t, "fetch", "-q", w.forkBare, "+refs/heads/master:refs/remotes/f/master")
	w.fork.Run(w.t, "checkout", "-q", "-B", "master", "refs/remotes/f/master")
	h := w.fork.Commit(w.t, msg, files)
	w.fork.Push(w.t, w.forkBare, "master")
	return h
}

// commitOf is the fork commit a message is about: the announcement's, the
// conflict's or the failed build's.
func commitOf(m notify.Message) string {
	switch {
	case m.ForkCommit != "":
		return m.ForkCommit
	case m.Sync != nil && m.Sync.ForkCommit != "":
		return m.Sync.ForkCommit
	case m.Build != nil:
		return m.Build.Commit
	}
	return ""
}

// forkHead reads the fork's master straight from the served repository.
func (w *world) forkHead() string {
	w.t.Helper()
	return gitfixture.Git(w.t, w.fork.Home, w.forkBare, "rev-parse", "refs/heads/master")
}

// stateStore is the world's S3 state.
func (w *world) stateStore() store.Backend {
	w.t.Helper()
	st, err := store.Open(context.Background(), "s3://"+w.bucket+"/state", store.S3Options{Endpoint: w.s3.Endpoint})
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// state reads the branch's record from the world's S3 state.
func (w *world) state() store.BranchState {
	w.t.Helper()
	bs, err := store.LoadBranch(context.Background(), w.stateStore(), "master")
	if err != nil {
		w.t.Fatal(err)
	}
	return bs
}

// logs is the world's logs.store.
func (w *world) logs() store.Backend {
	w.t.Helper()
	st, err := store.Open(context.Background(), "s3://"+w.bucket+"/logs", store.S3Options{Endpoint: w.s3.Endpoint})
	if err != nil {
		w.t.Fatal(err)
	}
	return st
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

// tested returns the digests e2e.sh saw pass.
func (w *world) tested() map[string]bool {
	b, _ := os.ReadFile(filepath.Join(w.dir, "tested.txt"))
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		ref, result, _ := strings.Cut(line, " ")
		if _, d, ok := strings.Cut(ref, "@"); ok && result == "passed" {
			out[d] = true
		}
	}
	return out
}
