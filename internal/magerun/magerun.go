// Package magerun is what `go tool mage` runs in this repository: mage
// itself (the pinned github.com/magefile/mage, as a library), with the two
// things a pipeline needs that plain mage does not give it.
//
//   - Concurrent runs in one checkout. Mage writes mage_output_file.go into
//     magefiles/ and removes it after compiling, so two runs started in the
//     same second break each other's compile. The compile here holds an
//     exclusive lock on the checkout and writes the binary to a stable path
//     of the checkout's own in the user's cache (go relinks it only when the
//     magefiles or what they import changed); the targets then run without
//     the lock, so per-branch locks decide who may work.
//   - Signals. `go tool` forwards every signal to mage, but mage dies of
//     SIGTERM and swallows SIGINT, leaving the compiled targets running (and
//     pushing) in the background. Here the targets run in their own process
//     group, every SIGINT, SIGTERM or SIGHUP this process receives reaches
//     them as one SIGTERM (a second, later one as SIGKILL), they die with this
//     process (PR_SET_PDEATHSIG), and this process exits with their code.
//
// The targets' side of the bargain is TargetContext.
package magerun

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/magefile/mage/mage"
)

// EnvWrapped is set for the targets' process so that TargetContext knows a
// supervisor forwards signals to it.
const EnvWrapped = "HYPERFORK_MAGE_SUPERVISED"

// forceAfter is how long after the first signal a further one forces the
// targets down with SIGKILL. Shorter gaps are the same keypress arriving
// twice: from the terminal and forwarded by `go tool`.
const forceAfter = 2 * time.Second

// Main runs mage with args (without the program name) and returns the exit
// code for os.Exit.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	dieWithParent()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	inv, cmd, err := mage.Parse(stderr, stdout, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 2
	}
	inv.Stdin, inv.Stderr = stdin, stderr
	helpAfterTarget(&inv)

	unlock, err := lockCheckout(inv.Dir, stderr, sigs)
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	if cmd != mage.None || inv.List || inv.Help || inv.Autocomplete {
		// Listing, help and mage's own commands end in mage; only running
		// targets needs the supervision below.
		defer unlock()
		return mage.ParseAndRun(stdout, stderr, stdin, rewriteHelp(args, inv))
	}

	exe, err := binaryPath(inv.Dir)
	if err != nil {
		unlock()
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	targets := inv.Args
	compile := inv
	compile.CompileOut = exe
	compile.Args = nil
	code := mage.Invoke(compile)
	unlock()
	if code != 0 {
		return code
	}
	select {
	case sig := <-sigs:
		fmt.Fprintf(stderr, "hyperfork: %v before the targets started; nothing was done\n", sig)
		return 1
	default:
	}
	return supervise(compile.CompileOut, targets, inv, stdin, stdout, stderr, sigs)
}

// helpAfterTarget turns `mage sync --help` into `mage -h sync`: mage would
// otherwise run the target with the flag as a stray argument.
func helpAfterTarget(inv *mage.Invocation) {
	if len(inv.Args) < 2 {
		return
	}
	for _, a := range inv.Args[1:] {
		switch a {
		case "-h", "-help", "--help":
			inv.Help, inv.Args = true, inv.Args[:1]
			return
		}
	}
}

// rewriteHelp returns the arguments for mage itself, with help after a
// target moved before it as mage expects.
func rewriteHelp(args []string, inv mage.Invocation) []string {
	if !inv.Help || len(inv.Args) != 1 {
		return args
	}
	var out []string
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", inv.Args[0]:
			continue
		}
		out = append(out, a)
	}
	return append(out, "-h", inv.Args[0])
}

// supervise runs the compiled targets and waits for them, forwarding signals.
func supervise(exe string, targets []string, inv mage.Invocation, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	c := osexec.Command(exe, targets...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	c.Dir = inv.WorkDir
	if c.Dir == "" {
		c.Dir = inv.Dir
	}
	c.Env = append(os.Environ(), EnvWrapped+"=1")
	// What mage's RunCompiled tells the compiled binary about its flags.
	for k, on := range map[string]bool{"MAGEFILE_VERBOSE": inv.Verbose, "MAGEFILE_DEBUG": inv.Debug} {
		if on {
			c.Env = append(c.Env, k+"=1")
		}
	}
	if inv.Timeout > 0 {
		c.Env = append(c.Env, "MAGEFILE_TIMEOUT="+inv.Timeout.String())
	}
	if inv.GoCmd != "" {
		c.Env = append(c.Env, "MAGEFILE_GOCMD="+inv.GoCmd)
	}
	if err := start(c); err != nil {
		fmt.Fprintf(stderr, "Error: run compiled magefile: %v\n", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var first time.Time
	for {
		select {
		case err := <-done:
			return exitCode(err)
		case sig := <-sigs:
			switch {
			case first.IsZero():
				first = time.Now()
				fmt.Fprintf(stderr, "hyperfork: %v received: stopping the run (the report says what was interrupted)\n", sig)
				_ = c.Process.Signal(syscall.SIGTERM)
			case time.Since(first) > forceAfter:
				fmt.Fprintf(stderr, "hyperfork: %v received again: killing the run\n", sig)
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			}
		}
	}
}

// exitCode maps the targets' end to an exit code; death by a signal is 1,
// a failed stage, as the contract has no code of its own for it.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *osexec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return ee.ExitCode()
	}
	return 1
}

// binaryPath is where the checkout's compiled targets live between runs: a
// stable path, so that go finds the binary up to date and does not relink
// it (a relink costs seconds on every run). It is only written under the
// checkout's lock, and go replaces it by a new file (remove, then create),
// so a run still executing the old binary is not disturbed.
func binaryPath(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(abs))
	folder := filepath.Join(cache, "hyperfork", "mage", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return "", fmt.Errorf("folder for the compiled magefiles: %w", err)
	}
	// Named mage, which mage's generated help prints as the program name.
	return filepath.Join(folder, "mage"), nil
}

// lockCheckout takes an exclusive lock on the magefiles' checkout for the
// compile, waiting for another run's compile (saying so once) unless a
// signal asks to stop.
func lockCheckout(dir string, stderr io.Writer, sigs <-chan os.Signal) (func(), error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("open magefiles folder %s: %w", abs, err)
	}
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	tick := time.NewTimer(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-got:
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lock %s for mage's compile: %w", abs, err)
			}
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		case <-tick.C:
			fmt.Fprintf(stderr, "hyperfork: waiting for another mage in %s to finish compiling the magefiles\n", abs)
		case sig := <-sigs:
			// Closing the file ends the waiting flock's claim with the process.
			return nil, fmt.Errorf("%v while waiting to compile the magefiles; nothing was done", sig)
		}
	}
}
