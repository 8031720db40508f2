package registry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// A registry may echo anything back; the password must not survive into the
// message even when the cause quotes it.
func TestErrorRedactsPassword(t *testing.T) {
	const password = "hunter2-very-secret"
	cause := fmt.Errorf("GET https://robot:%s@registry.example.com/v2/: %w", password,
		&transport.Error{StatusCode: http.StatusUnauthorized})
	err := classify("push", "registry.example.com/x:tag", "registry.example.com", true, cause, hfexec.NewRedactor(password))
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "robot:") {
		t.Fatalf("secret in message: %v", err)
	}
}

func TestClassifyStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   transport.ErrorCode
		write  bool
		want   error
	}{
		{http.StatusUnauthorized, "", false, ErrUnauthorized},
		{http.StatusForbidden, "", false, ErrUnauthorized},
		{http.StatusForbidden, transport.DeniedErrorCode, true, ErrDenied},
		{http.StatusMethodNotAllowed, "", true, ErrDenied},
		{http.StatusNotFound, transport.ManifestUnknownErrorCode, false, ErrNotFound},
		{http.StatusServiceUnavailable, "", true, ErrUnreachable},
	} {
		te := &transport.Error{StatusCode: tc.status}
		if tc.code != "" {
			te.Errors = []transport.Diagnostic{{Code: tc.code}}
		}
		err := classify("op", "obj", "host", tc.write, te, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("status %d %s write=%v: %v, want %v", tc.status, tc.code, tc.write, err, tc.want)
		}
	}
}

// TestRefusesTagDelete reads the answers registries give to a tag delete
// they do not support: 405 (distribution with deletes off), 400 (registries
// that take only a digest there), or an UNSUPPORTED
// code whatever the status; a 500 or a 401 is a fault, never a refusal.
func TestRefusesTagDelete(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&transport.Error{StatusCode: http.StatusMethodNotAllowed}, true},
		{&transport.Error{StatusCode: http.StatusBadRequest}, true},
		{&transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.UnsupportedErrorCode}}}, true},
		{fmt.Errorf("delete tag: %w", &transport.Error{StatusCode: http.StatusBadRequest}), true},
		{&transport.Error{StatusCode: http.StatusInternalServerError}, false},
		{&transport.Error{StatusCode: http.StatusUnauthorized}, false},
		{errors.New("connection reset"), false},
	} {
		if got := refusesTagDelete(tc.err); got != tc.want {
			t.Errorf("refusesTagDelete(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
