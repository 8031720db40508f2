// Package exec runs external commands with captured output, context
// cancellation and secret redaction. Every external command hyperfork runs
// goes through here so that no secret reaches a log or an error message.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
)

// Redactor removes secrets from text. The zero value redacts credentials in
// URLs only.
type Redactor struct {
	secrets []string
}

// NewRedactor returns a Redactor that also hides the given secret values.
// Empty values and values shorter than 4 bytes are ignored: hiding "a" would
// garble every message.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add registers more secret values.
func (r *Redactor) Add(secrets ...string) {
	for _, s := range secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
}

// userinfoRE matches the userinfo part of a URL: scheme://user:pass@host.
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@\s:]+)(:[^/@\s]*)?@`)

// authHeaderRE matches an HTTP Authorization header handed to git with -c.
var authHeaderRE = regexp.MustCompile(`(?i)(authorization:\s*(basic|bearer)\s+)\S+`)

// String returns s with every secret and URL credential replaced.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, sec := range r.secrets {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	s = userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRE.FindStringSubmatch(m)
		// git@host style SSH users carry no secret; keep them readable.
		if sub[3] == "" && !strings.HasPrefix(sub[1], "http") {
			return m
		}
		return sub[1] + "[REDACTED]@"
	})
	return authHeaderRE.ReplaceAllString(s, "${1}[REDACTED]")
}

// RedactURL returns u with any password or token removed, for messages.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return (*Redactor)(nil).String(u)
	}
	p.User = nil
	return p.String()
}

// Cmd describes one command to run.
type Cmd struct {
	Name string
	Args []string
	Dir  string
	// Env is added to the inherited environment.
	Env   []string
	Stdin io.Reader
	// Stdout, if set, receives stdout instead of it being captured.
	Stdout io.Writer
	// Redactor hides secrets in the error message.
	Redactor *Redactor
}

// RunError is returned when a command fails. Its message is the command line
// you can paste into a shell, followed by its output, with secrets redacted.
type RunError struct {
	Command string
	Output  string
	Inner   error
}

// Error returns the command, its failure and its output.
func (e *RunError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("command failed: %s: %v", e.Command, e.Inner)
	}
	return fmt.Sprintf("command failed: %s: %v\n%s", e.Command, e.Inner, out)
}

// Unwrap returns the cause, such as an *os/exec.ExitError.
func (e *RunError) Unwrap() error { return e.Inner }

// ExitCode returns the exit code of the failed command, or -1.
func (e *RunError) ExitCode() int {
	var ee *osexec.ExitError
	if errors.As(e.Inner, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Run runs the command and returns its stdout. Stderr is captured and is part
// of the error if the command fails.
func Run(ctx context.Context, c Cmd) ([]byte, error) {
	cmd := osexec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	var stdout, stderr bytes.Buffer
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		out := stderr.String()
		if c.Stdout == nil && stdout.Len() > 0 && stdout.Len() < 64<<10 {
			out = stdout.String() + out
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.Bytes(), &RunError{
			Command: c.Redactor.String(Quote(c.Name, c.Args...)),
			Output:  c.Redactor.String(out),
			Inner:   err,
		}
	}
	return stdout.Bytes(), nil
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
