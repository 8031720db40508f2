package gitsync

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// RemoteError is a failed conversation with a remote: what hyperfork was
// doing, with which remote, and git's own reason. errors.Is finds Kind
// (ErrAuth, ErrNotFound, ErrUnreachable, or nothing when git's reason fits
// none of them); errors.As finds the *exec.RunError with the whole command
// line and output.
type RemoteError struct {
	// Op is what was being done, such as "fetch master from".
	Op string
	// Remote is "upstream" or "fork"; URL is its address without credentials.
	Remote, URL string
	// Kind is the class of the failure, or nil.
	Kind error
	// Reason is git's own account, one line each: its fatal:, error:,
	// remote: and rejection lines, and what ssh or curl said.
	Reason []string
	// Hint says what to do next.
	Hint string
	// Err is the failed command.
	Err error
}

// Error says what failed, git's reason quoted whole, and what to do.
func (e *RemoteError) Error() string {
	reason := strings.Join(e.Reason, "; ")
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: ", e.Op, e.Remote, e.URL)
	if e.Kind != nil {
		fmt.Fprintf(&b, "%v (%s)", e.Kind, reason)
	} else {
		b.WriteString(reason)
		// Unclassified: the command line helps whoever investigates.
		var re *exec.RunError
		if errors.As(e.Err, &re) {
			fmt.Fprintf(&b, " (%s: %v)", re.Command, re.Inner)
		}
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

// Unwrap makes both the class and the failed command visible.
func (e *RemoteError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// classify turns a git failure into a RemoteError. It reads git's own
// stderr lines only, with quoted strings (paths, URLs) blanked out, never the
// command line: a state folder under /tmp/team-403/ is not an HTTP 403.
func classify(r Remote, what string, err error) error {
	var re *exec.RunError
	if !errors.As(err, &re) {
		// Not git's failure (a cancelled context before the start, say).
		return fmt.Errorf("%s %s %s: %w", what, r.Name, exec.RedactURL(r.URL), err)
	}
	e := &RemoteError{Op: what, Remote: r.Name, URL: exec.RedactURL(r.URL), Reason: gitReason(re), Err: err}
	text := strings.Join(e.Reason, "\n")
	for _, s := range []string{r.URL, e.URL} {
		if s != "" {
			text = strings.ReplaceAll(text, s, "")
		}
	}
	text = quotedRE.ReplaceAllString(text, "''")
	overHTTP := strings.HasPrefix(r.URL, "http")
	switch {
	case authRE.MatchString(text):
		e.Kind = ErrAuth
		e.Hint = "check the token in the variable named by " + r.Name + ".tokenEnv"
		if !overHTTP {
			e.Hint = "check that ssh-agent holds a key the server accepts"
		}
	case notFoundRE.MatchString(text):
		e.Kind = ErrNotFound
		e.Hint = "check " + r.Name + ".url, then run again"
		if overHTTP {
			e.Hint = "check " + r.Name + ".url (a private repository also answers not found when the token in " + r.Name + ".tokenEnv may not read it), then run again"
		}
	case unreachableRE.MatchString(text):
		e.Kind = ErrUnreachable
		e.Hint = "check " + r.Name + ".url and the network, then run again"
	}
	return e
}

var (
	// quotedRE matches what git quotes in its messages: paths and URLs.
	quotedRE = regexp.MustCompile(`'[^'\n]*'`)
	authRE   = regexp.MustCompile(`(?i)returned error: 40[13]\b|\bHTTP 40[13]\b|authentication failed|could not read (username|password)|` +
		`permission denied \(|invalid username or password|access denied|permission to \S* ?denied`)
	notFoundRE    = regexp.MustCompile(`(?i)does not appear to be a git repository|repository\s*(''\s*)?not found|returned error: 404\b|\bHTTP 404\b`)
	unreachableRE = regexp.MustCompile(`(?i)could not resolve host|connection refused|failed to connect|couldn't connect|timed out|` +
		`network is unreachable|no route to host|connection reset|connection closed|returned error: 5[0-9][0-9]\b|` +
		`could not read from remote repository|remote end hung up`)
)

// gitReason returns git's own account of a failure, one entry per message:
// a message git wrapped over several lines is joined back into one. Left
// out is the noise: From/To headers, refs that did update, hints, and the
// advice paragraph that follows "Could not read from remote repository."
// (hyperfork gives its own). That generic line itself goes when a more
// specific one is there. A failure with no output says so with the exit
// status, so no message ever ends in a bare "exit status 1".
func gitReason(re *exec.RunError) []string {
	var lines []string
	generic := ""
	para, skip := true, false // at a paragraph's start; skipping git's advice
	for _, l := range strings.Split(re.Output, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "":
			para, skip = true, false
			continue
		case skip:
			continue
		case t == "Please make sure you have the correct access rights":
			skip = true
			continue
		case t == "remote:", t == "Done", strings.HasPrefix(l, "From "), strings.HasPrefix(l, "To "),
			strings.HasPrefix(t, "hint:"), refUpdatedRE.MatchString(l):
			continue
		case strings.HasSuffix(t, "Could not read from remote repository."):
			generic = t
			continue
		}
		if !para && len(lines) > 0 && !messageStartRE.MatchString(t) {
			lines[len(lines)-1] += " " + t
		} else {
			lines = append(lines, t)
		}
		para = false
	}
	if len(lines) == 0 && generic != "" {
		lines = append(lines, generic)
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("git printed no reason (%v)", re.Inner))
	}
	return lines
}

var (
	// refUpdatedRE matches fetch's summary lines for refs that did update
	// (" * [new tag]", " + a...b", "   a..b", " t [tag update]", " = [up
	// to date]", " - [deleted]"). A refused ref (" ! [rejected]") is a reason.
	refUpdatedRE = regexp.MustCompile(`^ [*+ t=-] `)
	// messageStartRE matches the first line of a message: "fatal: ",
	// "error: ", "remote: ", "ssh: ", "git@host: ", a refused ref. Any other
	// line inside a paragraph continues the line before it.
	messageStartRE = regexp.MustCompile(`^(\S+:(\s|$)|! )`)
)
