package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Defaults of BuildOptions: a project whose cold compile for two platforms
// takes well over half a minute on a two-CPU machine, long enough that
// hyperfork's fixed costs and the compile itself can be told apart.
const (
	DefaultBuildPackages = 200
	DefaultBuildFiles    = 4
	DefaultBuildFuncs    = 6
)

// DefaultBuildPlatforms are the platforms the build benchmark compiles for,
// as the default build.platforms does.
var DefaultBuildPlatforms = []string{"linux/amd64", "linux/arm64"}

// BuildOptions sizes the build benchmark. Zero fields get the defaults.
type BuildOptions struct {
	// WorkDir holds the generated project, the repositories, hyperfork's
	// state and BuildKit's, and is kept afterwards. It must be empty or
	// missing. Default: a temporary folder, removed at the end.
	WorkDir string
	// Packages in the generated project. Default DefaultBuildPackages.
	Packages int
	// Files per package. Default DefaultBuildFiles.
	Files int
	// Funcs is how many functions, and as many types, each file holds.
	// Default DefaultBuildFuncs.
	Funcs int
	// Platforms to compile for, os/arch each. Default
	// DefaultBuildPlatforms.
	Platforms []string
	// Runs is how often the no-op measurement repeats; the median is
	// reported. Default 3.
	Runs int
	// ModuleDir is hyperfork's module, where `go tool buildkitd` is pinned.
	// Default the working directory, then its parents.
	ModuleDir string
	// Logger receives one line per step. Default: discarded.
	Logger *slog.Logger
}

// Environment variables read by BuildOptionsFromEnv, so `go tool mage
// bench` can be made small: HYPERFORK_BENCH_BUILD_PACKAGES=20 for a quick
// run.
const (
	EnvBuildWorkDir   = "HYPERFORK_BENCH_BUILD_WORKDIR"
	EnvBuildPackages  = "HYPERFORK_BENCH_BUILD_PACKAGES"
	EnvBuildFiles     = "HYPERFORK_BENCH_BUILD_FILES"
	EnvBuildFuncs     = "HYPERFORK_BENCH_BUILD_FUNCS"
	EnvBuildPlatforms = "HYPERFORK_BENCH_BUILD_PLATFORMS"
	EnvBuildRuns      = "HYPERFORK_BENCH_BUILD_RUNS"
)

// BuildOptionsFromEnv reads the HYPERFORK_BENCH_BUILD_* variables through
// getenv; unset ones keep their defaults. Every malformed value is
// reported.
func BuildOptionsFromEnv(getenv func(string) string) (BuildOptions, error) {
	var o BuildOptions
	e := &envReader{getenv: getenv}
	num := e.num
	num(EnvBuildPackages, &o.Packages)
	num(EnvBuildFiles, &o.Files)
	num(EnvBuildFuncs, &o.Funcs)
	num(EnvBuildRuns, &o.Runs)
	o.WorkDir = getenv(EnvBuildWorkDir)
	o.Platforms = e.list(EnvBuildPlatforms)
	return o, e.err()
}

func (o BuildOptions) withDefaults() (BuildOptions, error) {
	def := orDefault
	def(&o.Packages, DefaultBuildPackages)
	def(&o.Files, DefaultBuildFiles)
	def(&o.Funcs, DefaultBuildFuncs)
	def(&o.Runs, 3)
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultBuildPlatforms
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if o.Packages < 2 || o.Files < 1 || o.Funcs < 1 || o.Runs < 1 {
		errs = append(errs, fmt.Errorf("build bench options: Packages must be at least 2, Files, Funcs and Runs at least 1 (got %d, %d, %d, %d)", o.Packages, o.Files, o.Funcs, o.Runs))
	}
	for _, p := range o.Platforms {
		if _, _, err := goosArch(p); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// goosArch splits an os/arch platform. Variants are refused: the host side
// would need GOARM and the like, and the benchmark has no use for them.
func goosArch(platform string) (goos, goarch string, err error) {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok || goos == "" || goarch == "" || strings.Contains(goarch, "/") {
		return "", "", fmt.Errorf("build bench platform %q: write os/arch, such as linux/arm64", platform)
	}
	return goos, goarch, nil
}

// BuildMemory is the peak memory of the build benchmark. Sizes are in
// bytes.
type BuildMemory struct {
	// SelfPeak is this process's peak resident set (VmHWM) at the end; see
	// Memory.SelfPeak for which process that is.
	SelfPeak uint64
	// SelfPeakBefore is the same just before hyperfork first ran.
	SelfPeakBefore uint64
	// OursRSS and OursHeap are this process's resident set and live Go
	// heap sampled while hyperfork's build ran.
	OursRSS, OursHeap uint64
	// BuildKitd is buildkitd's own peak resident set (VmHWM): a separate
	// process that hyperfork drives and does not count in SelfPeak.
	BuildKitd uint64
	// BuildKitChildren is the largest VmHWM of one process under
	// buildkitd (runc, go, compile, link), sampled while hyperfork built.
	BuildKitChildren uint64
	// Host is the same for the host's `go build` processes and the
	// compilers and linkers they start.
	Host uint64
}

// BuildTiming is one scenario of the build benchmark.
type BuildTiming struct {
	Timing
	// GoBuild is the part of Ours spent in `go build` inside BuildKit: the
	// longest of the platforms' steps, as BuildKit's progress reports it;
	// 0 when BuildKit found them cached or did not run them. The rest of
	// Ours is hyperfork's and BuildKit's own work around the compile.
	GoBuild time.Duration
}

// BuildResult is everything the build benchmark measured.
type BuildResult struct {
	// Options are the effective options, defaults applied.
	Options BuildOptions
	// Lines and Bytes are the size of the generated Go source.
	Lines, Bytes int
	// Generate is the time to generate the project and its repositories;
	// PushBuilder to make and push the Go builder image; StartDaemon to
	// start the fresh buildkitd.
	Generate, PushBuilder, StartDaemon time.Duration
	// Timings are the scenarios in the order they ran.
	Timings []BuildTiming
	// Images are the candidate images the cold build, the incremental
	// build and the forced rebuild of the same commit pushed.
	ColdImage, Image, ForcedImage string
	// SameDigest is true when the forced rebuild gave Image's digest.
	SameDigest bool
	// Identical is true when every binary in hyperfork's images is
	// byte-identical to the host's `go build` of the same commit.
	Identical bool
	// Memory is the peak memory seen.
	Memory BuildMemory
	// LoadBefore and LoadAfter are the load averages (1, 5, 15 minutes)
	// before the first and after the last measurement: other work on the
	// machine slows both sides, but not always alike.
	LoadBefore, LoadAfter string
	// Verified is true when every scenario's results were checked correct.
	Verified bool
}

// Build runs the build benchmark: it generates a Go project, then measures
// hyperfork's build stage (pipeline.Main("build"), exactly what `go tool
// mage build` runs, on a fresh buildkitd) against `go build` on this host,
// cold, with nothing new, and after a one-line change; it rebuilds the same
// commit to check the image digest is reproducible, checks every result and
// prints a table on w. Timings are reported, never asserted. It needs what
// the embedded buildkitd needs: root and runc.
func Build(ctx context.Context, w io.Writer, opts BuildOptions) (*BuildResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "hyperfork-bench-build-")
		if err != nil {
			return nil, fmt.Errorf("bench work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	} else if err := emptyDir(o.WorkDir); err != nil {
		return nil, err
	}
	res := &BuildResult{Options: o}
	bw, err := setupBuild(ctx, o, res)
	if bw != nil {
		defer bw.close()
	}
	if err != nil {
		return res, err
	}
	if err := bw.scenarios(ctx, res); err != nil {
		return res, err
	}
	res.Verified = len(res.Timings) > 0 && res.SameDigest && res.Identical
	for _, t := range res.Timings {
		res.Verified = res.Verified && t.Verified
	}
	printBuild(w, res)
	return res, nil
}
