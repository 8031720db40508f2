// Package bench measures hyperfork against plain git on generated
// repositories shaped like Kubernetes, in the same run, and prints what it
// measured: times, the ratio hyperfork / plain git, and peak memory.
//
// It never asserts on timings: machines differ, and a benchmark that fails
// on a slow CI runner teaches people to ignore it. What it does assert is
// that both sides did the work correctly, because a fast broken sync is
// worth nothing.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Defaults of SyncOptions: a history the size of the target.
const (
	DefaultCommits    = 20000
	DefaultFiles      = 5000
	DefaultCarries    = 30
	DefaultNewCommits = 500
)

// DefaultBranches are the branches of SyncOptions by default: the main
// line and two release branches, as a Kubernetes fork usually follows.
var DefaultBranches = []string{"master", "release-1.33", "release-1.34"}

// SyncOptions sizes the sync benchmark. Zero fields get the defaults.
type SyncOptions struct {
	// WorkDir holds the generated repositories and is kept afterwards. It
	// must be empty or missing. Default: a temporary folder, removed at
	// the end.
	WorkDir string
	// Commits on the upstream main line. Default DefaultCommits.
	Commits int
	// Files in the tree. Default DefaultFiles.
	Files int
	// Carries are the fork's own commits on every branch. Default
	// DefaultCarries.
	Carries int
	// NewCommits are added to every upstream branch before the merge
	// scenario. Default DefaultNewCommits.
	NewCommits int
	// Branches to sync; the first is the main line. Default
	// DefaultBranches.
	Branches []string
	// Runs is how often each no-op measurement repeats; the median is
	// reported. Default 3.
	Runs int
	// ModuleDir is hyperfork's module, where images/hyperkube.yaml is
	// found for the generated config. Default the working directory, then
	// its parents.
	ModuleDir string
	// Logger receives one line per step. Default: discarded.
	Logger *slog.Logger
}

// Environment variables read by SyncOptionsFromEnv, so `go tool mage bench`
// can be made small: HYPERFORK_BENCH_COMMITS=2000 for a quick run.
const (
	EnvWorkDir    = "HYPERFORK_BENCH_WORKDIR"
	EnvCommits    = "HYPERFORK_BENCH_COMMITS"
	EnvFiles      = "HYPERFORK_BENCH_FILES"
	EnvCarries    = "HYPERFORK_BENCH_CARRIES"
	EnvNewCommits = "HYPERFORK_BENCH_NEW_COMMITS"
	EnvBranches   = "HYPERFORK_BENCH_BRANCHES"
	EnvRuns       = "HYPERFORK_BENCH_RUNS"
)

// SyncOptionsFromEnv reads the HYPERFORK_BENCH_* variables through getenv;
// unset ones keep their defaults. Every malformed value is reported.
func SyncOptionsFromEnv(getenv func(string) string) (SyncOptions, error) {
	var o SyncOptions
	e := &envReader{getenv: getenv}
	num := e.num
	num(EnvCommits, &o.Commits)
	num(EnvFiles, &o.Files)
	num(EnvCarries, &o.Carries)
	num(EnvNewCommits, &o.NewCommits)
	num(EnvRuns, &o.Runs)
	o.WorkDir = getenv(EnvWorkDir)
	o.Branches = e.list(EnvBranches)
	return o, e.err()
}

func (o SyncOptions) withDefaults() (SyncOptions, error) {
	def := orDefault
	def(&o.Commits, DefaultCommits)
	def(&o.Files, DefaultFiles)
	def(&o.Carries, DefaultCarries)
	def(&o.NewCommits, DefaultNewCommits)
	def(&o.Runs, 3)
	if len(o.Branches) == 0 {
		o.Branches = DefaultBranches
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Commits < 10 || o.Files < 10 || o.Carries < 1 || o.NewCommits < 1 || o.Runs < 1 {
		return o, fmt.Errorf("bench options %+v: Commits and Files must be at least 10, Carries, NewCommits and Runs at least 1", o)
	}
	return o, nil
}

// Timing is one measurement of hyperfork and of plain git doing the same
// work.
type Timing struct {
	// Name says what was measured, e.g. "no-op, master".
	Name string
	Ours time.Duration
	// Plain is zero when there is no plain-git equivalent.
	Plain time.Duration
	// Target is the goal, for people; never asserted.
	Target string
	// Verified is true when both sides' results were checked correct.
	Verified bool
}

// Ratio is Ours / Plain, or 0 without a plain-git time.
func (t Timing) Ratio() float64 {
	if t.Plain <= 0 {
		return 0
	}
	return float64(t.Ours) / float64(t.Plain)
}

// SyncResult is everything the sync benchmark measured.
type SyncResult struct {
	// Options are the effective options, defaults applied.
	Options SyncOptions
	// Generate is the time to generate upstream; GenerateFork to clone it
	// and add the carries.
	Generate, GenerateFork time.Duration
	// UpstreamSize is `git count-objects -vH` of the generated upstream;
	// MirrorSize of hyperfork's mirror after the run.
	UpstreamSize, MirrorSize string
	// Prime is hyperfork's first sync, which fills the empty mirror.
	Prime time.Duration
	// Timings are the scenarios in the order they ran.
	Timings []Timing
	// Memory is the peak memory seen while hyperfork ran.
	Memory Memory
	// Verified is true when every scenario's results were checked correct
	// on both sides.
	Verified bool
}

// Sync runs the sync benchmark: it generates an upstream and a fork, then
// measures a no-op sync and a merge sync of every branch, hyperfork
// in-process against plain git in a persistent clone, checks both results
// and prints a table on w.
func Sync(ctx context.Context, w io.Writer, opts SyncOptions) (*SyncResult, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "hyperfork-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench work folder: %w", err)
		}
		defer os.RemoveAll(dir)
		o.WorkDir = dir
	} else if err := emptyDir(o.WorkDir); err != nil {
		return nil, err
	}
	res := &SyncResult{Options: o}
	ws, err := setup(ctx, o, res)
	if err != nil {
		return res, err
	}
	if err := ws.scenarios(ctx, res); err != nil {
		return res, err
	}
	res.Verified = len(res.Timings) > 0
	for _, t := range res.Timings {
		res.Verified = res.Verified && t.Verified
	}
	printSync(w, res)
	return res, nil
}

// emptyDir makes dir if missing and refuses one with content, since the
// generator writes fixed names into it.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench work folder: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("bench work folder: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("bench work folder %s is not empty: give an empty or new folder, or none for a temporary one", dir)
	}
	return nil
}
