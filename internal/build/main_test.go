package build

import (
	"context"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// testDaemon is the one buildkitd shared by every test of this binary:
// starting one takes seconds and its Go build cache makes later compiles fast.
var testDaemon struct {
	once sync.Once
	d    *Daemon
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testDaemon.d != nil {
		if err := testDaemon.d.Close(); err != nil {
			slog.Error("stop test buildkitd", "err", err)
		}
	}
	if testDaemon.dir != "" {
		os.RemoveAll(testDaemon.dir)
	}
	os.Exit(code)
}

// skipOrFail skips a test whose prerequisite is missing, except under CI=true
// where a silent skip would hide that the test never ran.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	prereq.Missing(t, "%s", reason)
}

// needDaemon returns the shared daemon, starting it on first use.
func needDaemon(t *testing.T) *Daemon {
	t.Helper()
	prereq.Slow(t, "needs buildkitd")
	if os.Geteuid() != 0 {
		skipOrFail(t, "buildkitd with runc needs root")
	}
	if _, err := checkPrerequisites(); err != nil {
		skipOrFail(t, err.Error())
	}
	testDaemon.once.Do(func() {
		testDaemon.dir, testDaemon.err = os.MkdirTemp("", "hfbuild-")
		if testDaemon.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		testDaemon.d, testDaemon.err = StartDaemon(ctx, DaemonOptions{
			StateDir:  testDaemon.dir,
			ModuleDir: moduleRoot(t),
			Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		t.Logf("buildkitd started in %s", time.Since(start).Round(time.Millisecond))
	})
	if testDaemon.err != nil {
		t.Fatalf("start buildkitd: %v", testDaemon.err)
	}
	return testDaemon.d
}

// moduleRoot is the repository root, where `go tool buildkitd` resolves.
func moduleRoot(t *testing.T) string {
	out, err := osexec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(out) < 2 {
		t.Fatalf("find go.mod: %v", err)
	}
	return filepath.Dir(string(out[:len(out)-1]))
}
