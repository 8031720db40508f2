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

// workspace is the generated world: one upstream every side reads, and
// identical forks, one per side, so no side sees another's pushes.
type workspace struct {
	o        SyncOptions
	upstream string // bare, shared and only read by the syncs
	forkOurs string // bare, hyperfork's fork
	// forkFast is the fastest plain-git way's fork, a copy of forkOurs,
	// driven from plainMirror: a persistent bare repository set up as
	// hyperfork's mirror is.
	forkFast, plainMirror string
	// forkClone is a third copy for the way people often use, driven from
	// clone: a persistent clone with a work tree.
	forkClone, clone string
	config           string // hyperfork's branches.yaml
	report           string // HYPERFORK_REPORT
	ours             peaks  // what the sampler saw while hyperfork ran
	plain            peaks  // the same for plain git
	plainGit         uint64 // exact peak RSS of plain git's timed commands (wait4)
	// recording makes run record peak RSS into plainGit: on while plain
	// git's timed commands run, off for setup and checks.
	recording bool
}

// setup generates the repositories, writes hyperfork's config, primes its
// mirror with a first sync and gives plain git its mirror and its clone:
// every side starts the measured scenarios from the same fetched state.
func setup(ctx context.Context, o SyncOptions, res *SyncResult) (*workspace, error) {
	ws := &workspace{
		o:           o,
		upstream:    filepath.Join(o.WorkDir, "upstream.git"),
		forkOurs:    filepath.Join(o.WorkDir, "fork-hyperfork.git"),
		forkFast:    filepath.Join(o.WorkDir, "fork-plain-mirror.git"),
		plainMirror: filepath.Join(o.WorkDir, "plain-mirror.git"),
		forkClone:   filepath.Join(o.WorkDir, "fork-plain-clone.git"),
		clone:       filepath.Join(o.WorkDir, "plain-clone"),
		config:      filepath.Join(o.WorkDir, "hyperfork", "branches.yaml"),
		report:      filepath.Join(o.WorkDir, "hyperfork", "report.json"),
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
	for _, dst := range []string{ws.forkFast, ws.forkClone} {
		if _, err := ws.run(ctx, "", "cp", "-a", ws.forkOurs, dst); err != nil {
			return nil, err
		}
	}
	if res.UpstreamSize, err = ws.git(ctx, ws.upstream, "count-objects", "-vH"); err != nil {
		return nil, err
	}
	if err := ws.writeConfig(); err != nil {
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

	log.Info("fetching the forks for plain git")
	// The mirror's remotes fetch into refs/remotes, as a clone's do; its
	// settings are those gitsync gives hyperfork's mirror, so both sides
	// answer ancestry questions from the same kind of repository.
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", ws.plainMirror},
		{"-C", ws.plainMirror, "config", "gc.auto", "0"},
		{"-C", ws.plainMirror, "config", "fetch.writeCommitGraph", "true"},
		{"-C", ws.plainMirror, "config", "core.commitGraph", "true"},
		{"-C", ws.plainMirror, "remote", "add", "fork", ws.forkFast},
		{"-C", ws.plainMirror, "remote", "add", "upstream", ws.upstream},
		{"-C", ws.plainMirror, "fetch", "--quiet", "--multiple", "fork", "upstream"},
	} {
		if _, err := ws.git(ctx, "", args...); err != nil {
			return nil, err
		}
	}
	if _, err := ws.git(ctx, "", "clone", "--quiet", "--origin", "fork", ws.forkClone, ws.clone); err != nil {
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
	return ws, nil
}

// writeConfig writes hyperfork's branches.yaml as a user who only syncs
// writes it: the two local bare repositories, every branch, state in a
// folder, and no build section. Nothing else goes beside it: a sync must
// not need images/ or anything else of the build.
func (ws *workspace) writeConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: hyperfork.dev/v1alpha1\nkind: Pipeline\nupstream:\n  url: %q\nfork:\n  url: %q\nbranches:\n", ws.upstream, ws.forkOurs)
	for _, br := range ws.o.Branches {
		fmt.Fprintf(&b, "  - name: %q\n", br)
	}
	fmt.Fprintf(&b, "state:\n  store: state\n")
	if err := os.MkdirAll(filepath.Dir(ws.config), 0o755); err != nil {
		return err
	}
	return os.WriteFile(ws.config, []byte(b.String()), 0o644)
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
