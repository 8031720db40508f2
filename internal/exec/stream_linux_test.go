package exec

import (
	"context"
	"errors"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStreamTimeoutStopsTheWholeProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var log strings.Builder
	start := time.Now()
	err := Stream(ctx, Cmd{Name: "sh", Args: []string{"-c", `sleep 300 & sleep 301 & echo $$ $! > "$1"; echo started; wait`, "sh", pidFile}}, &log)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want an interrupted error wrapping the deadline", err)
	}
	if took := time.Since(start); took > killDelay {
		t.Errorf("Stream took %s: the shell should have stopped on SIGTERM", took)
	}
	waitGone(t, 2*time.Second, readPids(t, pidFile, 2)...)
	if !strings.Contains(log.String(), "started") {
		t.Fatalf("log = %q", log.String())
	}
}

func TestStreamKillsWhatTheCommandLeftBehind(t *testing.T) {
	// The background sleep holds neither stream, so nothing makes Wait
	// wait for it: only the kill of the group after the exit reaches it.
	pidFile := filepath.Join(t.TempDir(), "pids")
	var log strings.Builder
	err := Stream(context.Background(), Cmd{Name: "sh", Args: []string{"-c", `sleep 300 >/dev/null 2>&1 & echo $! > "$1"`, "sh", pidFile}}, &log)
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, 2*time.Second, readPids(t, pidFile, 1)...)
}

func TestStreamDoesNotWaitForeverForChildrenHoldingItsOutput(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	var log strings.Builder
	start := time.Now()
	err := Stream(context.Background(), Cmd{Name: "sh", Args: []string{"-c", `sleep 300 & echo $! > "$1"; echo bye`, "sh", pidFile}}, &log)
	if !errors.Is(err, osexec.ErrWaitDelay) {
		t.Fatalf("err = %v, want ErrWaitDelay: a child kept the output open", err)
	}
	if took := time.Since(start); took > killDelay+5*time.Second {
		t.Errorf("Stream took %s", took)
	}
	waitGone(t, 2*time.Second, readPids(t, pidFile, 1)...)
	if log.String() != "bye\n" {
		t.Fatalf("log = %q", log.String())
	}
}
