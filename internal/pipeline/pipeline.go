// Package pipeline knows the order of the stages and what each hands the
// next. It is the only package that knows the whole flow: the magefiles call
// one function here, and the stage packages know nothing of each other.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/gitsync"
	"github.com/hyperfork/hyperfork/internal/killpoint"
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
	// Apply makes prune delete what its retention plan says
	// (HYPERFORK_APPLY=1); otherwise it prints the plan only.
	Apply bool
	// HTMLPath is where report writes the test-history report
	// (HYPERFORK_HTML; relative to the working directory).
	HTMLPath string
	// JUnitDir, when set, receives a copy of each test run's JUnit files,
	// in one folder per branch, for a CI system's own test views
	// (HYPERFORK_JUNIT; relative to the working directory).
	JUnitDir string
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
	cfg  *config.Pipeline
	opts Options
	// state holds what must persist and be shared between runners:
	// per-branch records, reports, leases. A folder or S3.
	state store.Backend
	// logs is the artifact store (logs.store): build and test logs.
	logs store.Artifacts
	// work is the local, disposable work folder: the mirror, exported
	// sources, build outputs, buildkitd's state.
	work     string
	runID    string
	stages   []*stage
	redactor *exec.Redactor
	notifier *notify.Notifier
	log      *slog.Logger
	out      io.Writer
	outMu    sync.Mutex // flows print from their own goroutines

	// leaseMu guards the run's leases, which a flow releases when it ends,
	// and branchReported, the branches whose report a flow already wrote.
	leaseMu        sync.Mutex
	branchReported map[string]bool

	builder      *builder
	syncerOnce   sync.Once
	syncerShared *gitsync.Syncer
	syncerErr    error
}

// New prepares a Runner: the state and artifact stores, the work folder,
// secret redaction and the notification channels.
func New(ctx context.Context, cfg *config.Pipeline, opts Options) (*Runner, error) {
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
	s3 := store.S3Options{Region: cfg.State.S3.Region, Endpoint: cfg.State.S3.Endpoint, PathStyle: cfg.State.S3.PathStyle}
	st, err := store.Open(ctx, cfg.State.Store, s3)
	if err != nil {
		return nil, fmt.Errorf("state.store: %w", err)
	}
	logs, err := store.Open(ctx, cfg.Logs.Store, s3)
	if err != nil {
		return nil, fmt.Errorf("logs.store: %w", err)
	}
	if err := os.MkdirAll(cfg.WorkDir(), 0o755); err != nil {
		return nil, fmt.Errorf("state.workDir %s: %w", cfg.WorkDir(), err)
	}
	red := exec.NewRedactor(cfg.Secrets(opts.Getenv)...)
	var specs []notify.Spec
	for _, n := range cfg.Notify {
		specs = append(specs, notify.Spec{Type: n.Type, Dir: n.Dir, URLEnv: n.URLEnv, SecretEnv: n.SecretEnv, Events: n.Events,
			TokenEnv: n.TokenEnv, Channel: n.Channel, SMTP: n.SMTP, From: n.From, To: n.To,
			UsernameEnv: n.UsernameEnv, PasswordEnv: n.PasswordEnv, MaxAttachment: n.MaxAttachmentBytes()})
	}
	// The ledger makes an announcement repeated after a crash reach only
	// the channels that lack it.
	nt, err := notify.New(specs, opts.Getenv, notify.WithRedactor(red), notify.WithLogger(opts.Logger), notify.WithStdout(opts.Out),
		notify.WithLedger(&deliveryLedger{st: st, now: opts.Now}))
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	r := &Runner{cfg: cfg, opts: opts, state: st, logs: logs, work: cfg.WorkDir(), runID: newRunID(opts.Now()),
		redactor: red, notifier: nt, log: opts.Logger, out: opts.Out}
	r.stages = r.defaultStages()
	return r, nil
}

// newRunID names a run in lock records and logs: its start and a random
// part, so two runs started in the same second differ.
func newRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// stateDir is the state store's folder, where the embedded fork and the
// local OCI layout live (config requires fork.url and publish.registry
// with state in S3, so these are never needed then).
func (r *Runner) stateDir() string { return r.cfg.StateDir() }

// branches returns the selected branches of the config.
func (r *Runner) branches() ([]config.Branch, error) {
	return r.cfg.SelectBranches(r.opts.Branches)
}

// syncer opens the mirror and names the two remotes. An empty fork.url is
// the embedded fork: a bare repository in the state folder.
func (r *Runner) syncer(ctx context.Context) (*gitsync.Syncer, error) {
	forkURL := r.cfg.Fork.URL
	if forkURL == "" {
		forkURL = filepath.Join(r.stateDir(), "fork.git")
		if err := gitsync.EnsureShared(ctx, forkURL); err != nil {
			return nil, fmt.Errorf("embedded fork: %w", err)
		}
	}
	return gitsync.New(ctx, gitsync.Options{
		MirrorDir: filepath.Join(r.work, "mirror.git"),
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

// leaseAll takes the lease of every branch for target; a branch another run
// holds is reported (exit 5, naming the holder) and left out. The returned
// func releases the rest. A lease taken over from a run that died is said.
func (r *Runner) leaseAll(ctx context.Context, rep *report.Report, target string, branches []config.Branch) ([]config.Branch, map[string]*store.Lease, func()) {
	leases := map[string]*store.Lease{}
	var free []config.Branch
	for _, b := range branches {
		l, err := r.state.LockBranch(ctx, b.Name, store.NewHolder(r.runID, target), store.WithTTL(r.cfg.State.Lease))
		if err != nil {
			code := report.ExitFailed
			if errors.Is(err, store.ErrLocked) {
				code = report.ExitLocked
			}
			rb := rep.Branch(b.Name)
			rb.Error, rb.ExitCode = err.Error(), code
			r.printf("%s: %v\n", b.Name, err)
			continue
		}
		if l.TookOver != nil {
			r.printf("%s: took over the stale lock of %s (its lease expired)\n", b.Name, l.TookOver)
			r.log.Warn("took over a stale lock", "branch", b.Name, "holder", l.TookOver.String())
		}
		leases[b.Name] = l
		free = append(free, b)
	}
	return free, leases, func() {
		r.leaseMu.Lock()
		held := maps.Clone(leases)
		clear(leases)
		r.leaseMu.Unlock()
		for name, l := range held {
			if err := l.Release(context.WithoutCancel(ctx)); err != nil {
				r.log.Warn("release the branch lock", "branch", name, "err", err)
			}
		}
	}
}

// endFlow is the end of one branch's flow, before the whole run's: its part
// of the report is kept and its lease released, so that a run for this
// branch alone need not wait, exit 5, while another branch's conformance
// run goes on for hours. The report is written first: once the lease is
// free, a newer run's report may follow, and must not be overwritten.
func (r *Runner) endFlow(ctx context.Context, target string, f *flow, leases map[string]*store.Lease) {
	r.leaseMu.Lock()
	l := leases[f.branch.Name]
	delete(leases, f.branch.Name)
	r.leaseMu.Unlock()
	if l == nil {
		return // not this run's to end (the flow tests run without leases)
	}
	f.rb.Error = r.redactor.String(f.rb.Error)
	r.keepBranchReport(ctx, target, r.opts.Now().UTC().Format(time.RFC3339), f.rb)
	if err := l.Release(context.WithoutCancel(ctx)); err != nil {
		r.log.Warn("release the branch lock", "branch", f.branch.Name, "err", err)
	}
}

// printf writes a line of the summary; flows call it from their goroutines.
func (r *Runner) printf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.out, format, args...)
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
		heads := r.runSync(ctx, rep, branches, true)
		r.plan(ctx, rep, branches, heads)
	case "status":
		r.runStatus(ctx, rep, branches)
	case "report":
		if _, err := r.runReport(ctx); err != nil {
			rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		}
	case "prune":
		r.runPrune(ctx, rep)
	case "sync", "build", "test", "publish", "release":
		// Targets that change something hold each branch's lease for the
		// whole run; a branch another run holds is reported and left out.
		free, leases, release := r.leaseAll(ctx, rep, target, branches)
		defer release()
		// Crash tests: the leases are held and nothing else is done.
		killpoint.Reach("run.leased")
		var heads map[string]*ForkHead
		if target == "sync" || target == "release" {
			heads = r.runSync(ctx, rep, free, false)
		}
		if target != "sync" {
			r.runFlows(ctx, rep, free, leases, heads, flowStages(target))
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
	// The report goes to the state store even when the run was stopped.
	if err := store.PutJSON(context.WithoutCancel(ctx), r.state, reportKey(rep.Target), rep); err != nil {
		r.log.Error("write report to the state store", "err", err)
	}
	r.keepBranchReports(ctx, rep)
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

// reportKey is where a target's last report lives in the state store.
func reportKey(target string) string { return "reports/" + target + ".json" }
