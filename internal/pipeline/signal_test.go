package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// mageRun is `go tool mage TARGET` started from hyperfork's checkout, as a
// user starts it, against the world's config.
type mageRun struct {
	cmd    *osexec.Cmd
	out    *syncBuffer
	rep    string
	exited chan struct{}
	err    error // valid once exited is closed
}

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (w *world) startMage(t *testing.T, target string, extraEnv ...string) *mageRun {
	t.Helper()
	return w.startMageArgs(t, []string{target}, extraEnv...)
}

// startMageArgs is startMage with mage's arguments as a user types them.
func (w *world) startMageArgs(t *testing.T, args []string, extraEnv ...string) *mageRun {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	m := &mageRun{out: &syncBuffer{}, rep: filepath.Join(w.dir, "report-"+args[0]+".json"), exited: make(chan struct{})}
	m.cmd = osexec.Command("go", append([]string{"tool", "mage"}, args...)...)
	m.cmd.Dir = root
	m.cmd.Env = append(os.Environ(), "HYPERFORK_CONFIG="+w.config(), "HYPERFORK_REPORT="+m.rep)
	for k, v := range w.env {
		m.cmd.Env = append(m.cmd.Env, k+"="+v)
	}
	m.cmd.Env = append(m.cmd.Env, extraEnv...)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.err = m.cmd.Wait(); close(m.exited) }()
	t.Cleanup(func() { _ = m.cmd.Process.Kill(); <-m.exited })
	return m
}

// wait returns the exit code, failing the test if the run takes longer.
func (m *mageRun) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-m.exited:
		var ee *osexec.ExitError
		if errors.As(m.err, &ee) {
			return ee.ExitCode()
		}
		if m.err != nil {
			t.Fatal(m.err)
		}
		return 0
	case <-time.After(limit):
		t.Fatalf("go tool mage did not end within %s after the signal:\n%s", limit, m.out)
		return -1
	}
}

// childOf returns the pid of a child of pid, waiting for one to appear.
// Every process's stat is read: a Go program forks from any of its threads,
// so the main thread's children list can be empty.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	for range 200 {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			child, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			// pid (comm) state ppid …; comm may hold spaces, so split after ")".
			rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
			if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return child
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %d has no child", pid)
	return 0
}

// processesOf lists the live processes whose command line or environment
// names dir: hyperfork's workers and the git commands it started.
func processesOf(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if strings.Contains(string(stat), ") Z ") {
			continue // a zombie is dead; its parent has yet to reap it
		}
		if bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(environ, []byte(dir)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// TestSignalStopsTheRun sends a stop signal to each process of
// `go tool mage sync` while the sync is pushing, as a CI runner, docker stop
// or a person does: the run must end at once with exit code 1, push nothing
// afterwards, leave no process behind, release the branch lock and write a
// report that says it was interrupted.
func TestSignalStopsTheRun(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		prereq.Missing(t, "needs Linux /proc to find the processes")
	}
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		target string // which process gets the signal
	}{
		{"SIGTERM to go", syscall.SIGTERM, "go"},
		{"SIGTERM to mage", syscall.SIGTERM, "mage"},
		{"SIGINT to go", syscall.SIGINT, "go"},
		{"SIGKILL to mage", syscall.SIGKILL, "mage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.branches = "branches:\n  - name: master\n"
			w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
			before := w.forkHead("master")

			// The push waits at the server until the test lets it go: the
			// run is then exactly where the fault was seen.
			reached, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			w.srv.BeforeReceivePack(func() {
				once.Do(func() { close(reached) })
				<-release
			})
			defer close(release)

			m := w.startMage(t, "sync")
			select {
			case <-reached:
			case <-m.exited:
				t.Fatalf("go tool mage ended before the sync reached its push:\n%s", m.out)
			case <-time.After(5 * time.Minute):
				t.Fatalf("the sync never reached its push:\n%s", m.out)
			}
			pid := m.cmd.Process.Pid
			if tc.target == "mage" {
				pid = childOf(t, pid)
			}
			if err := syscall.Kill(pid, tc.sig); err != nil {
				t.Fatal(err)
			}
			code := m.wait(t, 20*time.Second)
			if tc.sig != syscall.SIGKILL && code != report.ExitFailed {
				t.Errorf("exit code %d after %s, want %d:\n%s", code, tc.name, report.ExitFailed, m.out)
			}
			// After SIGKILL to mage, `go tool` itself exits 0: cmd/go records
			// a tool's death by signal as exit status -1, which never raises
			// its exit status above 0. Nothing in mage can change that; what
			// matters is that the run below it stops.

			// Nothing of the run may go on: no process, and no push once
			// the server lets the old one through.
			deadline := time.Now().Add(10 * time.Second)
			for len(processesOf(w.dir)) > 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if left := processesOf(w.dir); len(left) > 0 {
				t.Errorf("processes outlived the run:\n%s", strings.Join(left, "\n"))
			}
			w.srv.BeforeReceivePack(nil)
			time.Sleep(500 * time.Millisecond)
			if after := w.forkHead("master"); after != before {
				t.Errorf("the fork moved from %s to %s after the signal", before, after)
			}

			if tc.sig != syscall.SIGKILL {
				b, err := os.ReadFile(m.rep)
				if err != nil {
					t.Fatalf("no report after the signal: %v\n%s", err, m.out)
				}
				var rep report.Report
				if err := json.Unmarshal(b, &rep); err != nil {
					t.Fatal(err)
				}
				if rep.ExitCode != report.ExitFailed || !strings.Contains(rep.Interrupted, "interrupted by") ||
					!strings.Contains(w.branch(&rep, "master").Error, "interrupted") {
					t.Errorf("report does not say the run was interrupted:\n%s", b)
				}
			}

			// The lock is free and nothing was recorded: the next run merges.
			code, rep, out := w.run("sync")
			if code != 0 || w.branch(rep, "master").Sync.Status != report.SyncMerged {
				t.Fatalf("the run after the signal: exit %d\n%s", code, out)
			}
		})
	}
}

// TestConcurrentMageRuns starts two `go tool mage` in one checkout in the
// same instant: each must run its target (mage's compile is shared and was
// racy), never fail with a compile error.
func TestConcurrentMageRuns(t *testing.T) {
	w := newWorld(t)
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	runs := []*mageRun{w.startMage(t, "plan"), w.startMage(t, "status"), w.startMage(t, "plan")}
	for i, m := range runs {
		code := m.wait(t, 5*time.Minute)
		if code != 0 {
			t.Errorf("run %d: exit code %d:\n%s", i, code, m.out)
		}
		if strings.Contains(m.out.String(), "mage_output_file.go") {
			t.Errorf("run %d raced on mage's compile:\n%s", i, m.out)
		}
	}
}

// TestHelpAfterATargetRunsNothing runs `go tool mage sync --help` and
// `sync -h` with an upstream commit waiting: each prints the target's help
// and exits 0, and nothing is synced, pushed or reported.
func TestHelpAfterATargetRunsNothing(t *testing.T) {
	w := newWorld(t)
	w.branches = "branches:\n  - name: master\n"
	w.upstreamCommit("master", "upstream: fix", map[string]string{"pkg/fix.go": "package pkg\n"})
	before := w.forkHead("master")
	for _, flag := range []string{"--help", "-h"} {
		m := w.startMageArgs(t, []string{"sync", flag})
		if code := m.wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("go tool mage sync %s: exit %d\n%s", flag, code, m.out)
		}
		out := m.out.String()
		if !strings.Contains(out, "Sync merges new upstream commits") || !strings.Contains(out, "Usage") {
			t.Errorf("go tool mage sync %s does not print the target's help:\n%s", flag, out)
		}
		if strings.Contains(out, "merged") || strings.Contains(out, "master:") {
			t.Errorf("go tool mage sync %s ran a sync:\n%s", flag, out)
		}
		if _, err := os.Stat(m.rep); !os.IsNotExist(err) {
			t.Errorf("go tool mage sync %s wrote a report (%v)", flag, err)
		}
	}
	if after := w.forkHead("master"); after != before {
		t.Errorf("help moved the fork from %s to %s", before, after)
	}
}
