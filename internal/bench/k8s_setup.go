package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// k8sWorld is the k8s benchmark's world: the tree from the cache, an
// upstream and a fork made from it, a host work tree of the fork, a
// loopback registry with the Go builder image, and a fresh buildkitd. The
// pipeline runs go through the build benchmark's buildWorld, which holds
// the same paths.
type k8sWorld struct {
	*buildWorld
	k8s  K8sOptions
	tree *k8sTree
	// when dates the next commit: an hour after the one before.
	when time.Time
}

// setupK8s makes the world. On error it returns what it made so far, for
// close.
func setupK8s(ctx context.Context, o K8sOptions, res *K8sResult) (*k8sWorld, error) {
	moduleDir, err := moduleRoot(o.ModuleDir)
	if err != nil {
		return nil, err
	}
	o.ModuleDir = moduleDir
	wd := o.WorkDir
	goroot, err := ocitest.GoRoot()
	if err != nil {
		return nil, err
	}
	bw := &buildWorld{
		o:         BuildOptions{WorkDir: wd, Platforms: o.Platforms, Runs: o.Runs, ModuleDir: moduleDir, Logger: o.Logger},
		src:       filepath.Join(wd, "src"),
		upstream:  filepath.Join(wd, "upstream.git"),
		fork:      filepath.Join(wd, "fork.git"),
		config:    filepath.Join(wd, "hyperfork", "branches.yaml"),
		report:    filepath.Join(wd, "hyperfork", "report.json"),
		pipeLog:   filepath.Join(wd, "hyperfork", "pipeline.log"),
		hostCache: filepath.Join(wd, "host", "gocache"),
		hostOut:   filepath.Join(wd, "host", "out"),
		goBin:     filepath.Join(goroot, "bin", "go"),
	}
	kw := &k8sWorld{buildWorld: bw, k8s: o}
	log := o.Logger

	env := os.Environ()
	if o.GoProxy != "" {
		env = append(env, "GOPROXY="+o.GoProxy)
	}
	log.Info("making or reusing the Kubernetes tree", "version", o.Version, "cache", o.CacheDir)
	maker := k8sTreeMaker{goBin: bw.goBin, env: env}
	if kw.tree, err = maker.ensure(ctx, o.CacheDir, o.Version); err != nil {
		return nil, err
	}
	res.Files, res.Staging, res.Dropped, res.MakeTree = kw.tree.Files, kw.tree.Staging, kw.tree.Dropped, kw.tree.Made

	start := time.Now()
	if err := kw.initRepos(ctx); err != nil {
		return kw, err
	}
	res.Setup = time.Since(start)

	host, stop, err := ocitest.ServeRegistry()
	if err != nil {
		return kw, err
	}
	bw.stopReg, bw.repo = stop, host+"/bench/kubernetes"
	log.Info("pushing the Go builder image", "registry", host, "goroot", goroot)
	start = time.Now()
	builder, err := ocitest.PushGoBuilderImageTo(host)
	if err != nil {
		return kw, err
	}
	res.PushBuilder = time.Since(start)
	if err := kw.writeConfig(builder); err != nil {
		return kw, err
	}

	log.Info("starting a fresh buildkitd", "state", filepath.Join(wd, "buildkit"))
	start = time.Now()
	bw.daemon, err = build.StartDaemon(ctx, build.DaemonOptions{
		StateDir: filepath.Join(wd, "buildkit"), ModuleDir: moduleDir, Logger: log})
	if err != nil {
		return kw, fmt.Errorf("start buildkitd for the k8s benchmark: %w", err)
	}
	res.StartDaemon = time.Since(start)
	return kw, nil
}

// initRepos makes upstream a copy of the cached tree (its master and the
// release tag), the fork a copy of upstream with one carry on master, and
// the host work tree a clone of the fork.
func (kw *k8sWorld) initRepos(ctx context.Context) error {
	log := kw.o.Logger
	log.Info("cloning the tree into upstream, fork and the host work tree")
	if _, err := kw.git(ctx, "", "clone", "--quiet", "--bare", kw.tree.Dir, kw.upstream); err != nil {
		return err
	}
	if _, err := kw.git(ctx, "", "clone", "--quiet", "--bare", kw.upstream, kw.fork); err != nil {
		return err
	}
	if _, err := kw.git(ctx, "", "clone", "--quiet", kw.fork, kw.src); err != nil {
		return err
	}
	when, err := kw.git(ctx, kw.src, "show", "-s", "--format=%cI", "HEAD")
	if err != nil {
		return err
	}
	if kw.when, err = time.Parse(time.RFC3339, when); err != nil {
		return fmt.Errorf("date of the release commit %q: %w", when, err)
	}
	// The carry: what every fork has, a change of its own on top.
	readme := filepath.Join(kw.src, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	b = append(b, "\nThis is the company's fork of Kubernetes, built by hyperfork.\n"...)
	if err := os.WriteFile(readme, b, 0o644); err != nil {
		return err
	}
	if err := kw.commitFork(ctx, "carry: say this is the company's fork"); err != nil {
		return err
	}
	return nil
}

// commitFork commits every change in the host work tree, dated an hour
// after the commit before, and pushes it to the fork's master.
func (kw *k8sWorld) commitFork(ctx context.Context, msg string) error {
	if _, err := kw.git(ctx, kw.src, "add", "--all"); err != nil {
		return err
	}
	kw.when = kw.when.Add(time.Hour)
	date := kw.when.UTC().Format(time.RFC3339)
	if _, err := kw.run(ctx, kw.src, append(gitEnv(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date),
		"git", "commit", "--quiet", "--no-verify", "-m", msg); err != nil {
		return err
	}
	_, err := kw.git(ctx, kw.src, "push", "--quiet", kw.fork, "HEAD:master")
	return err
}

// k8sImage is the benchmark's image: every target and the hyperkube
// dispatcher, as the shipped images/hyperkube.yaml holds them.
const k8sImage = "kubernetes"

// writeConfig writes hyperfork's branches.yaml: the fork's master built for
// the platforms into the loopback registry, stamped with Kubernetes'
// version variables as hack/lib/version.sh sets them, into one image of
// every target. No test binaries: the benchmark compares the commands.
func (kw *k8sWorld) writeConfig(builder string) error {
	dir := filepath.Dir(kw.config)
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return err
	}
	var names, targets, platforms, ldflags []string
	for _, t := range kw.k8s.Targets {
		names = append(names, filepath.Base(t))
		targets = append(targets, strconv.Quote(t))
	}
	for _, p := range kw.k8s.Platforms {
		platforms = append(platforms, strconv.Quote(p))
	}
	for _, f := range k8sLDFlags(kw.k8s.Version) {
		ldflags = append(ldflags, strconv.Quote(f))
	}
	img := "name: " + k8sImage + "\nbase: scratch\nhyperkube: true\nbinaries: [" + strings.Join(names, ", ") + "]\nentrypoint: [/usr/local/bin/hyperkube]\n"
	if err := os.WriteFile(filepath.Join(dir, "images", k8sImage+".yaml"), []byte(img), 0o644); err != nil {
		return err
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
  ldflags: [%s]
  images: [images/%s.yaml]
publish:
  registry: %q
state:
  store: state
`, kw.upstream, kw.fork, builder, strings.Join(platforms, ", "), strings.Join(targets, ", "),
		strings.Join(ldflags, ", "), k8sImage, kw.repo)
	return os.WriteFile(kw.config, []byte(y), 0o644)
}

// k8sLDFlags are the templates of Kubernetes' version stamp
// (hack/lib/version.sh): every variable into both version packages, the
// major and minor of the release written out.
func k8sLDFlags(version string) []string {
	m := kubeVersionRE.FindStringSubmatch(version)
	vars := [][2]string{
		{"buildDate", "{{.BuildDate}}"}, {"gitCommit", "{{.Commit}}"}, {"gitTreeState", "{{.TreeState}}"},
		{"gitVersion", "{{.Version}}"}, {"gitMajor", "1"}, {"gitMinor", m[1]},
	}
	var out []string
	for _, kv := range vars {
		for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
			out = append(out, "-X "+pkg+"."+kv[0]+"="+kv[1])
		}
	}
	return out
}
