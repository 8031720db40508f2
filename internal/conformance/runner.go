// Package conformance runs end-to-end tests against exactly one candidate
// build: the kubetest2 runner (a kind cluster from the candidate's own
// server tarball, the ginkgo tester with the candidate's own e2e.test) and
// the exec runner (any command that writes JUnit XML). A runner says where
// the results are, the log and the JUnit files; reading them is package
// junit's business, judging them against earlier runs package history's.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Candidate is what a runner tests: exactly one build of one commit.
type Candidate struct {
	Branch  string // the fork branch
	Commit  string // the full commit hash that was built
	Version string // the Kubernetes version string stamped into the build
	// Image is the hyperkube candidate, ref@digest.
	Image string
	// Images maps each image's name to its candidate ref@digest.
	Images map[string]string
	// BinDir holds the candidate's binaries and test binaries for the host
	// platform: kubectl, e2e.test, ginkgo, …
	BinDir string
	// ServerTarball is kubernetes-server-linux-<arch>.tar.gz for
	// test.platform, which kind turns into its node image.
	ServerTarball string
}

// Run is what a runner leaves behind: where the log and the results are,
// and how the run ended. Whether tests passed is in the JUnit files only.
type Run struct {
	// Log is the log file: every command line hyperfork ran, then what
	// the command wrote, stdout and stderr interleaved, secrets redacted.
	Log string
	// JUnit are the JUnit files found under Artifacts, sorted. After a
	// timeout or an interrupt they hold what finished before it.
	JUnit []string
	// Artifacts is the folder with the JUnit files and whatever else the
	// run left there (kind's exported cluster logs).
	Artifacts string
	Duration  time.Duration
	// TimedOut says the runner's Timeout ended the run: an infrastructure
	// failure, whatever JUnit says about the tests that did finish.
	TimedOut bool
	// Interrupted says ctx ended the run (Ctrl-C): no verdict.
	Interrupted bool
	// Err is what went wrong apart from what JUnit can tell: a command
	// that failed (kubetest2 and ginkgo fail when a test fails, so with
	// failures in JUnit this is expected), a timeout, a failed teardown.
	// JUnit without a failure beside a non-nil Err is an infrastructure
	// failure: a suite that crashed, a cluster that stayed up.
	Err error
}

// Runner runs the tests of one candidate in dir, a folder of its own for
// this one run (created if missing; a folder that holds an earlier run is
// refused, so that no run reads another's results).
//
// Both methods return an error, beside a *Run with the log, when the run
// yields nothing to read: a missing tool or input, or no JUnit at all. The
// *Run is nil when nothing started, so there is no log: invalid options,
// no specs to retry, a dir that could not be prepared.
type Runner interface {
	// Run runs the conformance tests.
	Run(ctx context.Context, c Candidate, dir string) (*Run, error)
	// Retry reruns exactly the named specs (JUnit testcase names, as
	// FocusRegex takes them), for the retry pass that tells a flake from
	// a failure.
	Retry(ctx context.Context, c Candidate, dir string, specs []string) (*Run, error)
}

// Errors the runners wrap; test with errors.Is.
var (
	// ErrMissingTool: a program the runner needs is not on PATH. The
	// message holds the command that installs it.
	ErrMissingTool = errors.New("missing tool")
	// ErrNoServerTarball: the candidate's server tarball is missing or
	// empty. kind would silently build Kubernetes from source instead.
	ErrNoServerTarball = errors.New("no server tarball")
	// ErrNoJUnit: the run wrote no JUnit file at all. Never a pass.
	ErrNoJUnit = errors.New("no JUnit results")
	// ErrTimedOut is the cause of a run's context when its timeout
	// (test.timeout) passed.
	ErrTimedOut = errors.New("test.timeout passed")
	// ErrTooFewTests: fewer tests ran than test.minTests. Never a pass.
	ErrTooFewTests = errors.New("too few tests ran")
)

// Names of what a runner puts in its dir.
const (
	logName       = "test.log"
	artifactsName = "artifacts"
)

// runDir is one run's folder, its log and how long it has been going.
type runDir struct {
	dir   string // absolute
	log   *os.File
	start time.Time
	run   *Run
	red   *exec.Redactor
	// endSeen says ended has looked at how the run ended.
	endSeen bool
}

// openRun creates dir and its artifacts folder and starts the log. A dir
// that already holds a log belongs to another run.
func openRun(dir string, red *exec.Redactor) (*runDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("test run folder %s: %w", dir, err)
	}
	artifacts := filepath.Join(abs, artifactsName)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return nil, fmt.Errorf("test run folder: %w", err)
	}
	logPath := filepath.Join(abs, logName)
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("test run folder %s holds an earlier run (%s exists): give each run a folder of its own", abs, logName)
	} else if err != nil {
		return nil, fmt.Errorf("test log: %w", err)
	}
	return &runDir{dir: abs, log: f, start: time.Now(), red: red,
		run: &Run{Log: logPath, Artifacts: artifacts}}, nil
}

// note writes a line of hyperfork's own to the log, redacted.
func (d *runDir) note(format string, args ...any) {
	fmt.Fprintf(d.log, "hyperfork: %s\n", d.red.String(fmt.Sprintf(format, args...)))
}

// finish closes the log, finds the JUnit files that match and fills in the
// run's end. A run without JUnit is an error that names the folder.
func (d *runDir) finish(ctx, runCtx context.Context, match func(name string) bool, hint string) (*Run, error) {
	r := d.run
	d.ended(ctx, runCtx)
	r.Duration = time.Since(d.start)
	junit, err := findJUnit(r.Artifacts, match)
	r.JUnit = junit
	if err == nil && len(junit) == 0 {
		err = fmt.Errorf("%w in %s: %s; see the log %s", ErrNoJUnit, r.Artifacts, hint, r.Log)
		if r.Err != nil {
			err = fmt.Errorf("%w\n%w", err, r.Err)
		}
	}
	if err != nil {
		d.note("%v", err)
	}
	if cerr := d.log.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("test log: %w", cerr)
	}
	return r, err
}

// ended records, once, whether a timeout or an interrupt ended the run,
// and says so in the log where it happened.
func (d *runDir) ended(ctx, runCtx context.Context) {
	if d.endSeen {
		return
	}
	d.endSeen = true
	r := d.run
	r.TimedOut = errors.Is(context.Cause(runCtx), ErrTimedOut) && ctx.Err() == nil
	r.Interrupted = ctx.Err() != nil
	switch {
	case r.TimedOut:
		d.note("%v: the process group was killed", context.Cause(runCtx))
	case r.Interrupted:
		d.note("interrupted (%v): the process group was killed", context.Cause(ctx))
	}
}

// fail ends a run that could not start: the reason goes to the log too.
func (d *runDir) fail(err error) (*Run, error) {
	d.run.Duration = time.Since(d.start)
	d.note("%v", err)
	d.log.Close()
	return d.run, err
}

// findJUnit returns the files under root whose base name match accepts,
// sorted. It does not follow symbolic links.
func findJUnit(root string, match func(name string) bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && match(d.Name()) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look for JUnit files in %s: %w", root, err)
	}
	slices.Sort(out)
	return out, nil
}

// isXML accepts any *.xml file: the exec runner's command names its files.
func isXML(name string) bool { return strings.EqualFold(filepath.Ext(name), ".xml") }

// withTimeout returns ctx limited to d (none when d is 0), with ErrTimedOut
// as the cause when it passes.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%s)", ErrTimedOut, d))
}

// logger returns l, or one that discards.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}

// lookPath finds name in the folders of pathList as a shell would: the
// first regular, executable file. os/exec's LookPath searches hyperfork's
// own PATH, not the child's.
func lookPath(name, pathList string) (string, error) {
	if strings.ContainsRune(name, filepath.Separator) {
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // "" and relative folders mean the working folder: never trusted
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", name, pathList)
}
