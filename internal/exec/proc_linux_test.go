package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid is a running process. A zombie counts as gone:
// in a container nothing may reap a reparented grandchild.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state …: comm may hold spaces, the state follows its ')'.
	s := string(stat)
	return !strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z")
}

// waitGone fails the test unless every pid is gone within d.
func waitGone(t *testing.T, d time.Duration, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// readPids waits until the file holds n pids, one a line, and returns them.
func readPids(t *testing.T, path string, n int) []int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		dt, _ := os.ReadFile(path)
		fields := strings.Fields(string(dt))
		if len(fields) < n || !strings.HasSuffix(string(dt), "\n") {
			continue
		}
		var pids []int
		for _, f := range fields {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: %q", path, dt)
			}
			pids = append(pids, pid)
		}
		return pids
	}
	t.Fatalf("%s was not written", path)
	return nil
}

// runCancelled runs script in sh, cancels it once it has written the pids of
// the shell and its child to a file, and returns them with Run's error and
// how long Run took after the cancel.
func runCancelled(t *testing.T, script string) (pids []int, err error, took time.Duration) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Cmd{Name: "sh", Args: []string{"-c", script, "sh", pidFile}})
		done <- err
	}()
	pids = readPids(t, pidFile, 2)
	start := time.Now()
	cancel()
	select {
	case err = <-done:
	case <-time.After(killDelay + 10*time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	return pids, err, time.Since(start)
}

func TestRunCancelStopsTheWholeProcessGroup(t *testing.T) {
	pids, err, took := runCancelled(t, `sleep 300 & echo $$ $! > "$1"; wait`)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want an interrupted error wrapping context.Canceled", err)
	}
	if took > killDelay {
		t.Errorf("Run took %s after the cancel: the shell should have stopped on SIGTERM", took)
	}
	// The sleep is the shell's child: only a signal to the group reaches it.
	waitGone(t, 2*time.Second, pids...)
}

func TestRunCancelSendsTermBeforeKill(t *testing.T) {
	pids, err, took := runCancelled(t, `trap 'echo cleaning up after TERM >&2; exit 7' TERM; sleep 300 & echo $$ $! > "$1"; wait`)
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode() != 7 || !strings.Contains(re.Output, "cleaning up after TERM") {
		t.Fatalf("err = %v: the shell did not get to run its TERM trap", err)
	}
	if took > killDelay {
		t.Errorf("Run took %s", took)
	}
	waitGone(t, 2*time.Second, pids...)
}

func TestRunCancelKillsWhatIgnoresTerm(t *testing.T) {
	// trap '' makes the shell and the sleep it starts ignore SIGTERM.
	pids, err, took := runCancelled(t, `trap '' TERM; sleep 300 & echo $$ $! > "$1"; wait`)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if took < killDelay-time.Second {
		t.Errorf("Run returned %s after the cancel: SIGKILL came before the grace period", took)
	}
	waitGone(t, 2*time.Second, pids...)
}

// TestRunChildDiesWithHyperfork runs Run in a helper process, kills the
// helper with SIGKILL (no chance to cancel anything), and checks that the
// command it was running went with it.
func TestRunChildDiesWithHyperfork(t *testing.T) {
	if pidFile := os.Getenv("HYPERFORK_EXEC_TEST_PIDFILE"); pidFile != "" {
		// In the helper: never returns, it is killed.
		Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", `echo $$ > "$1"; exec sleep 300`, "sh", pidFile}})
		os.Exit(0)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	helper := osexec.Command(os.Args[0], "-test.run=^TestRunChildDiesWithHyperfork$")
	helper.Env = append(os.Environ(), "HYPERFORK_EXEC_TEST_PIDFILE="+pidFile)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	pid := readPids(t, pidFile, 1)[0]
	time.Sleep(200 * time.Millisecond)
	if !alive(pid) {
		t.Fatalf("the command %d died while its parent lived", pid)
	}
	helper.Process.Kill()
	helper.Wait()
	waitGone(t, 2*time.Second, pid)
}
