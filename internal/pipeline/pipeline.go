// Package pipeline knows the order of the stages and what each hands the
// next. It is the only package that knows the whole flow: the magefiles call
// one function here, and the stage packages know nothing of each other.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/gitsync"
	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// Options are the run's inputs besides the config: what the contract's
// environment variables say, read once by the caller.
type Options struct {
	// Branches limits the run to these fork branches (HYPERFORK_BRANCHES).
	Branches []string
	// ReportPath is where the JSON report also goes (HYPERFORK_REPORT).
	ReportPath string
	// Force rebuilds and retests processed commits (HYPERFORK_FORCE=1).
	Force bool
	// BuildKitHost overrides build.buildkit (BUILDKIT_HOST).
	BuildKitHost string
	// ModuleDir is hyperfork's own module, where `go tool buildkitd` runs.
	ModuleDir string
	// Getenv reads secrets named by *Env fields; nil means os.Getenv.
	Getenv func(string) string
	// Out receives the human-readable summary; nil means os.Stdout.
	Out io.Writer
	// Progress receives BuildKit's progress display; nil: none.
	Progress io.Writer
	// Logger receives progress, one line per step.
	Logger *slog.Logger
	// Now is the clock, for the report's timestamps.
	Now func() time.Time
}

// Runner runs targets for one loaded config.
type Runner struct {
	cfg      *config.Pipeline
	opts     Options
	store    *store.Dir
	redactor *exec.Redactor
	notifier *notify.Notifier
	log      *slog.Logger
	out      io.Writer
}

// New prepares a Runner: the state store, secret redaction and the
// notification channels. Nothing outside the state folder is touched.
func New(cfg *config.Pipeline, opts Options) (*Runner, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir := cfg.StateDir()
	if dir == "" {
		return nil, fmt.Errorf("state.store %q: only a folder is supported in this version; set state.store to a folder such as .hyperfork", cfg.State.Store)
	}
	st, err := store.NewDir(dir)
	if err != nil {
		return nil, err
	}
	red := exec.NewRedactor(cfg.Secrets(opts.Getenv)...)
	var specs []notify.Spec
	for _, n := range cfg.Notify {
		specs = append(specs, notify.Spec{Type: n.Type, Dir: n.Dir, URLEnv: n.URLEnv, SecretEnv: n.SecretEnv, Events: n.Events})
	}
	nt, err := notify.New(specs, opts.Getenv, notify.WithRedactor(red), notify.WithLogger(opts.Logger))
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return &Runner{cfg: cfg, opts: opts, store: st, redactor: red, notifier: nt, log: opts.Logger, out: opts.Out}, nil
}

// branches returns the selected branches of the config.
func (r *Runner) branches() ([]config.Branch, error) {
	return r.cfg.SelectBranches(r.opts.Branches)
}

// syncer opens the mirror and names the two remotes. An empty fork.url is
// the embedded fork: a bare repository in the state folder.
func (r *Runner) syncer(ctx context.Context) (*gitsync.Syncer, error) {
	forkURL := r.cfg.Fork.URL
	if forkURL == "" {
		forkURL = filepath.Join(r.store.Root(), "fork.git")
		if err := gitsync.EnsureShared(ctx, forkURL); err != nil {
			return nil, fmt.Errorf("embedded fork: %w", err)
		}
	}
	return gitsync.New(ctx, gitsync.Options{
		MirrorDir: filepath.Join(r.store.Root(), "mirror.git"),
		Upstream:  gitsync.Remote{URL: r.cfg.Upstream.URL, Token: r.secret(r.cfg.Upstream.TokenEnv)},
		Fork:      gitsync.Remote{URL: forkURL, Token: r.secret(r.cfg.Fork.TokenEnv)},
		Redactor:  r.redactor,
		Logger:    r.log,
	})
}

func (r *Runner) secret(env string) string {
	if env == "" {
		return ""
	}
	return r.opts.Getenv(env)
}

// lockAll takes the lock of every branch; a branch another run holds is
// reported and left out. The returned func releases the rest.
func (r *Runner) lockAll(ctx context.Context, rep *report.Report, branches []config.Branch) ([]config.Branch, func()) {
	var held []func()
	var free []config.Branch
	for _, b := range branches {
		unlock, err := r.store.Lock(ctx, "branch-"+store.EncodeName(b.Name))
		if err != nil {
			code := report.ExitFailed
			if errors.Is(err, store.ErrLocked) {
				code = report.ExitLocked
			}
			rb := rep.Branch(b.Name)
			rb.Error, rb.ExitCode = err.Error(), code
			continue
		}
		held = append(held, unlock)
		free = append(free, b)
	}
	return free, func() {
		for _, u := range held {
			u()
		}
	}
}

// Run runs a target and returns its report, already written to the state
// store and to Options.ReportPath. The report's ExitCode is the contract's.
func (r *Runner) Run(ctx context.Context, target string) *report.Report {
	rep := &report.Report{Target: target, Started: r.opts.Now().UTC().Format(time.RFC3339), Branches: []*report.Branch{}}
	branches, err := r.branches()
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitConfig
		r.finish(ctx, rep)
		return rep
	}
	switch target {
	case "plan":
		r.runSync(ctx, rep, branches, true)
	case "status":
		r.runStatus(ctx, rep, branches)
	case "report":
		if _, err := r.runReport(); err != nil {
			rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		}
	case "prune":
		r.runPrune(ctx, rep)
	case "sync", "build", "release":
		// Stages that change something hold each branch's lock for the
		// whole run; a branch another run holds is reported and left out.
		branches, unlock := r.lockAll(ctx, rep, branches)
		defer unlock()
		if target != "build" {
			r.runSync(ctx, rep, branches, false)
		}
		if target != "sync" {
			r.runBuild(ctx, rep, buildable(rep, branches))
		}
	default:
		rep.Error, rep.ExitCode = fmt.Sprintf("unknown target %q", target), report.ExitConfig
	}
	r.finish(ctx, rep)
	return rep
}

// interruption returns why ctx ended (a signal's *magerun.Interrupted, or
// context.Canceled), or nil while it runs.
func interruption(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
}

// buildable drops the branches whose sync failed: their fork head is
// unknown. A conflicted branch still builds its (unchanged) fork head.
func buildable(rep *report.Report, branches []config.Branch) []config.Branch {
	var out []config.Branch
	for _, b := range branches {
		if rb := rep.Branch(b.Name); rb.Sync != nil && rb.Sync.Status == report.SyncError {
			rb.Build = &report.Build{Status: report.BuildSkipped, Platforms: []string{}, Message: "sync failed"}
			continue
		}
		out = append(out, b)
	}
	return out
}

// finish computes the exit code and writes the report everywhere it goes.
func (r *Runner) finish(ctx context.Context, rep *report.Report) {
	rep.Finished = r.opts.Now().UTC().Format(time.RFC3339)
	stopped := interruption(ctx)
	if stopped != nil {
		// A stopped run is a failed one whatever its branches reached: the
		// person or supervisor that stopped it must not read success.
		rep.Interrupted = stopped.Error()
		rep.Error = joinErr(fmt.Sprintf("%v: the run stopped before it finished; the branches below say what was done, nothing else changed; run it again to finish", stopped), rep.Error)
	}
	if rep.ExitCode == 0 {
		codes := make([]int, 0, len(rep.Branches)+1)
		for _, b := range rep.Branches {
			codes = append(codes, b.ExitCode)
		}
		if stopped != nil {
			codes = append(codes, report.ExitFailed)
		}
		rep.ExitCode = report.Combine(codes...)
	}
	rep.Error = r.redactor.String(rep.Error)
	for _, b := range rep.Branches {
		b.Error = r.redactor.String(b.Error)
	}
	if err := rep.Write(filepath.Join(r.store.Root(), "reports", rep.Target+".json")); err != nil {
		r.log.Error("write report to the state folder", "err", err)
	}
	if r.opts.ReportPath != "" {
		if err := rep.Write(r.opts.ReportPath); err != nil {
			r.log.Error("write report", "path", r.opts.ReportPath, "err", err)
			fmt.Fprintf(r.out, "error: %v\n", err)
			if rep.ExitCode == report.ExitOK {
				rep.ExitCode = report.ExitFailed
			}
		}
	}
}
