package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Options are the kubetest2 runner's knobs (test.* keys). Start from
// DefaultOptions: an empty FocusRegex would run every e2e test there is,
// disruptive ones included, so it is refused rather than defaulted.
type Options struct {
	// FocusRegex and SkipRegex select the parallel pass's specs.
	FocusRegex string
	SkipRegex  string
	// Parallel is the parallel pass's number of ginkgo processes.
	Parallel int
	// SerialFocusRegex and SerialSkipRegex select the serial pass's
	// specs, run one at a time; an empty SerialFocusRegex skips the pass
	// (then set test.minTests by hand: ConformanceTests counts both).
	SerialFocusRegex string
	SerialSkipRegex  string
	// BaseImage is kind build node-image's --base-image; empty: the base
	// image the installed kind release was made with, the safe choice.
	BaseImage string
	// NodeImage is the node image's repository, without tag: the tag is
	// always the candidate's commit12, so no run uses another's image.
	NodeImage string
	// Env holds extra variables for kubetest2, its tester and e2e.test.
	Env []string
	// TeardownTimeout bounds kind delete cluster, which runs with a
	// context of its own after a timeout or an interrupt too.
	TeardownTimeout time.Duration
}

// DefaultOptions returns the defaults: the conformance specs, parallel
// ones with 4 ginkgo processes (sized for a 4-CPU CI runner such as
// GitHub's), then the serial ones.
func DefaultOptions() Options {
	return Options{
		FocusRegex:       `\[Conformance\]`,
		SkipRegex:        `\[Serial\]`,
		Parallel:         4,
		SerialFocusRegex: `\[Serial\].*\[Conformance\]`,
		NodeImage:        "hyperfork/kind-node",
		TeardownTimeout:  5 * time.Minute,
	}
}

// validate reports every problem at once.
func (o Options) validate() error {
	var errs []error
	if o.FocusRegex == "" {
		errs = append(errs, errors.New("FocusRegex is empty: that would run every e2e test; start from DefaultOptions"))
	}
	for name, re := range map[string]string{"FocusRegex": o.FocusRegex, "SkipRegex": o.SkipRegex,
		"SerialFocusRegex": o.SerialFocusRegex, "SerialSkipRegex": o.SerialSkipRegex} {
		if _, err := regexp.Compile(re); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, re, err))
		}
	}
	if o.Parallel < 1 {
		errs = append(errs, fmt.Errorf("Parallel is %d, want 1 or more", o.Parallel))
	}
	if o.NodeImage == "" || strings.Contains(o.NodeImage, "@") || strings.Contains(o.NodeImage[strings.LastIndex(o.NodeImage, "/")+1:], ":") {
		errs = append(errs, fmt.Errorf("NodeImage %q: want a repository without tag or digest, such as hyperfork/kind-node", o.NodeImage))
	}
	if o.TeardownTimeout <= 0 {
		errs = append(errs, errors.New("TeardownTimeout must be more than zero"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubetest2 runner options: %w", err)
	}
	return nil
}

// Kubetest2 is the kubetest2 runner. It makes a kind node image from the
// candidate's own server tarball, stages the candidate's e2e.test, ginkgo
// and kubectl in kubetest2's run dir, and runs kubetest2 with the kind
// deployer and the ginkgo tester (--use-built-binaries, never --build,
// which would run Kubernetes' make): a parallel pass, then a serial one,
// each on a fresh cluster. kind delete cluster runs after every run, also
// after a timeout or an interrupt.
//
// Its folder holds test.log, kubeconfig, rundir/ (the staged binaries) and
// artifacts/<pass>/ (kubetest2's --artifacts: junit_runner.xml, e2e's
// junit_*.xml, the cluster logs kubetest2 exports on the way down).
type Kubetest2 struct {
	Options Options
	// Commander runs the commands; nil: ExecCommander with Redactor.
	Commander Commander
	// Path is the PATH the tools are looked up in and run with; empty:
	// hyperfork's own.
	Path string
	// Timeout is test.timeout for the whole run, node image included;
	// 0 means none. Teardown runs after it, under TeardownTimeout.
	Timeout  time.Duration
	Redactor *exec.Redactor
	// Logger gets one line per step; nil discards.
	Logger *slog.Logger
}

var _ Runner = (*Kubetest2)(nil)

// pass is one kubetest2 invocation.
type pass struct {
	name        string // its artifacts folder and run id
	focus, skip string
	parallel    int
}

// Run runs the parallel pass, then the serial one.
func (k *Kubetest2) Run(ctx context.Context, c Candidate, dir string) (*Run, error) {
	o := k.Options
	passes := []pass{{name: "parallel", focus: o.FocusRegex, skip: o.SkipRegex, parallel: o.Parallel}}
	if o.SerialFocusRegex != "" {
		passes = append(passes, pass{name: "serial", focus: o.SerialFocusRegex, skip: o.SerialSkipRegex, parallel: 1})
	}
	return k.run(ctx, c, dir, passes)
}

// Retry runs one pass focused on exactly the specs, one at a time: serial
// specs may be among them.
func (k *Kubetest2) Retry(ctx context.Context, c Candidate, dir string, specs []string) (*Run, error) {
	focus, err := FocusRegex(specs)
	if err != nil {
		return nil, err
	}
	return k.run(ctx, c, dir, []pass{{name: "retry", focus: focus, parallel: 1}})
}

func (k *Kubetest2) run(ctx context.Context, c Candidate, dir string, passes []pass) (*Run, error) {
	if err := k.Options.validate(); err != nil {
		return nil, err
	}
	if c.Commit == "" {
		return nil, errors.New("kubetest2 runner: the candidate has no commit")
	}
	d, err := openRun(dir, k.Redactor)
	if err != nil {
		return nil, err
	}
	path := k.Path
	if path == "" {
		path = os.Getenv("PATH")
	}
	tools, err := lookTools(path)
	if err != nil {
		return d.fail(fmt.Errorf("kubetest2 runner: %w", err))
	}
	tarball, err := checkTarball(c.ServerTarball)
	if err != nil {
		return d.fail(fmt.Errorf("kubetest2 runner: %w", err))
	}
	runDir := filepath.Join(d.dir, "rundir")
	if err := stageBinaries(c.BinDir, runDir); err != nil {
		return d.fail(fmt.Errorf("kubetest2 runner: %w", err))
	}
	commander := k.Commander
	if commander == nil {
		commander = ExecCommander{Redactor: k.Redactor}
	}
	x := &steps{d: d, cmd: commander, env: append([]string{"PATH=" + path}, k.Options.Env...), log: logger(k.Logger).With("branch", c.Branch, "commit", commit12(c.Commit))}

	runCtx, cancel := withTimeout(ctx, k.Timeout)
	defer cancel()
	if err := x.run(runCtx, "check Docker", tools["docker"], "info", "--format", "{{.ServerVersion}}"); err != nil {
		d.ended(ctx, runCtx)
		return d.fail(fmt.Errorf("kubetest2 runner: no Docker engine answers (kind runs its nodes as containers): start Docker, or fix DOCKER_HOST: %w", err))
	}
	image := k.Options.NodeImage + ":" + commit12(c.Commit)
	build := []string{"build", "node-image", "--type", "file", tarball, "--image", image}
	if k.Options.BaseImage != "" {
		build = append(build, "--base-image", k.Options.BaseImage)
	}
	if err := x.run(runCtx, "build the node image", tools["kind"], build...); err != nil {
		d.ended(ctx, runCtx)
		return d.fail(fmt.Errorf("kubetest2 runner: kind node image from %s: %w", tarball, err))
	}

	cluster := ClusterName(c.Branch, c.Commit)
	kubeconfig := filepath.Join(d.dir, "kubeconfig")
	var errs []error
	for _, p := range passes {
		if runCtx.Err() != nil {
			break
		}
		args := []string{"kind", "--up", "--down",
			"--cluster-name", cluster, "--image-name", image, "--kubeconfig", kubeconfig,
			"--run-id", commit12(c.Commit) + "-" + p.name, "--rundir", runDir,
			"--artifacts", filepath.Join(d.run.Artifacts, p.name),
			"--test=ginkgo", "--", "--use-built-binaries", "--focus-regex=" + p.focus}
		if p.skip != "" {
			args = append(args, "--skip-regex="+p.skip)
		}
		args = append(args, "--parallel", strconv.Itoa(p.parallel))
		if err := x.run(runCtx, p.name+" pass", tools["kubetest2"], args...); err != nil {
			errs = append(errs, fmt.Errorf("%s pass: %w", p.name, err))
		}
	}
	d.ended(ctx, runCtx)

	// The run's context may be over: teardown gets one of its own.
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), k.Options.TeardownTimeout)
	defer tcancel()
	if d.run.TimedOut {
		// kubetest2 was killed before it could export the cluster's logs;
		// they say why the run hung. A person who pressed Ctrl-C waits
		// for the delete only.
		x.run(tctx, "export the cluster logs", tools["kind"], "export", "logs", filepath.Join(d.run.Artifacts, "timeout-logs"), "--name", cluster)
	}
	// --kubeconfig keeps kind away from the user's ~/.kube/config.
	if err := x.run(tctx, "delete the cluster", tools["kind"], "delete", "cluster", "--name", cluster, "--kubeconfig", kubeconfig); err != nil {
		errs = append(errs, fmt.Errorf("tear down: %w; delete it by hand: kind delete cluster --name %s", err, cluster))
	}
	if d.run.TimedOut || d.run.Interrupted {
		errs = append(errs, context.Cause(runCtx))
	}
	d.run.Err = errors.Join(errs...)
	return d.finish(ctx, runCtx, isKubetest2JUnit, "kubetest2 wrote no junit*.xml")
}

// isKubetest2JUnit accepts junit*.xml only: the artifacts also hold the
// cluster's logs, whose files are no test results.
func isKubetest2JUnit(name string) bool {
	return strings.HasPrefix(name, "junit") && strings.HasSuffix(name, ".xml")
}

// steps runs the runner's commands, each one announced in the log.
type steps struct {
	d   *runDir
	cmd Commander
	env []string
	log *slog.Logger
}

func (s *steps) run(ctx context.Context, step, name string, args ...string) error {
	fmt.Fprintf(s.d.log, "$ %s\n", s.d.red.String(exec.Quote(name, args...)))
	start := time.Now()
	s.log.Info("kubetest2 runner: "+step, "log", s.d.run.Log)
	err := s.cmd.Run(ctx, name, args, s.env, s.d.dir, s.d.log)
	if err != nil {
		var re *exec.RunError
		if errors.As(err, &re) {
			s.d.note("%s failed: %v", filepath.Base(name), re.Inner)
		} else {
			s.d.note("%s failed: %v", filepath.Base(name), err)
		}
		s.log.Warn("kubetest2 runner: "+step+" failed", "took", time.Since(start).Round(time.Second), "err", err)
	}
	return err
}
