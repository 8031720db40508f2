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
	DefaultRounds     = 5
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
	// Rounds is how often each side of every row runs: the no-ops and
	// the merge alike (each merge round first adds NewCommits upstream
	// commits to every branch). The table shows the median and the spread.
	// Default DefaultRounds.
	Rounds int
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
	EnvRounds     = "HYPERFORK_BENCH_ROUNDS"
	// envRunsRenamed is EnvRounds' old name, refused so that a script
	// setting it does not silently get the default.
	envRunsRenamed = "HYPERFORK_BENCH_RUNS"
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
	num(EnvRounds, &o.Rounds)
	if v := getenv(envRunsRenamed); v != "" {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: the variable is now %s", envRunsRenamed, v, EnvRounds))
	}
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
	def(&o.Rounds, DefaultRounds)
	if len(o.Branches) == 0 {
		o.Branches = DefaultBranches
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Commits < 10 || o.Files < 10 || o.Carries < 1 || o.NewCommits < 1 || o.Rounds < 1 {
		return o, fmt.Errorf("bench options %+v: Commits and Files must be at least 10, Carries, NewCommits and Rounds at least 1", o)
	}
	return o, nil
}

// Timing is one measurement of hyperfork and of plain git doing the same
// work; the build benchmark's rows.
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

// SyncTarget is the sync benchmark's goal for every headline row:
// hyperfork within this factor of the fastest plain-git way. It is
// printed, never asserted.
const SyncTarget = 1.3

// SyncRow is one row of the sync benchmark: hyperfork and one plain-git
// way doing the same work, each Options.Rounds times.
type SyncRow struct {
	// Name says what was measured, e.g. "no-op, master".
	Name string
	// Way says how plain git did it, e.g. "bare mirror: ls-remote,
	// merge-base --is-ancestor".
	Way string
	// Ours and Plain are the times of each round.
	Ours, Plain Samples
	// Target is the goal for Ratio (SyncTarget) on a headline row, whose
	// Way is the fastest plain-git way; 0 on a context row, which compares
	// with a slower way people also use.
	Target float64
	// Verified is true when both sides' results were checked correct in
	// every round.
	Verified bool
}

// Ratio is the ratio of the medians, Ours / Plain; 0 without plain times.
func (r SyncRow) Ratio() float64 {
	if r.Plain.Median() <= 0 {
		return 0
	}
	return float64(r.Ours.Median()) / float64(r.Plain.Median())
}

// Met says whether a headline row's ratio is within its target.
func (r SyncRow) Met() bool { return r.Target > 0 && r.Ratio() <= r.Target }

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
	// Rows are the scenarios in the order they ran; each merge row's
	// rounds interleave with the other merge row's.
	Rows []SyncRow
	// Memory is the peak memory seen while hyperfork ran.
	Memory Memory
	// LoadBefore and LoadAfter are the load averages (1, 5, 15 minutes)
	// before the first and after the last measurement: other work on the
	// machine widens the spreads.
	LoadBefore, LoadAfter string
	// Verified is true when every scenario's results were checked correct
	// on both sides.
	Verified bool
}

// Sync runs the sync benchmark: it generates an upstream and a fork, then
// measures a no-op sync and a merge sync of every branch, hyperfork
// in-process against the fastest plain-git way in a persistent bare
// repository (and, for the merge, against a clone with a work tree, for
// context), Options.Rounds times each in alternating order, checks every
// result and prints a table on w.
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
	res.Verified = len(res.Rows) > 0
	for _, r := range res.Rows {
		res.Verified = res.Verified && r.Verified && len(r.Ours) == o.Rounds && len(r.Plain) == o.Rounds
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
