package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// workspace is the generated world: one upstream both sides read, and two
// identical forks, one each, so neither side sees the other's pushes.
type workspace struct {
	o        SyncOptions
	upstream string // bare, shared and only read by the syncs
	forkOurs string // bare, hyperfork's fork
	forkGit  string // bare, plain git's fork, a copy of forkOurs
	clone    string // plain git's persistent clone of forkGit
	// forkPlumb is a third copy for plain git's plumbing, driven from the
	// persistent bare repository bare.
	forkPlumb, bare string
	config          string // hyperfork's branches.yaml
	report          string // HYPERFORK_REPORT
	ours            peaks  // what the sampler saw while hyperfork ran
	plain           peaks  // the same for plain git
	plainGit        uint64 // exact peak RSS of plain git's timed commands (wait4)
	// recording makes run record peak RSS into plainGit: on while plain
	// git's timed commands run, off for setup and checks.
	recording bool
}

// setup generates the repositories, writes hyperfork's config, primes its
// mirror with a first sync and gives plain git its clone: both sides start
// the measured scenarios from the same fetched state.
func setup(ctx context.Context, o SyncOptions, res *SyncResult) (*workspace, error) {
	ws := &workspace{
		o:         o,
		upstream:  filepath.Join(o.WorkDir, "upstream.git"),
		forkOurs:  filepath.Join(o.WorkDir, "fork-hyperfork.git"),
		forkGit:   filepath.Join(o.WorkDir, "fork-plain.git"),
		clone:     filepath.Join(o.WorkDir, "plain-clone"),
		forkPlumb: filepath.Join(o.WorkDir, "fork-plumbing.git"),
		bare:      filepath.Join(o.WorkDir, "plumbing.git"),
		config:    filepath.Join(o.WorkDir, "hyperfork", "branches.yaml"),
		report:    filepath.Join(o.WorkDir, "hyperfork", "report.json"),
	}
	log := o.Logger
	log.Info("generating upstream", "commits", o.Commits, "files", o.Files, "branches", o.Branches)
	start := time.Now()
	err := gitfixture.Generate(ctx, ws.upstream, gitfixture.GenSpec{
		Commits: o.Commits, Files: o.Files, Branches: o.Branches, Tags: true, Seed: 1,
	})
	if err != nil {
		return nil, err
	}
	res.Generate = time.Since(start)
	log.Info("generating fork", "carries", o.Carries)
	start = time.Now()
	if err := gitfixture.GenerateFork(ctx, ws.upstream, ws.forkOurs, o.Carries); err != nil {
		return nil, err
	}
	res.GenerateFork = time.Since(start)
	for _, dst := range []string{ws.forkGit, ws.forkPlumb} {
		if _, err := ws.run(ctx, "", "cp", "-a", ws.forkOurs, dst); err != nil {
			return nil, err
		}
	}
	if res.UpstreamSize, err = ws.git(ctx, ws.upstream, "count-objects", "-vH"); err != nil {
		return nil, err
	}
	if err := ws.writeConfig(o.ModuleDir); err != nil {
		return nil, err
	}

	log.Info("priming hyperfork's mirror with a first sync")
	res.Memory.SelfPeakBefore = selfPeak()
	rep, d, err := ws.sync(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("first sync: %w", err)
	}
	if err := expectStatus(rep, o.Branches, report.SyncUpToDate); err != nil {
		return nil, fmt.Errorf("first sync: %w", err)
	}
	res.Prime = d
	res.Memory.PrimeGit, res.Memory.PrimeAlloc = ws.ours.git, ws.ours.alloc
	ws.ours = peaks{}

	log.Info("cloning the forks for plain git")
	if _, err := ws.git(ctx, "", "clone", "--quiet", "--origin", "fork", ws.forkGit, ws.clone); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"config", "gc.auto", "0"}, // as in hyperfork's mirror: no gc at random times
		{"remote", "add", "upstream", ws.upstream},
		{"fetch", "--quiet", "upstream"},
	} {
		if _, err := ws.git(ctx, ws.clone, args...); err != nil {
			return nil, err
		}
	}
	// The bare repository's remotes fetch into refs/remotes, as a clone's do.
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", ws.bare},
		{"-C", ws.bare, "config", "gc.auto", "0"},
		{"-C", ws.bare, "remote", "add", "fork", ws.forkPlumb},
		{"-C", ws.bare, "remote", "add", "upstream", ws.upstream},
		{"-C", ws.bare, "fetch", "--quiet", "--multiple", "fork", "upstream"},
	} {
		if _, err := ws.git(ctx, "", args...); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// writeConfig writes hyperfork's branches.yaml: the two local bare
// repositories, every branch, no notifications, state in a folder.
func (ws *workspace) writeConfig(moduleDir string) error {
	img, err := findImages(moduleDir)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: hyperfork.dev/v1alpha1\nkind: Pipeline\nupstream:\n  url: %q\nfork:\n  url: %q\nbranches:\n", ws.upstream, ws.forkOurs)
	for _, br := range ws.o.Branches {
		fmt.Fprintf(&b, "  - name: %q\n", br)
	}
	fmt.Fprintf(&b, "build:\n  images: [%q]\nstate:\n  store: state\n", img)
	if err := os.MkdirAll(filepath.Dir(ws.config), 0o755); err != nil {
		return err
	}
	return os.WriteFile(ws.config, []byte(b.String()), 0o644)
}

// findImages returns images/hyperkube.yaml of hyperfork's module: the
// config must be valid as a whole, though sync never reads the image.
func findImages(moduleDir string) (string, error) {
	dir := moduleDir
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
			return "", fmt.Errorf("images/hyperkube.yaml not found in %s or its parents: run from hyperfork's repository or set SyncOptions.ModuleDir", dir)
		}
	}
}

// gitEnv is hermetic like hyperfork's own git runs: no user or system
// config, no prompts, a fixed locale and identity.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
		"GIT_AUTHOR_NAME=plain git", "GIT_AUTHOR_EMAIL=plain@localhost",
		"GIT_COMMITTER_NAME=plain git", "GIT_COMMITTER_EMAIL=plain@localhost")
}

// git runs git in dir and returns its trimmed stdout.
func (ws *workspace) git(ctx context.Context, dir string, args ...string) (string, error) {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	return ws.run(ctx, "", "git", args...)
}

// run runs a command and records its process tree's peak RSS, which wait4
// reports exactly, for plain git's memory column.
func (ws *workspace) run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	ws.o.Logger.Debug("ran", "cmd", name+" "+strings.Join(args, " "), "took", time.Since(start))
	if ws.recording && cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			ws.plainGit = max(ws.plainGit, uint64(ru.Maxrss)*1024)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
