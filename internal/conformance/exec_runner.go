package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Exec is the exec runner: test.command, run against the candidate with
// these variables on top of hyperfork's allow-listed environment
// (exec.BaseEnv):
//
//	HYPERFORK_IMAGE      the hyperkube candidate, ref@digest
//	HYPERFORK_IMAGES     JSON object: image name → ref@digest
//	HYPERFORK_BINDIR     the candidate's binaries and test binaries for the host
//	HYPERFORK_ARTIFACTS  where the command writes its JUnit XML (any *.xml, at any depth) and anything else to keep
//	HYPERFORK_BRANCH, HYPERFORK_COMMIT, HYPERFORK_VERSION
//	HYPERFORK_FOCUS      set by Retry only: a regex (RE2, ginkgo's --focus
//	                     syntax) matching exactly the specs to rerun; pass it
//	                     on as e2e.test --ginkgo.focus="$HYPERFORK_FOCUS"
//	PATH                 HYPERFORK_BINDIR first, then hyperfork's PATH
//
// The command's stdout and stderr, interleaved, are the log. It runs in a
// process group of its own: the timeout, a cancel, and its own exit kill
// the whole group, so nothing it started outlives the run.
type Exec struct {
	// Command is test.command: the program and its arguments. A program
	// without a slash is looked up in the PATH above, so it can be one of
	// the candidate's binaries.
	Command []string
	// Dir is where the command runs and what a relative program path is
	// relative to: the config file's folder. Empty: the run's folder.
	Dir string
	// Timeout is test.timeout; 0 means none.
	Timeout time.Duration
	// Redactor hides secrets in the log and in errors.
	Redactor *exec.Redactor
	// Logger gets one line per run; nil discards.
	Logger *slog.Logger
}

var _ Runner = (*Exec)(nil)

// Run runs the command once.
func (e *Exec) Run(ctx context.Context, c Candidate, dir string) (*Run, error) {
	return e.run(ctx, c, dir, "")
}

// Retry runs the command with HYPERFORK_FOCUS set to FocusRegex(specs).
func (e *Exec) Retry(ctx context.Context, c Candidate, dir string, specs []string) (*Run, error) {
	focus, err := FocusRegex(specs)
	if err != nil {
		return nil, err
	}
	return e.run(ctx, c, dir, focus)
}

func (e *Exec) run(ctx context.Context, c Candidate, dir, focus string) (*Run, error) {
	if len(e.Command) == 0 {
		return nil, errors.New("exec runner: test.command is empty")
	}
	d, err := openRun(dir, e.Redactor)
	if err != nil {
		return nil, err
	}
	env, err := e.env(c, d.run.Artifacts, focus)
	if err != nil {
		return d.fail(err)
	}
	name, err := lookPath(e.Command[0], pathOf(env))
	if err != nil {
		return d.fail(fmt.Errorf("exec runner: test.command %w", err))
	}
	wd := e.Dir
	if wd == "" {
		wd = d.dir
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "HYPERFORK_") {
			d.note("%s", kv)
		}
	}
	fmt.Fprintf(d.log, "$ %s\n", e.Redactor.String(exec.Quote(name, e.Command[1:]...)))

	runCtx, cancel := withTimeout(ctx, e.Timeout)
	defer cancel()
	log := logger(e.Logger)
	log.Info("test command", "branch", c.Branch, "commit", c.Commit, "retry", focus != "", "log", d.run.Log)
	d.run.Err = exec.Stream(runCtx, exec.Cmd{Name: name, Args: e.Command[1:], Dir: wd, Env: env, Redactor: e.Redactor}, d.log)
	r, err := d.finish(ctx, runCtx, isXML, "the command must write its results as JUnit XML into $HYPERFORK_ARTIFACTS")
	log.Info("test command done", "branch", c.Branch, "junit", len(r.JUnit), "took", r.Duration.Round(time.Millisecond),
		"timedOut", r.TimedOut, "interrupted", r.Interrupted, "failed", r.Err != nil)
	return r, err
}

// env returns the command's variables on top of exec.BaseEnv.
func (e *Exec) env(c Candidate, artifacts, focus string) ([]string, error) {
	images := c.Images
	if images == nil {
		images = map[string]string{}
	}
	imagesJSON, err := json.Marshal(images) // keys sorted
	if err != nil {
		return nil, err
	}
	path := os.Getenv("PATH")
	bin := ""
	if c.BinDir != "" {
		if bin, err = filepath.Abs(c.BinDir); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("exec runner: the candidate's bin folder: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("exec runner: the candidate's bin folder %s is not a folder", bin)
		}
		path = bin + string(filepath.ListSeparator) + path
	}
	env := []string{
		"HYPERFORK_IMAGE=" + c.Image,
		"HYPERFORK_IMAGES=" + string(imagesJSON),
		"HYPERFORK_BINDIR=" + bin,
		"HYPERFORK_ARTIFACTS=" + artifacts,
		"HYPERFORK_BRANCH=" + c.Branch,
		"HYPERFORK_COMMIT=" + c.Commit,
		"HYPERFORK_VERSION=" + c.Version,
	}
	if focus != "" {
		env = append(env, "HYPERFORK_FOCUS="+focus)
	}
	return append(env, "PATH="+path), nil
}

// pathOf returns the value of PATH in env, the last one winning as in
// os/exec.
func pathOf(env []string) string {
	p := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	return p
}
