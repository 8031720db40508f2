package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// run is one hyperfork process.
type run struct {
	cmd    *osexec.Cmd
	out    *syncBuffer
	report string
	start  time.Time
	exited chan struct{}
	err    error
	took   time.Duration
}

// start runs target as its own process, the way CI runs it.
func (w *world) start(target string, env ...string) *run {
	w.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		w.t.Fatal(err)
	}
	r := &run{out: &syncBuffer{}, report: filepath.Join(w.dir, fmt.Sprintf("report-%d.json", w.runs.Add(1))), exited: make(chan struct{})}
	r.cmd = osexec.Command(exe, "-test.run=^$")
	r.cmd.Dir = w.dir
	r.cmd.Env = append(append(append(os.Environ(), w.env...), "HYPERFORK_KILLPOINT=", targetEnv+"="+target,
		"HYPERFORK_CONFIG="+w.config(), "HYPERFORK_REPORT="+r.report, "HYPERFORK_HTML="+filepath.Join(w.dir, "report.html")), env...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); r.took = time.Since(r.start); close(r.exited) }()
	w.t.Cleanup(func() { _ = r.cmd.Process.Kill(); <-r.exited })
	return r
}

// wait returns the exit code, or -1 with killed set when SIGKILL ended it.
func (r *run) wait(t *testing.T) (code int, killed bool) {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the run did not end within 2 minutes:\n%s", r.out)
	}
	var ee *osexec.ExitError
	switch {
	case r.err == nil:
		return 0, false
	case errors.As(r.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, ws.Signal() == syscall.SIGKILL
		}
		return ee.ExitCode(), false
	}
	t.Fatal(r.err)
	return 0, false
}

// kill is the crash: SIGKILL to the hyperfork process alone.
func (r *run) kill(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// result runs target to its end and returns its exit code and report.
func (w *world) result(target string, env ...string) (int, *report.Report, *run) {
	w.t.Helper()
	r := w.start(target, env...)
	code, killed := r.wait(w.t)
	if killed {
		w.t.Fatalf("%s was killed:\n%s", target, r.out)
	}
	if strings.Contains(r.out.String(), token) {
		w.t.Errorf("%s printed the token:\n%s", target, r.out)
	}
	b, err := os.ReadFile(r.report)
	if err != nil {
		w.t.Fatalf("%s wrote no report (exit %d): %v\n%s", target, code, err, r.out)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		w.t.Fatal(err)
	}
	return code, &rep, r
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
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
