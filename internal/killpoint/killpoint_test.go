package killpoint_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/hyperfork/hyperfork/internal/killpoint"
)

// childEnv makes the test binary, re-executed, reach points instead of
// running tests.
const childEnv = "KILLPOINT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		// Reach a, b, a, b, a: HYPERFORK_KILLPOINT decides where it dies.
		for _, p := range []string{"a", "b", "a", "b", "a"} {
			killpoint.Reach(p)
			os.Stdout.WriteString("passed " + p + "\n")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		name string
		nth  int64
		err  bool
	}{
		{"", "", 0, false},
		{"publish.announced", "publish.announced", 1, false},
		{"registry.deleted:2", "registry.deleted", 2, false},
		{"x:0", "", 0, true},
		{"x:-1", "", 0, true},
		{"x:two", "", 0, true},
		{":3", "", 0, true},
	} {
		name, nth, err := killpoint.Parse(tc.in)
		if name != tc.name || nth != tc.nth || (err != nil) != tc.err {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d, error %v", tc.in, name, nth, err, tc.name, tc.nth, tc.err)
		}
	}
}

// TestReachKillsAtTheArmedReach runs the reaching child with each setting:
// it must die of SIGKILL exactly at the armed reach, after saying so, and
// run to its end when nothing or something else is armed.
func TestReachKillsAtTheArmedReach(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		armed  string
		passed string // the lines printed before the kill
		killed bool
	}{
		{"", "passed a passed b passed a passed b passed a", false},
		{"nosuch", "passed a passed b passed a passed b passed a", false},
		{"a", "", true},
		{"b:2", "passed a passed b passed a", true},
		{"a:3", "passed a passed b passed a passed b", true},
		{"a:4", "passed a passed b passed a passed b passed a", false},
		{"a:zero", "passed a passed b passed a passed b passed a", false},
	} {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), childEnv+"=1", killpoint.Env+"="+tc.armed)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		if killed != tc.killed || (!tc.killed && err != nil) {
			t.Errorf("%s=%q: %v (killed %v), want killed %v; stderr: %s", killpoint.Env, tc.armed, err, killed, tc.killed, stderr.String())
		}
		if got := strings.Join(strings.Fields(stdout.String()), " "); got != tc.passed {
			t.Errorf("%s=%q: ran %q before the end, want %q", killpoint.Env, tc.armed, got, tc.passed)
		}
		if tc.killed {
			name, nth, _ := killpoint.Parse(tc.armed)
			if !strings.Contains(stderr.String(), killpoint.Message(name, nth)) {
				t.Errorf("%s=%q: stderr lacks %q: %s", killpoint.Env, tc.armed, killpoint.Message(name, nth), stderr.String())
			}
		}
		if tc.armed == "a:zero" && !strings.Contains(stderr.String(), "no point is armed") {
			t.Errorf("a malformed count is not reported: %s", stderr.String())
		}
	}
}

// BenchmarkReachUnarmed is the cost in every real run: nothing armed.
func BenchmarkReachUnarmed(b *testing.B) {
	for b.Loop() {
		killpoint.Reach("publish.announced")
	}
}
