package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// The kinds of fault a registry operation can meet. Every error this package
// returns for a registry or layout fault wraps one of them, so callers decide
// with errors.Is (for example: retry later on ErrUnreachable, page a person on
// ErrUnauthorized).
var (
	// ErrUnreachable: the registry did not answer (connection refused, DNS,
	// timeout, TLS). A retry may help.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrUnauthorized: the registry rejected the credentials (401, or 403 on
	// a read). A retry will not help until the credentials change.
	ErrUnauthorized = errors.New("credentials rejected")
	// ErrDenied: the registry refused to store or delete (403 or 405 on a
	// write, DENIED, UNSUPPORTED): no push right, read-only or immutable tags.
	ErrDenied = errors.New("refused by the registry")
	// ErrNotFound: the repository, tag, digest or base image does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a reference, tag or option is malformed.
	ErrInvalid = errors.New("invalid")
)

// Error is a classified registry fault. Its message names the operation and
// the object, says what to do, and never contains a secret.
type Error struct {
	// Op is what was attempted, such as "push" or "list tags of".
	Op string
	// Object names the image, reference or folder.
	Object string
	// Kind is one of the Err* sentinels.
	Kind error
	// Status is the HTTP status code when the registry answered, else 0.
	Status int
	// Hint says what to do next.
	Hint string
	// Err is the underlying error.
	Err error

	redactor *hfexec.Redactor
}

// Error returns the message: operation, object, kind, status, what to do and
// the cause, with secrets redacted.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.Op, e.Object, e.Kind)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	// Registries echo request details; the password must never reach a log.
	return e.redactor.String(msg)
}

// Unwrap returns the kind and the cause, so errors.Is matches both the
// sentinel and, for example, context.Canceled.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Temporary reports whether retrying the same operation may succeed.
func (e *Error) Temporary() bool {
	if e.Kind == ErrUnreachable {
		return true
	}
	var te *transport.Error
	return errors.As(e.Err, &te) && te.Temporary()
}

// classify wraps err, the outcome of op on object, in an *Error. write says
// whether op stores or deletes, which decides what a 403 means. host is the
// registry, for the hints.
func classify(op, object, host string, write bool, err error, red *hfexec.Redactor) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Object: object, Err: err, redactor: red}
	var te *transport.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Not a registry fault: the caller stopped us. Keep the message short.
		return fmt.Errorf("%s %s: %w", op, object, err)
	case errors.As(err, &te):
		e.Status = te.StatusCode
		e.Kind, e.Hint = kindOfStatus(te, write, host)
	case isNetError(err):
		e.Kind = ErrUnreachable
		e.Hint = fmt.Sprintf("nothing answered at %s: check the address (publish.registry), that the registry runs, "+
			"and proxy settings; a registry on loopback is always spoken to over plain HTTP", host)
	default:
		e.Kind = ErrInvalid
	}
	return e
}

// kindOfStatus maps a registry's answer to a fault kind and a hint.
func kindOfStatus(te *transport.Error, write bool, host string) (error, string) {
	codes := map[transport.ErrorCode]bool{}
	for _, d := range te.Errors {
		codes[d.Code] = true
	}
	creds := fmt.Sprintf("set the variables named by publish.usernameEnv and publish.passwordEnv, or run `docker login %s`", host)
	switch {
	case te.StatusCode == http.StatusUnauthorized || codes[transport.UnauthorizedErrorCode]:
		return ErrUnauthorized, "the registry rejected the credentials: " + creds
	case te.StatusCode == http.StatusForbidden && !write:
		return ErrUnauthorized, "the credentials may not read this repository: " + creds
	case te.StatusCode == http.StatusForbidden, te.StatusCode == http.StatusMethodNotAllowed,
		codes[transport.DeniedErrorCode], codes[transport.UnsupportedErrorCode]:
		return ErrDenied, "the registry refused the change: check that the credentials may push to and delete from " +
			"this repository and that its tags are not immutable"
	case te.StatusCode == http.StatusNotFound, codes[transport.ManifestUnknownErrorCode],
		codes[transport.NameUnknownErrorCode], codes[transport.BlobUnknownErrorCode]:
		return ErrNotFound, "check the name and that it was pushed"
	case te.StatusCode == http.StatusTooManyRequests || codes[transport.TooManyRequestsErrorCode]:
		return ErrUnreachable, "the registry is rate limiting: retry later"
	case te.StatusCode >= 500:
		return ErrUnreachable, "the registry failed: retry later"
	}
	return ErrInvalid, ""
}

// isNetError reports a failure to reach the server at all.
func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
