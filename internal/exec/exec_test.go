package exec

import (
	"context"
	"errors"
	"strings"
	"testing"
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
	if got := RedactURL("https://u:p@h.example/x?y=1"); got != "https://h.example/x?y=1" {
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
