package prereq

import (
	"os"
	osexec "os/exec"
	"strings"
	"testing"
)

// TestSkipsFailUnderCI runs this package's probe tests in a child `go test`
// with and without CI=true and -short, and checks the outcome of each.
func TestSkipsFailUnderCI(t *testing.T) {
	if os.Getenv("PREREQ_PROBE") != "" {
		return // the child runs only the probes
	}
	for _, tc := range []struct {
		ci, short bool
		wantFail  bool
	}{
		{ci: false, short: false, wantFail: false},
		{ci: false, short: true, wantFail: false},
		{ci: true, short: false, wantFail: true}, // Missing fails under CI
		{ci: true, short: true, wantFail: true},
	} {
		args := []string{"test", "-count=1", "-run", "^TestProbe", "."}
		if tc.short {
			args = append(args, "-short")
		}
		cmd := osexec.Command("go", args...)
		cmd.Env = append(os.Environ(), "PREREQ_PROBE=1", "CI=false")
		if tc.ci {
			cmd.Env = append(cmd.Env, "CI=true")
		}
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail {
			t.Errorf("CI=%v -short=%v: failed=%v, want %v:\n%s", tc.ci, tc.short, failed, tc.wantFail, out)
		}
		if tc.ci && tc.short && !strings.Contains(string(out), "run without -short") {
			t.Errorf("CI=true -short: the failure does not say to run without -short:\n%s", out)
		}
	}
}

func TestProbeMissing(t *testing.T) {
	if os.Getenv("PREREQ_PROBE") == "" {
		return // a probe: only TestSkipsFailUnderCI's child runs it
	}
	Missing(t, "runc is not installed: apt-get install -y runc")
}

func TestProbeSlow(t *testing.T) {
	if os.Getenv("PREREQ_PROBE") == "" {
		return // a probe: only TestSkipsFailUnderCI's child runs it
	}
	Slow(t, "needs buildkitd")
}
