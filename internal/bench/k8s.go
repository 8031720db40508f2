package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultK8sVersion is the Kubernetes release the k8s benchmark builds.
const DefaultK8sVersion = "v1.37.2"

// DefaultK8sTargets are the seven server and client commands, as the
// default build.targets lists them.
var DefaultK8sTargets = []string{"./cmd/kube-apiserver", "./cmd/kube-controller-manager", "./cmd/kube-scheduler",
	"./cmd/kube-proxy", "./cmd/kubelet", "./cmd/kubectl", "./cmd/kubeadm"}

// K8sOptions configures the k8s benchmark. Zero fields get the defaults.
type K8sOptions struct {
	// Version is the Kubernetes release, v1.<minor>.<patch>. Default
	// DefaultK8sVersion.
	Version string
	// CacheDir keeps the Kubernetes tree between runs: it is made once
	// from the module proxy (a few minutes and about 400 MB), then reused.
	// Default: hyperfork/bench-k8s in the user's cache folder.
	CacheDir string
	// WorkDir holds the repositories, hyperfork's state, BuildKit's and the
	// host's build cache (several GB for all seven commands), and is kept
	// afterwards. It must be empty or missing. Default: a temporary
	// folder, removed at the end.
	WorkDir string
	// Targets are the Go packages built. Default DefaultK8sTargets.
	Targets []string
	// Platforms to compile for, os/arch each. Default
	// DefaultBuildPlatforms.
	Platforms []string
	// Runs is how often the no-op, the one-line change (each a new
	// commit) and the forced rebuild repeat; the median is reported.
	// Default 3.
	Runs int
	// GoProxy is where the tree's modules come from. Default: the go
	// command's GOPROXY.
	GoProxy string
	// ModuleDir is hyperfork's module, where `go tool buildkitd` is pinned.
	// Default the working directory, then its parents.
	ModuleDir string
	// Logger receives one line per step. Default: discarded.
	Logger *slog.Logger
}

// Environment variables read by K8sOptionsFromEnv.
const (
	EnvK8sVersion   = "HYPERFORK_BENCH_K8S_VERSION"
	EnvK8sCache     = "HYPERFORK_BENCH_K8S_CACHE"
	EnvK8sWorkDir   = "HYPERFORK_BENCH_K8S_WORKDIR"
	EnvK8sTargets   = "HYPERFORK_BENCH_K8S_TARGETS"
	EnvK8sPlatforms = "HYPERFORK_BENCH_K8S_PLATFORMS"
	EnvK8sRuns      = "HYPERFORK_BENCH_K8S_RUNS"
)

// K8sOptionsFromEnv reads the HYPERFORK_BENCH_K8S_* variables, and GOPROXY,
// through getenv; unset ones keep their defaults. Every malformed value is
// reported: HYPERFORK_BENCH_K8S_TARGETS=./cmd/kubectl for a quicker run.
func K8sOptionsFromEnv(getenv func(string) string) (K8sOptions, error) {
	e := &envReader{getenv: getenv}
	o := K8sOptions{
		Version:   strings.TrimSpace(getenv(EnvK8sVersion)),
		CacheDir:  getenv(EnvK8sCache),
		WorkDir:   getenv(EnvK8sWorkDir),
		Targets:   e.list(EnvK8sTargets),
		Platforms: e.list(EnvK8sPlatforms),
		GoProxy:   getenv("GOPROXY"),
	}
	e.num(EnvK8sRuns, &o.Runs)
	if o.Version != "" {
		if _, err := stagingVersion(o.Version); err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s: %w", EnvK8sVersion, err))
		}
	}
	return o, e.err()
}

func (o K8sOptions) withDefaults() (K8sOptions, error) {
	if o.Version == "" {
		o.Version = DefaultK8sVersion
	}
	if len(o.Targets) == 0 {
		o.Targets = DefaultK8sTargets
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultBuildPlatforms
	}
	orDefault(&o.Runs, 3)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			errs = append(errs, fmt.Errorf("k8s bench: no cache folder (%v): set %s", err, EnvK8sCache))
		}
		o.CacheDir = filepath.Join(dir, "hyperfork", "bench-k8s")
	}
	if _, err := stagingVersion(o.Version); err != nil {
		errs = append(errs, err)
	}
	for _, p := range o.Platforms {
		if _, _, err := goosArch(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range o.Targets {
		if !strings.HasPrefix(t, "./") {
			errs = append(errs, fmt.Errorf("k8s bench target %q: write a package of the tree such as ./cmd/kubectl", t))
		}
	}
	return o, errors.Join(errs...)
}

// K8sTiming is one scenario of the k8s benchmark; Ours and Plain are the
// medians of the rounds.
type K8sTiming struct {
	Timing
	// Steps are hyperfork's steps in this scenario's last round, from its
	// log.
	Steps []Step
	// OursRuns and PlainRuns are each round's times.
	OursRuns, PlainRuns Samples
}

// K8sResult is everything the k8s benchmark measured.
type K8sResult struct {
	// Options are the effective options, defaults applied.
	Options K8sOptions
	// Files in the tree, vendor/ included; Staging and Dropped are the
	// staging modules laid out and those the proxy does not serve.
	Files            int
	Staging, Dropped []string
	// MakeTree is how long making the tree took; 0 when it came from the
	// cache.
	MakeTree time.Duration
	// Setup is the time to clone the tree into the repositories and a
	// host work tree; PushBuilder to make and push the Go builder image;
	// StartDaemon to start the fresh buildkitd.
	Setup, PushBuilder, StartDaemon time.Duration
	// Versions are the versions hyperfork stamped, in the order built.
	Versions []string
	// Timings are the scenarios in the order they ran.
	Timings []K8sTiming
	// SameDigest is true when the forced rebuild gave the one-line
	// change's image digest.
	SameDigest bool
	// Identical is true when every binary in hyperfork's images is
	// byte-identical to the host's `go build` of the same commit.
	Identical bool
	// LoadBefore and LoadAfter are the load averages before the first and
	// after the last measurement.
	LoadBefore, LoadAfter string
	// Verified is true when every scenario's results were checked correct.
	Verified bool
}

// K8s runs the k8s benchmark: it makes the Kubernetes tree of o.Version from
// the module proxy once (into o.CacheDir), makes an upstream and a fork of
// it with one carry, and measures hyperfork's build stage (pipeline.Main
// ("build"), as `go tool mage build` runs it, on a fresh buildkitd) against
// a host `go build` of the same targets with the same flags: cold, with
// nothing new, after a one-line change in kubectl's version command, and
// the same commit forced again. It prints a table with the ratios and
// hyperfork's step breakdown on w. Timings are reported, never asserted; the
// results are checked. It needs root, runc and the module proxy.
func K8s(ctx context.Context, w io.Writer, opts K8sOptions) (*K8sResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "hyperfork-bench-k8s-")
		if err != nil {
			return nil, fmt.Errorf("k8s bench work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	} else if err := emptyDir(o.WorkDir); err != nil {
		return nil, err
	}
	res := &K8sResult{Options: o}
	kw, err := setupK8s(ctx, o, res)
	if kw != nil {
		defer kw.close()
	}
	if err != nil {
		return res, err
	}
	if err := kw.scenarios(ctx, res); err != nil {
		return res, err
	}
	res.Verified = len(res.Timings) > 0 && res.SameDigest && res.Identical
	for _, t := range res.Timings {
		res.Verified = res.Verified && t.Verified
	}
	printK8s(w, res)
	return res, nil
}
