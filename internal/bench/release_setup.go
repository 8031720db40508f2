package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// The release benchmark's two state stores.
const (
	storeFolder = "folder"
	storeS3     = "s3"
)

// releaseBucket is the bucket the benchmark makes on its S3 server.
const releaseBucket = "hyperfork-bench"

// releaseShape is the generated project: the warm-up builds it once per
// branch, and nothing after that compiles, so it is as small as it gets.
var releaseShape = projectShape{Packages: 3, Files: 1, Funcs: 2}

// releaseWorld is the release benchmark's world: a Go project in an
// upstream and a fork with the branches, two configs that differ only in
// their state store, a loopback registry, versitygw, and buildkitd for the
// warm-up.
type releaseWorld struct {
	o         ReleaseOptions
	platform  string
	src       string // work tree: commits are made here and pushed
	upstream  string // bare
	fork      string // bare, upstream's branches plus a carry each
	upURL     string // file:// URLs of both, as the configs name them
	forkURL   string
	configs   map[string]string // store -> branches.yaml
	reports   map[string]string // store -> HYPERFORK_REPORT
	pipeLog   string            // everything hyperfork printed, every run
	upHeads   map[string]string // branch -> commit, as set up
	forkHeads map[string]string
	commits   int // commits made so far, to date the next one
	daemon    *build.Daemon
	buildkit  string // BUILDKIT_HOST of every run, also once the daemon is stopped
	stopReg   func()
	s3        *s3Server
	unsetAWS  func()
}

// setupRelease makes the world. On error it returns what it made so far,
// for close.
func setupRelease(ctx context.Context, o ReleaseOptions, res *ReleaseResult) (*releaseWorld, error) {
	moduleDir, err := moduleRoot(o.ModuleDir)
	if err != nil {
		return nil, err
	}
	o.ModuleDir = moduleDir
	res.Options.ModuleDir = moduleDir
	wd := o.WorkDir
	rw := &releaseWorld{
		o:         o,
		platform:  "linux/" + runtime.GOARCH,
		src:       filepath.Join(wd, "src"),
		upstream:  filepath.Join(wd, "upstream.git"),
		fork:      filepath.Join(wd, "fork.git"),
		configs:   map[string]string{},
		reports:   map[string]string{},
		pipeLog:   filepath.Join(wd, "pipeline.log"),
		upHeads:   map[string]string{},
		forkHeads: map[string]string{},
	}
	rw.upURL, rw.forkURL = "file://"+rw.upstream, "file://"+rw.fork
	res.Platform = rw.platform
	log := o.Logger

	log.Info("generating project and repositories", "branches", o.Branches)
	start := time.Now()
	if err := generateProject(rw.src, releaseShape); err != nil {
		return nil, err
	}
	if err := rw.initRepos(ctx); err != nil {
		return nil, err
	}
	res.Generate = time.Since(start)

	host, stop, err := ocitest.ServeRegistry()
	if err != nil {
		return nil, err
	}
	rw.stopReg = stop
	log.Info("pushing the Go builder image", "registry", host)
	start = time.Now()
	builder, err := ocitest.PushGoBuilderImageTo(host)
	if err != nil {
		return rw, err
	}
	res.PushBuilder = time.Since(start)

	start = time.Now()
	rw.s3, err = startS3Server(ctx, moduleDir, filepath.Join(wd, "s3server"), log)
	if err != nil {
		return rw, err
	}
	if err := rw.s3.makeBucket(ctx, releaseBucket); err != nil {
		return rw, err
	}
	res.StartS3 = time.Since(start)
	// The AWS SDK reads its endpoint and keys from the process
	// environment only; close restores it.
	rw.unsetAWS = setProcessEnv(rw.s3.env(rw.s3.endpoint))

	for _, st := range []string{storeFolder, storeS3} {
		if err := rw.writeConfig(st, builder, host); err != nil {
			return rw, err
		}
	}

	log.Info("starting a fresh buildkitd for the warm-up", "state", filepath.Join(wd, "buildkit"))
	start = time.Now()
	rw.daemon, err = build.StartDaemon(ctx, build.DaemonOptions{StateDir: filepath.Join(wd, "buildkit"), ModuleDir: moduleDir, Logger: log})
	if err != nil {
		return rw, fmt.Errorf("start buildkitd for the release benchmark's warm-up: %w", err)
	}
	rw.buildkit = rw.daemon.Addr()
	res.StartDaemon = time.Since(start)
	return rw, nil
}

// stopDaemon stops buildkitd once the warm-up has built everything. The
// runs keep BUILDKIT_HOST at its address: a no-op release never contacts
// BuildKit, and one that did would now fail and be caught.
func (rw *releaseWorld) stopDaemon() error {
	if rw.daemon == nil {
		return nil
	}
	err := rw.daemon.Close()
	rw.daemon = nil
	return err
}

func (rw *releaseWorld) close() {
	if err := rw.stopDaemon(); err != nil {
		rw.o.Logger.Warn("stop buildkitd", "err", err)
	}
	if rw.unsetAWS != nil {
		rw.unsetAWS()
	}
	rw.s3.close()
	if rw.stopReg != nil {
		rw.stopReg()
	}
}

// initRepos commits the project on the first branch, tags it v1.0.0, and
// makes every other branch from it with an upstream commit of its own, so
// that no two branches share a commit (each is built once). Upstream gets
// the branches; the fork gets each with one carry on top, as a fork that is
// up to date with upstream has.
func (rw *releaseWorld) initRepos(ctx context.Context) error {
	base := rw.o.Branches[0]
	for _, bare := range []string{rw.upstream, rw.fork} {
		if _, err := rw.git(ctx, "", "init", "--quiet", "--bare", "--initial-branch="+base, bare); err != nil {
			return err
		}
	}
	if _, err := rw.git(ctx, "", "init", "--quiet", "--initial-branch="+base, rw.src); err != nil {
		return err
	}
	if err := rw.commit(ctx, "generated project"); err != nil {
		return err
	}
	if _, err := rw.git(ctx, rw.src, "tag", "v1.0.0"); err != nil {
		return err
	}
	for _, bare := range []string{rw.upstream, rw.fork} {
		if _, err := rw.git(ctx, rw.src, "push", "--quiet", bare, "refs/tags/v1.0.0"); err != nil {
			return err
		}
	}
	for i, b := range rw.o.Branches {
		if i > 0 {
			if _, err := rw.git(ctx, rw.src, "checkout", "--quiet", "-B", b, "v1.0.0"); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(rw.src, "RELEASE"), []byte(b+"\n"), 0o644); err != nil {
				return err
			}
			if err := rw.commit(ctx, "upstream: start "+b); err != nil {
				return err
			}
		}
		if _, err := rw.git(ctx, rw.src, "push", "--quiet", rw.upstream, "HEAD:refs/heads/"+b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(rw.src, "CARRY"), []byte("company patch on "+b+"\n"), 0o644); err != nil {
			return err
		}
		if err := rw.commit(ctx, "carry: company patch on "+b); err != nil {
			return err
		}
		if _, err := rw.git(ctx, rw.src, "push", "--quiet", rw.fork, "HEAD:refs/heads/"+b); err != nil {
			return err
		}
	}
	var err error
	if rw.upHeads, err = rw.heads(ctx, rw.upstream); err != nil {
		return err
	}
	rw.forkHeads, err = rw.heads(ctx, rw.fork)
	return err
}

// heads returns the commit of every branch in a bare repository.
func (rw *releaseWorld) heads(ctx context.Context, bare string) (map[string]string, error) {
	out := map[string]string{}
	for _, b := range rw.o.Branches {
		h, err := rw.git(ctx, bare, "rev-parse", "refs/heads/"+b)
		if err != nil {
			return nil, err
		}
		out[b] = h
	}
	return out, nil
}

// commit commits every change in the work tree with a fixed date per commit.
func (rw *releaseWorld) commit(ctx context.Context, msg string) error {
	if _, err := rw.git(ctx, rw.src, "add", "--all"); err != nil {
		return err
	}
	date := time.Date(2025, 1, 1, rw.commits, 0, 0, 0, time.UTC).Format(time.RFC3339)
	rw.commits++
	_, err := rw.run(ctx, rw.src, append(gitEnv(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date), "git", "commit", "--quiet", "-m", msg)
	return err
}

// writeConfig writes the branches.yaml of a store, in a folder of its own
// with images/ beside it: every branch built for this machine's platform
// into the loopback registry, test and publish as the defaults leave them.
// With state in S3 the mirror goes to a local work folder, as it must.
func (rw *releaseWorld) writeConfig(st, builder, registryHost string) error {
	dir := filepath.Join(rw.o.WorkDir, st)
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return err
	}
	img := "name: project\nbase: scratch\nbinaries: [" + strings.Join(projectCommands, ", ") + "]\nentrypoint: [/usr/local/bin/a]\n"
	if err := os.WriteFile(filepath.Join(dir, "images", "project.yaml"), []byte(img), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: hyperfork.dev/v1alpha1\nkind: Pipeline\nupstream:\n  url: %q\nfork:\n  url: %q\nbranches:\n", rw.upURL, rw.forkURL)
	for _, br := range rw.o.Branches {
		fmt.Fprintf(&b, "  - name: %q\n", br)
	}
	var targets []string
	for _, c := range projectCommands {
		targets = append(targets, strconv.Quote("./cmd/"+c))
	}
	fmt.Fprintf(&b, "build:\n  builderImage: %q\n  platforms: [%q]\n  targets: [%s]\n  testTargets: []\n  images: [images/project.yaml]\n", builder, rw.platform, strings.Join(targets, ", "))
	// A test command that passes: the warm-up tests every candidate once,
	// so the measured releases find the test stage processed too.
	fmt.Fprintf(&b, "test:\n  runner: exec\n  command: [./e2e.sh]\n")
	if err := os.WriteFile(filepath.Join(dir, "e2e.sh"), []byte(benchE2E), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(&b, "publish:\n  registry: %q\n", registryHost+"/bench/release-"+st)
	if st == storeS3 {
		fmt.Fprintf(&b, "state:\n  store: %q\n  workDir: work\n", "s3://"+releaseBucket+"/state")
	} else {
		fmt.Fprintf(&b, "state:\n  store: state\n")
	}
	rw.configs[st] = filepath.Join(dir, "branches.yaml")
	rw.reports[st] = filepath.Join(dir, "report.json")
	return os.WriteFile(rw.configs[st], []byte(b.String()), 0o644)
}

// git runs git in dir (empty: the working directory) with gitEnv.
func (rw *releaseWorld) git(ctx context.Context, dir string, args ...string) (string, error) {
	return rw.run(ctx, dir, gitEnv(), "git", args...)
}

// run runs a command in dir with env and returns its trimmed stdout.
func (rw *releaseWorld) run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	rw.o.Logger.Debug("ran", "cmd", name+" "+strings.Join(args, " "), "took", time.Since(start))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// benchE2E is the release benchmark's test command: one passing spec.
const benchE2E = `#!/bin/sh
echo '<testsuite name="bench"><testcase name="[It] bench" classname="bench" status="passed"></testcase></testsuite>' > "$HYPERFORK_ARTIFACTS/junit.xml"
`
