package exec

import (
	"context"
	"errors"
	"io"
	"os"
	osexec "os/exec"
	"syscall"
)

// Stream runs the command like Run, but writes its stdout and stderr to log
// while it runs, interleaved in the order the command wrote them and
// redacted with c.Redactor (through a RedactingWriter, flushed before Stream
// returns). It is for long commands whose output is a log a person reads:
// a test suite, kubetest2, kind. c.Stdout must be nil.
//
// Cancelling ctx stops the whole process group as Run does: SIGTERM, then
// SIGKILL after a few seconds. Unlike Run, Stream also kills the group when
// the command ends by itself, so that nothing it started in the background
// (a test's port-forward, a stray sleep) outlives it; a command that leaves
// children holding its output open fails after the same few seconds.
//
// A failure is a *RunError whose Output is the end of what the command
// wrote, both streams, redacted. Write errors of log fail the command too:
// the child then gets EPIPE on its next write.
func Stream(ctx context.Context, c Cmd, log io.Writer) error {
	if c.Stdout != nil {
		return errors.New("exec.Stream: Cmd.Stdout is set, but Stream writes stdout to the log")
	}
	cmd := osexec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(BaseEnv(os.Getenv), c.Env...)
	cmd.Stdin = c.Stdin
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return signalGroup(cmd.Process, syscall.SIGTERM) }
	cmd.WaitDelay = killDelay
	// The tail sees what the log sees: redacted text only.
	tail := &tailBuffer{max: maxStderr}
	rw := NewRedactingWriter(io.MultiWriter(log, tail), c.Redactor)
	// One comparable writer for both: os/exec then gives the child a
	// single pipe for stdout and stderr, so their order survives.
	cmd.Stdout, cmd.Stderr = rw, rw
	err := runLocked(cmd)
	if cmd.Process != nil {
		// The leader is gone, by itself or by signal; whatever of its
		// group is left goes too. ESRCH, the usual case, is no error.
		signalGroup(cmd.Process, syscall.SIGKILL)
	}
	if ferr := rw.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = &interruptedError{cause: context.Cause(ctx), err: err}
	}
	return &RunError{
		Command: c.Redactor.String(Quote(c.Name, c.Args...)),
		Output:  tail.String(),
		Inner:   err,
	}
}
