package exec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRedactor(t *testing.T) {
	r := NewRedactor("tok-1234567890", "ab") // "ab" is too short to hide safely
	for in, want := range map[string]string{
		"fatal: https://user:tok-1234567890@example.com/k.git": "fatal: https://[REDACTED]@example.com/k.git",
		"token tok-1234567890 leaked":                          "token [REDACTED] leaked",
		"https://x-access-token:secret@github.com/a/b":         "https://[REDACTED]@github.com/a/b",
		"Authorization: Basic eC1hY2Nlc3M6c2VjcmV0":            "Authorization: Basic [REDACTED]",
		"ssh://git@github.com/a/b.git":                         "ssh://git@github.com/a/b.git",
		"about abc":                                            "about abc",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	if got := RedactURL("https://u:p@h.example/x?y=1"); got != "https://h.example/x" {
		t.Errorf("RedactURL = %q", got)
	}
	var nilR *Redactor
	if got := nilR.String("https://u:p@h/x"); got != "https://[REDACTED]@h/x" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestRunErrorIsPastableAndRedacted(t *testing.T) {
	_, err := Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "echo 'no luck with s3cr3t-value-x' >&2; exit 3", "arg with space"},
		Redactor: NewRedactor("s3cr3t-value-x")})
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode() != 3 {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("secret in %q", err)
	}
	if !strings.Contains(re.Command, "'arg with space'") {
		t.Fatalf("command %q is not quoted for a shell", re.Command)
	}
	if out, err := Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "printf ok"}}); err != nil || string(out) != "ok" {
		t.Fatalf("Run = %q, %v", out, err)
	}
}

func TestRunErrorKeepsTheEndOfStderr(t *testing.T) {
	// The reason comes last, after a long stream of progress, and the
	// caller takes stdout itself.
	script := `i=0; while [ $i -lt 5000 ]; do echo "progress line $i" >&2; i=$((i+1)); done
echo 'fatal: remote said no to token s3cr3t-value-x' >&2; echo data; exit 1`
	var stdout strings.Builder
	_, err := Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", script}, Stdout: &stdout, Redactor: NewRedactor("s3cr3t-value-x")})
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "fatal: remote said no to token [REDACTED]") || !strings.Contains(msg, "progress line 4999") {
		t.Fatalf("the reason is missing from %q", msg[max(0, len(msg)-300):])
	}
	if strings.Contains(msg, "progress line 0\n") || len(re.Output) > maxStderr || strings.Count(re.Output, "\n") > maxStderrLines+1 {
		t.Fatalf("RunError keeps all %d bytes of stderr", len(re.Output))
	}
	if !strings.HasPrefix(re.Output, "[…]\n") {
		t.Fatalf("the cut is not marked: %q", re.Output[:40])
	}
	if stdout.String() != "data\n" {
		t.Fatalf("stdout = %q", stdout.String())
	}
}

func TestRunErrorSaysInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, Cmd{Name: "sh", Args: []string{"-c", "echo fetching >&2; sleep 30"}})
	var re *RunError
	if !errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, ": interrupted: context deadline exceeded (signal: terminated)") || !strings.Contains(msg, "fetching") {
		t.Fatalf("message %q does not say the command was interrupted and what it wrote", msg)
	}
}

func TestRunErrorNamesTheCauseOfTheInterruption(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupted by SIGINT"))
	_, err := Run(ctx, Cmd{Name: "sleep", Args: []string{"30"}})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "sleep 30: interrupted by SIGINT (") {
		t.Fatalf("err = %v", err)
	}
}
