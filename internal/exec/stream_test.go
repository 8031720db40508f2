package exec

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStreamInterleavesStdoutAndStderrInOrder(t *testing.T) {
	// Each line goes out on its own write, alternating streams: a log that
	// held one stream after the other would read out of order.
	script := `for i in 1 2 3 4 5 6; do if [ $((i % 2)) = 1 ]; then echo "out $i"; else echo "err $i" >&2; fi; done`
	var log strings.Builder
	if err := Stream(context.Background(), Cmd{Name: "sh", Args: []string{"-c", script}}, &log); err != nil {
		t.Fatal(err)
	}
	if want := "out 1\nerr 2\nout 3\nerr 4\nout 5\nerr 6\n"; log.String() != want {
		t.Fatalf("log = %q, want %q", log.String(), want)
	}
}

func TestStreamRedactsTheLogAndTheError(t *testing.T) {
	script := `echo "pushing with s3cr3t-value-x"; printf 'no newline s3cr3t-value-x' >&2; exit 3`
	var log strings.Builder
	err := Stream(context.Background(), Cmd{Name: "sh", Args: []string{"-c", script, "sh", "s3cr3t-value-x"},
		Redactor: NewRedactor("s3cr3t-value-x")}, &log)
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode() != 3 {
		t.Fatalf("err = %v, want a RunError with exit code 3", err)
	}
	// The unfinished last line is flushed, redacted, before Stream returns.
	if want := "pushing with [REDACTED]\nno newline [REDACTED]"; log.String() != want {
		t.Fatalf("log = %q, want %q", log.String(), want)
	}
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(re.Output, "pushing with [REDACTED]") ||
		!strings.Contains(re.Output, "no newline [REDACTED]") {
		t.Fatalf("error %q: want both streams' end, redacted", err)
	}
	if strings.Contains(re.Command, "s3cr3t") {
		t.Fatalf("command %q holds the secret", re.Command)
	}
}

func TestStreamRefusesAStdoutWriter(t *testing.T) {
	var out, log strings.Builder
	if err := Stream(context.Background(), Cmd{Name: "true", Stdout: &out}, &log); err == nil {
		t.Fatal("Stream ran with Cmd.Stdout set")
	}
}

func TestStreamFailsWhenTheLogCannotBeWritten(t *testing.T) {
	err := Stream(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "echo one; sleep 0.2; echo two"}}, failingWriter{})
	if err == nil {
		t.Fatal("a log that cannot be written went unnoticed")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
