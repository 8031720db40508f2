package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/report"
)

// Env is the process environment a target runs in. The magefiles hand it
// over once; nothing below reads os.Getenv behind its back.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// ModuleDir is hyperfork's own module; default the working directory.
	ModuleDir string
}

// OptionsFromEnv reads the contract's environment variables.
func OptionsFromEnv(getenv func(string) string) Options {
	var o Options
	for _, b := range strings.Split(getenv("HYPERFORK_BRANCHES"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.Branches = append(o.Branches, b)
		}
	}
	o.ReportPath = getenv("HYPERFORK_REPORT")
	o.Force = getenv("HYPERFORK_FORCE") == "1" || strings.EqualFold(getenv("HYPERFORK_FORCE"), "true")
	o.BuildKitHost = getenv("BUILDKIT_HOST")
	o.Apply = getenv("HYPERFORK_APPLY") == "1"
	o.HTMLPath = getenv("HYPERFORK_HTML")
	o.JUnitDir = getenv("HYPERFORK_JUNIT")
	if o.HTMLPath == "" {
		o.HTMLPath = "hyperfork-report.html"
	}
	o.Getenv = getenv
	return o
}

// Main loads the config, runs the target and returns the contract's exit
// code with an error for people when it is not 0.
func Main(ctx context.Context, target string, env Env) (int, error) {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	opts := OptionsFromEnv(env.Getenv)
	opts.Out = env.Stdout
	opts.Progress = env.Stderr
	opts.ModuleDir = env.ModuleDir
	if opts.ModuleDir == "" {
		opts.ModuleDir, _ = os.Getwd()
	}
	opts.Logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	path := env.Getenv("HYPERFORK_CONFIG")
	if path == "" {
		path = "branches.yaml"
	}
	cfg, err := config.LoadFor(path, stagesOf(target)...)
	if err != nil {
		return usage(target, opts, fmt.Errorf("%w\nfix the config and run again; nothing was done", err))
	}
	// An unknown branch name is a usage error: nothing runs, nothing is
	// written to the state store.
	if _, err := cfg.SelectBranches(opts.Branches); err != nil {
		return usage(target, opts, fmt.Errorf("HYPERFORK_BRANCHES: %w", err))
	}
	r, err := New(ctx, cfg, opts)
	if err != nil {
		return usage(target, opts, err)
	}
	rep := r.Run(ctx, target)
	if rep.ExitCode == report.ExitOK {
		return 0, nil
	}
	return rep.ExitCode, errors.New(summarize(rep))
}

// stagesOf returns the stages target runs, so that a config is checked
// for what the target needs: a sync-only config with no build section
// syncs. plan predicts release, so it checks everything release would.
func stagesOf(target string) []config.Stage {
	switch target {
	case "sync", "status":
		return []config.Stage{config.StageSync}
	case "build":
		return []config.Stage{config.StageSync, config.StageBuild}
	case "test":
		return []config.Stage{config.StageTest}
	case "publish":
		return []config.Stage{config.StagePublish}
	case "release", "plan":
		return config.Stages()
	case "prune":
		// Retention needs the image names the build stage makes.
		return []config.Stage{config.StageBuild, config.StagePublish}
	}
	return nil
}

// usage reports a problem found before anything was done: exit code 2, and
// a report when one was asked for so scripts always find one.
func usage(target string, opts Options, err error) (int, error) {
	if opts.ReportPath != "" {
		rep := &report.Report{Target: target, ExitCode: report.ExitConfig, Error: err.Error(), Branches: []*report.Branch{}}
		if werr := rep.Write(opts.ReportPath); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return report.ExitConfig, err
}

// summarize says in one line per branch why the run did not exit 0. Branches
// that failed the same way (an unreachable upstream fails them all) share one
// line, so the reason is read once.
func summarize(rep *report.Report) string {
	var lines []string
	if rep.Error != "" {
		lines = append(lines, rep.Error)
	}
	var order []string
	byWhy := map[string][]string{}
	for _, b := range rep.Branches {
		if b.ExitCode == 0 {
			continue
		}
		why := b.Error
		if why == "" && b.Sync != nil && b.Sync.Status == report.SyncConflict {
			why = "merge conflict: waits for a person (see the resolution above)"
		}
		if _, seen := byWhy[why]; !seen {
			order = append(order, why)
		}
		byWhy[why] = append(byWhy[why], b.Name)
	}
	for _, why := range order {
		lines = append(lines, fmt.Sprintf("%s: %s", strings.Join(byWhy[why], ", "), why))
	}
	return fmt.Sprintf("%s: exit code %d\n%s", rep.Target, rep.ExitCode, strings.Join(lines, "\n"))
}
