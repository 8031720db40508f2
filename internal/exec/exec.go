// Package exec runs external commands with captured output, context
// cancellation and secret redaction. Every external command hyperfork runs
// goes through here so that no secret reaches a log or an error message, no
// variable of the caller's environment changes what a command does, and no
// command outlives the run that started it.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Cmd describes one command to run.
type Cmd struct {
	Name string
	Args []string
	Dir  string
	// Env is added on top of BaseEnv(os.Getenv); a variable set here wins.
	// Nothing else of hyperfork's own environment reaches the command.
	Env   []string
	Stdin io.Reader
	// Stdout, if set, receives stdout instead of it being captured.
	// Stderr is captured either way.
	Stdout io.Writer
	// Redactor hides secrets in the error message.
	Redactor *Redactor
}

// RunError is returned when a command fails. Its message is the command line
// you can paste into a shell, followed by why it failed and the end of what
// it wrote to stderr, with secrets redacted.
type RunError struct {
	Command string
	// Output is the end of the command's stderr (preceded by its stdout
	// when that was captured and short).
	Output string
	Inner  error
}

// Error returns the command, its failure and its output.
func (e *RunError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("command failed: %s: %v", e.Command, e.Inner)
	}
	return fmt.Sprintf("command failed: %s: %v\n%s", e.Command, e.Inner, out)
}

// Unwrap returns the cause, such as an *os/exec.ExitError, and for an
// interrupted command also the context's error (context.Canceled, …).
func (e *RunError) Unwrap() error { return e.Inner }

// ExitCode returns the exit code of the failed command, or -1.
func (e *RunError) ExitCode() int {
	var ee *osexec.ExitError
	if errors.As(e.Inner, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// interruptedError is a command stopped because its context ended.
type interruptedError struct {
	cause error // context.Cause
	err   error // what Wait reported: the signal, usually
}

func (e *interruptedError) Error() string {
	msg := e.cause.Error()
	// A cause such as magerun's "interrupted by SIGINT" says it already.
	if !strings.HasPrefix(msg, "interrupted") {
		msg = "interrupted: " + msg
	}
	return fmt.Sprintf("%s (%v)", msg, e.err)
}

func (e *interruptedError) Unwrap() []error { return []error{e.cause, e.err} }

// killDelay is how long a cancelled command has between SIGTERM and SIGKILL:
// git needs well under a second to remove its lock files.
const killDelay = 3 * time.Second

// Run runs the command and returns its stdout. Stderr is captured and its
// end is part of the error if the command fails.
//
// The command runs in its own process group. When ctx ends, the whole group
// gets SIGTERM (git removes its .lock files then; SIGKILL would leave them
// in the mirror and block the next run), and SIGKILL if it is still there
// after a few seconds. On Linux the command is also killed if hyperfork
// dies first.
func Run(ctx context.Context, c Cmd) ([]byte, error) {
	cmd := osexec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(BaseEnv(os.Getenv), c.Env...)
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process, syscall.SIGTERM) }
	cmd.WaitDelay = killDelay
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxStderr}
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = stderr
	err := runLocked(cmd)
	if cmd.Process != nil && (ctx.Err() != nil || errors.Is(err, osexec.ErrWaitDelay)) {
		// The group's leader is gone; what ignored SIGTERM, or still
		// held its output open, is not.
		signalGroup(cmd.Process, syscall.SIGKILL)
	}
	if err != nil {
		out := stderr.String()
		if c.Stdout == nil && stdout.Len() > 0 && stdout.Len() < 64<<10 {
			out = stdout.String() + out
		}
		if ctx.Err() != nil {
			err = &interruptedError{cause: context.Cause(ctx), err: err}
		}
		return stdout.Bytes(), &RunError{
			Command: c.Redactor.String(Quote(c.Name, c.Args...)),
			Output:  c.Redactor.String(out),
			Inner:   err,
		}
	}
	return stdout.Bytes(), nil
}

// runLocked runs cmd with the calling goroutine locked to its thread when
// the platform needs it (see sysProcAttr): Linux's parent-death signal
// fires when the thread that started the child ends, and the Go runtime
// ends a thread whose goroutine exits while locked to it. Holding the lock
// until Wait returns keeps that thread alive as long as the child; Wait
// blocks a thread anyway.
func runLocked(cmd *osexec.Cmd) error {
	if lockThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	return cmd.Run()
}

// How much of stderr a RunError keeps: the end, where tools say why they
// stopped.
const (
	maxStderr      = 32 << 10
	maxStderrLines = 100
)

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	buf     []byte
	max     int
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.dropped = true
	}
	return len(p), nil
}

// String returns the last whole lines kept, marked when some were dropped.
func (t *tailBuffer) String() string {
	b, dropped := t.buf, t.dropped
	if len(b) > t.max {
		b, dropped = b[len(b)-t.max:], true
	}
	if dropped {
		// A line cut in half could be half a secret, which no redactor
		// would recognise.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	s := string(b)
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > maxStderrLines {
		s, dropped = strings.Join(lines[len(lines)-maxStderrLines:], "\n")+"\n", true
	}
	if dropped {
		return "[…]\n" + s
	}
	return s
}

// Quote returns the command line as a shell would need it.
func Quote(name string, args ...string) string {
	parts := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		parts = append(parts, ShellQuote(a))
	}
	return strings.Join(parts, " ")
}

var safeShellRE = regexp.MustCompile(`^[a-zA-Z0-9_./:=@%+,^-]+$`)

// ShellQuote quotes s for a POSIX shell if it needs it.
func ShellQuote(s string) string {
	if s != "" && safeShellRE.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
