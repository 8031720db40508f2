package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// DefaultReleaseRounds is how often each side of every row of the release
// benchmark runs: a no-op release takes well under a second, so ten rounds
// cost little and give a median worth reading.
const DefaultReleaseRounds = 10

// DefaultReleaseBranches are the release benchmark's branches: the main
// line and three release branches, as a scheduled run of a Kubernetes fork
// follows them.
var DefaultReleaseBranches = []string{"master", "release-1.32", "release-1.33", "release-1.34"}

// ReleaseTarget is the release benchmark's goal (issue 11): a scheduled
// release that finds nothing new takes less than this per branch once mage
// has started. It is printed, never asserted.
const ReleaseTarget = time.Second

// ReleaseOptions sizes the release benchmark. Zero fields get the defaults.
type ReleaseOptions struct {
	// WorkDir holds the generated project, the repositories, both state
	// stores, the S3 server's data and BuildKit's state, and is kept
	// afterwards. It must be empty or missing. Default: a temporary folder,
	// removed at the end.
	WorkDir string
	// Branches are the fork's branches, every one released by each run.
	// Default DefaultReleaseBranches.
	Branches []string
	// Rounds is how often each side of every row runs. Default
	// DefaultReleaseRounds.
	Rounds int
	// ModuleDir is hyperfork's module: where `go tool buildkitd`, `go tool
	// versitygw` and `go tool mage release` run. Default the working
	// directory, then its parents.
	ModuleDir string
	// CI makes a missing prerequisite (root and runc, for the warm-up's
	// builds) an error; without it the benchmark says what is missing and
	// returns a result with Skipped set. ReleaseOptionsFromEnv sets it from
	// CI=true.
	CI bool
	// Logger receives one line per step. Default: discarded.
	Logger *slog.Logger
}

// Environment variables read by ReleaseOptionsFromEnv, so that `go tool
// mage bench` can be made small: HYPERFORK_BENCH_RELEASE_ROUNDS=3.
const (
	EnvReleaseWorkDir  = "HYPERFORK_BENCH_RELEASE_WORKDIR"
	EnvReleaseBranches = "HYPERFORK_BENCH_RELEASE_BRANCHES"
	EnvReleaseRounds   = "HYPERFORK_BENCH_RELEASE_ROUNDS"
)

// ReleaseOptionsFromEnv reads the HYPERFORK_BENCH_RELEASE_* variables, and
// CI, through getenv; unset ones keep their defaults. Every malformed value
// is reported.
func ReleaseOptionsFromEnv(getenv func(string) string) (ReleaseOptions, error) {
	var o ReleaseOptions
	e := &envReader{getenv: getenv}
	e.num(EnvReleaseRounds, &o.Rounds)
	o.WorkDir = getenv(EnvReleaseWorkDir)
	o.Branches = e.list(EnvReleaseBranches)
	o.CI = getenv("CI") == "true"
	return o, e.err()
}

func (o ReleaseOptions) withDefaults() (ReleaseOptions, error) {
	orDefault(&o.Rounds, DefaultReleaseRounds)
	if len(o.Branches) == 0 {
		o.Branches = DefaultReleaseBranches
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("release bench options: Rounds must be at least 1 (got %d)", o.Rounds))
	}
	seen := map[string]bool{}
	for _, b := range o.Branches {
		if seen[b] {
			errs = append(errs, fmt.Errorf("release bench options: branch %q is listed twice", b))
		}
		seen[b] = true
	}
	return o, errors.Join(errs...)
}

// ReleaseRow is one configuration of the release benchmark: hyperfork's
// no-op release of every branch, and plain git's ls-remote of both remotes
// for the same branches, each Rounds times, alternating which goes first.
type ReleaseRow struct {
	// Name says what was measured, e.g. "state in S3, in-process".
	Name string
	// Store is "folder" or "s3".
	Store string
	// Mage is true for the rows that time the whole `go tool mage release`
	// command, false for pipeline.Main("release") in this process.
	Mage bool
	// Ours and Plain are the times of each round.
	Ours, Plain Samples
	// Branches is how many branches each release ran.
	Branches int
	// Last is hyperfork's report of the last round.
	Last *report.Report
	// Verified is true when every round's report was a no-op of every
	// branch (sync and build up-to-date with the expected heads, test and
	// publish handed on from the warm-up, exit code 0) and every ls-remote listed the
	// expected heads.
	Verified bool
}

// PerBranch is the median time of one release divided by its branches.
func (r ReleaseRow) PerBranch() time.Duration {
	if r.Branches == 0 {
		return 0
	}
	return r.Ours.Median() / time.Duration(r.Branches)
}

// Ratio is the ratio of the medians, Ours / Plain; 0 without plain times.
func (r ReleaseRow) Ratio() float64 {
	if r.Plain.Median() <= 0 {
		return 0
	}
	return float64(r.Ours.Median()) / float64(r.Plain.Median())
}

// Met says whether the median per branch is within ReleaseTarget.
func (r ReleaseRow) Met() bool { return r.Ours.Median() > 0 && r.PerBranch() < ReleaseTarget }

// ReleaseResult is everything the release benchmark measured.
type ReleaseResult struct {
	// Options are the effective options, defaults applied.
	Options ReleaseOptions
	// Skipped says why nothing was measured (a missing prerequisite,
	// outside CI); empty when the benchmark ran.
	Skipped string
	// Platform is what the warm-up built for: this machine's.
	Platform string
	// Generate is the time to make the project and its repositories;
	// PushBuilder to push the Go builder image; StartDaemon to start
	// buildkitd; StartS3 to start versitygw and make the bucket.
	Generate, PushBuilder, StartDaemon, StartS3 time.Duration
	// Warmup is each store's first release, which builds every branch.
	Warmup map[string]time.Duration
	// Rows are the configurations in the order they ran in every round.
	Rows []ReleaseRow
	// MageStartup is `go tool mage -l` once per round: go and mage
	// starting and parsing the magefiles, with no compile and no target.
	MageStartup Samples
	// MageCompileFresh is `go tool mage -compile` to a new path once per
	// round: the compile `go tool mage` makes before every target it runs,
	// into a folder of its own (internal/magerun). MageCompileStable is the
	// same to one path kept between rounds, where go finds the binary up
	// to date and does not link it again.
	MageCompileFresh, MageCompileStable Samples
	// Profile is one more no-op release with state in S3, in-process,
	// whose S3 requests went through a recording proxy: where its time
	// went.
	Profile *ReleaseProfile
	// LoadBefore and LoadAfter are the load averages before the first and
	// after the last measurement.
	LoadBefore, LoadAfter string
	// Verified is true when every row was verified and no fork branch
	// moved during the run.
	Verified bool
}

// Release runs the release benchmark: it makes a small Go project with
// Options.Branches in an upstream and a fork (local bare repositories,
// file:// URLs), one config with state in a folder and one with state in S3
// on a local versitygw, both publishing to a loopback registry; one warm-up
// release per config builds every branch with a fresh buildkitd, which is
// then stopped. It then measures Options.Rounds no-op releases per config,
// in-process (pipeline.Main, after mage has started) and as the whole `go
// tool mage release` command, each against plain git's ls-remote of both
// remotes, checks every report, and prints a table on w. Timings are
// reported, never asserted. The warm-up needs root and runc; without them
// it fails under Options.CI and otherwise returns a result with Skipped.
//
// While it runs, this process's environment holds AWS_* variables pointing
// the AWS SDK at the local S3 server (the SDK reads nothing else); they are
// restored at the end.
func Release(ctx context.Context, w io.Writer, opts ReleaseOptions) (*ReleaseResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	res := &ReleaseResult{Options: o, Warmup: map[string]time.Duration{}}
	if why := buildKitMissing(); why != "" {
		if o.CI {
			return res, fmt.Errorf("release benchmark: CI=true and a prerequisite is missing: %s", why)
		}
		res.Skipped = why
		fmt.Fprintf(w, "hyperfork release benchmark: not run: %s (under CI=true this is an error)\n", why)
		return res, nil
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "hyperfork-bench-release-")
		if err != nil {
			return nil, fmt.Errorf("bench work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	} else if err := emptyDir(o.WorkDir); err != nil {
		return nil, err
	}
	res.Options.WorkDir = o.WorkDir
	rw, err := setupRelease(ctx, o, res)
	if rw != nil {
		defer rw.close()
	}
	if err != nil {
		return res, err
	}
	if err := rw.measure(ctx, res); err != nil {
		return res, err
	}
	printRelease(w, res)
	return res, nil
}

// buildKitMissing says why the embedded buildkitd cannot run here, or "".
func buildKitMissing() string {
	if os.Geteuid() != 0 {
		return "the warm-up builds every branch with the embedded buildkitd, which needs root (it runs build steps with runc): run as root"
	}
	if _, err := exec.LookPath("runc"); err == nil {
		return ""
	}
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return ""
		}
	}
	return "the warm-up builds every branch with the embedded buildkitd, which needs runc: apt-get install -y runc"
}
