package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// buildWorld is the build benchmark's world: the generated project in a
// work tree, the upstream and fork hyperfork reads, a loopback registry
// holding the Go builder image, a fresh buildkitd, and the host's Go.
type buildWorld struct {
	o         BuildOptions
	shape     projectShape
	src       string // work tree: commits are made here; the host builds here
	upstream  string // bare
	fork      string // bare; hyperfork builds its master
	config    string // hyperfork's branches.yaml
	report    string // HYPERFORK_REPORT
	pipeLog   string // hyperfork's stdout and stderr, BuildKit's progress included
	repo      string // publish.registry
	goBin     string // the host's go, the toolchain the builder image was made from
	hostCache string // the host's GOCACHE, empty before the cold build
	hostOut   string // the host's binaries, <os>_<arch>/ each
	daemon    *build.Daemon
	stopReg   func()
	commits   int    // commits made so far, to date the next one
	ours      peaks  // this process, sampled while hyperfork built
	bkKids    uint64 // BuildMemory.BuildKitChildren
	hostRSS   uint64 // BuildMemory.Host
	// lastGoBuild is BuildTiming.GoBuild of the last hyperfork build.
	lastGoBuild time.Duration
}

// setupBuild makes the world. On error it returns what it made so far, for
// close.
func setupBuild(ctx context.Context, o BuildOptions, res *BuildResult) (*buildWorld, error) {
	moduleDir, err := moduleRoot(o.ModuleDir)
	if err != nil {
		return nil, err
	}
	o.ModuleDir = moduleDir
	wd := o.WorkDir
	bw := &buildWorld{
		o:         o,
		shape:     projectShape{Packages: o.Packages, Files: o.Files, Funcs: o.Funcs},
		src:       filepath.Join(wd, "src"),
		upstream:  filepath.Join(wd, "upstream.git"),
		fork:      filepath.Join(wd, "fork.git"),
		config:    filepath.Join(wd, "hyperfork", "branches.yaml"),
		report:    filepath.Join(wd, "hyperfork", "report.json"),
		pipeLog:   filepath.Join(wd, "hyperfork", "pipeline.log"),
		hostCache: filepath.Join(wd, "host", "gocache"),
		hostOut:   filepath.Join(wd, "host", "out"),
	}
	log := o.Logger
	log.Info("generating project", "packages", o.Packages, "files", o.Files, "funcs", o.Funcs)
	start := time.Now()
	if err := generateProject(bw.src, bw.shape); err != nil {
		return nil, err
	}
	if res.Lines, res.Bytes, err = sourceSize(bw.src); err != nil {
		return nil, err
	}
	if err := bw.initRepos(ctx); err != nil {
		return nil, err
	}
	res.Generate = time.Since(start)

	goroot, err := ocitest.GoRoot()
	if err != nil {
		return nil, err
	}
	bw.goBin = filepath.Join(goroot, "bin", "go")
	host, stop, err := ocitest.ServeRegistry()
	if err != nil {
		return nil, err
	}
	bw.stopReg, bw.repo = stop, host+"/bench/project"
	log.Info("pushing the Go builder image", "registry", host, "goroot", goroot)
	start = time.Now()
	builder, err := ocitest.PushGoBuilderImageTo(host)
	if err != nil {
		return bw, err
	}
	res.PushBuilder = time.Since(start)
	if err := bw.writeConfig(builder); err != nil {
		return bw, err
	}

	log.Info("starting a fresh buildkitd", "state", filepath.Join(wd, "buildkit"))
	start = time.Now()
	bw.daemon, err = build.StartDaemon(ctx, build.DaemonOptions{
		StateDir: filepath.Join(wd, "buildkit"), ModuleDir: moduleDir, Logger: log})
	if err != nil {
		return bw, fmt.Errorf("start buildkitd for the build benchmark: %w", err)
	}
	res.StartDaemon = time.Since(start)
	return bw, nil
}

func (bw *buildWorld) close() {
	if bw.daemon != nil {
		if err := bw.daemon.Close(); err != nil {
			bw.o.Logger.Warn("stop buildkitd", "err", err)
		}
	}
	if bw.stopReg != nil {
		bw.stopReg()
	}
}

// buildkitdPid reads the daemon's pid file, kept in its state folder.
func (bw *buildWorld) buildkitdPid() int {
	b, err := os.ReadFile(filepath.Join(bw.o.WorkDir, "buildkit", "buildkitd", "buildkitd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// initRepos commits the project, tags it v1.0.0 as a release would be, and
// pushes it to both bare repositories: the fork starts equal to upstream.
func (bw *buildWorld) initRepos(ctx context.Context) error {
	for _, bare := range []string{bw.upstream, bw.fork} {
		if _, err := bw.git(ctx, "", "init", "--quiet", "--bare", "--initial-branch=master", bare); err != nil {
			return err
		}
	}
	if _, err := bw.git(ctx, "", "init", "--quiet", "--initial-branch=master", bw.src); err != nil {
		return err
	}
	if err := bw.commit(ctx, "generated project"); err != nil {
		return err
	}
	if _, err := bw.git(ctx, bw.src, "tag", "v1.0.0"); err != nil {
		return err
	}
	for _, bare := range []string{bw.upstream, bw.fork} {
		if _, err := bw.git(ctx, bw.src, "push", "--quiet", bare, "master", "v1.0.0"); err != nil {
			return err
		}
	}
	return nil
}

// commit commits every change in the work tree with a fixed date per
// commit, so that the run's commits, and with them the images' dates, are
// the same every time.
func (bw *buildWorld) commit(ctx context.Context, msg string) error {
	if _, err := bw.git(ctx, bw.src, "add", "--all"); err != nil {
		return err
	}
	date := time.Date(2025, 1, 1, bw.commits, 0, 0, 0, time.UTC).Format(time.RFC3339)
	bw.commits++
	_, err := bw.run(ctx, bw.src, append(gitEnv(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date), "git", "commit", "--quiet", "-m", msg)
	return err
}

// writeConfig writes hyperfork's branches.yaml: the fork's master built for
// the platforms into the loopback registry, with the version stamped as
// Kubernetes does, into an image of the three commands.
func (bw *buildWorld) writeConfig(builder string) error {
	dir := filepath.Dir(bw.config)
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return err
	}
	img := "name: project\nbase: scratch\nbinaries: [" + strings.Join(projectCommands, ", ") + "]\nentrypoint: [/usr/local/bin/a]\n"
	if err := os.WriteFile(filepath.Join(dir, "images", "project.yaml"), []byte(img), 0o644); err != nil {
		return err
	}
	var targets []string
	for _, c := range projectCommands {
		targets = append(targets, strconv.Quote("./cmd/"+c))
	}
	var platforms []string
	for _, p := range bw.o.Platforms {
		platforms = append(platforms, strconv.Quote(p))
	}
	y := fmt.Sprintf(`apiVersion: hyperfork.dev/v1alpha1
kind: Pipeline
upstream:
  url: %q
fork:
  url: %q
branches:
  - name: master
build:
  builderImage: %q
  platforms: [%s]
  targets: [%s]
  testTargets: []
  ldflags: [%q]
  images: [images/project.yaml]
publish:
  registry: %q
state:
  store: state
`, bw.upstream, bw.fork, builder, strings.Join(platforms, ", "), strings.Join(targets, ", "), ldflagsTemplate, bw.repo)
	return os.WriteFile(bw.config, []byte(y), 0o644)
}

// ldflagsTemplate stamps the version into every command; the host side
// renders it with the version hyperfork reports, so both link the same.
const ldflagsTemplate = "-X main.version={{.Version}}"

// hostLDFlags is what hyperfork's build renders from ldflagsTemplate: the
// version, then -s -w (build.Spec.KeepSymbols is off).
func hostLDFlags(version string) string { return "-X main.version=" + version + " -s -w" }

// git runs git in dir (empty: the working directory) with gitEnv.
func (bw *buildWorld) git(ctx context.Context, dir string, args ...string) (string, error) {
	return bw.run(ctx, dir, gitEnv(), "git", args...)
}

// run runs a command in dir with env and returns its trimmed stdout.
func (bw *buildWorld) run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	bw.o.Logger.Debug("ran", "cmd", name+" "+strings.Join(args, " "), "took", time.Since(start))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// moduleRoot returns hyperfork's module folder: dir, else the working
// directory, or the nearest parent with images/hyperkube.yaml.
func moduleRoot(dir string) (string, error) {
	img, err := findImages(dir)
	if err != nil {
		return "", fmt.Errorf("find hyperfork's module for `go tool buildkitd`: %w", err)
	}
	return filepath.Dir(filepath.Dir(img)), nil
}

// findImages returns images/hyperkube.yaml of hyperfork's module, which
// marks the module's folder: dir, else the working directory, or the
// nearest parent that has it.
func findImages(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dir = wd
	}
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "images", "hyperkube.yaml")
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("images/hyperkube.yaml not found in %s or its parents: run from hyperfork's repository or set BuildOptions.ModuleDir", dir)
		}
	}
}

// sourceSize counts the lines and bytes of the Go files under dir.
func sourceSize(dir string) (lines, size int, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		b, err := os.ReadFile(p)
		lines, size = lines+bytes.Count(b, []byte("\n")), size+len(b)
		return err
	})
	return lines, size, err
}
