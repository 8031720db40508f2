package build

import (
	"context"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
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

// TestTwoDaemonsOnOneMachine starts a second buildkitd while the shared one
// runs. Both used to serve traces on the one default path,
// /run/buildkit/otel-grpc.sock, which buildkitd unlinks and binds at start: a
// later daemon took the first one's socket away, and two starting in the same
// instant (two test packages, two state folders) made one exit with "address
// already in use". Each must have its own, beside its gRPC socket.
func TestTwoDaemonsOnOneMachine(t *testing.T) {
	// Two daemons of its own, not the shared one (TestCompile restarts that
	// under other options); needDaemon only for its prerequisite checks.
	needDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := func(name string) *Daemon {
		d, err := StartDaemon(ctx, DaemonOptions{
			StateDir:  t.TempDir(),
			ModuleDir: moduleRoot(t),
			Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatalf("start the %s buildkitd: %v", name, err)
		}
		return d
	}
	first := start("first")
	defer first.Close()
	second := start("second")
	if second.Addr() == first.Addr() {
		t.Fatalf("both daemons on %s", first.Addr())
	}
	for _, d := range []*Daemon{first, second} {
		if !answers(ctx, d.Addr()) {
			t.Errorf("%s does not answer", d.Addr())
		}
		otel := filepath.Join(filepath.Dir(strings.TrimPrefix(d.Addr(), "unix://")), "otel-grpc.sock")
		if fi, err := os.Stat(otel); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("the daemon on %s serves no trace socket of its own at %s: %v", d.Addr(), otel, err)
		}
	}
	if err := second.Close(); err != nil {
		t.Errorf("stop the second buildkitd: %v", err)
	}
	if !answers(ctx, first.Addr()) {
		t.Errorf("stopping the second daemon stopped the first, %s", first.Addr())
	}
}
