package reliability

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"sync"
	"testing"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/magerun"
	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// targetEnv makes the test binary, started again by the tests, run a
// hyperfork target instead of tests.
//
// The killed process is this binary rather than `go tool mage`: the mage
// target is one call, magerun.TargetContext then pipeline.Main, which
// runTarget makes in the same way, so the process the kill hits runs the
// same code; `go tool mage` would add a first compile of the magefiles
// (tens of seconds) and two supervising processes whose handling of
// signals internal/pipeline's TestSignalStopsTheRun covers already.
const targetEnv = "HYPERFORK_RELIABILITY_TARGET"

func TestMain(m *testing.M) {
	if target := os.Getenv(targetEnv); target != "" {
		os.Exit(runTarget(target))
	}
	// The subtests spend most of their time waiting, for a dead run's
	// lease to expire or for a process, not computing: more of them at
	// once than the default of one per CPU, unless -test.parallel says.
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	code := m.Run()
	if buildkitd.d != nil {
		buildkitd.d.Close()
	}
	os.Exit(code)
}

// runTarget is magefiles/run.go without mage.
func runTarget(target string) int {
	ctx, stop := magerun.TargetContext(context.Background())
	defer stop()
	code, err := pipeline.Main(ctx, target, pipeline.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	return code
}

// One buildkitd for the package, as a CI machine has one: its Go build
// cache makes every build after the first a matter of linking.
var buildkitd struct {
	once sync.Once
	addr string
	err  error
	d    *build.Daemon
}

func needBuildKit(t *testing.T) string {
	t.Helper()
	prereq.Slow(t, "needs buildkitd, a registry and an S3 server")
	if os.Geteuid() != 0 {
		prereq.Missing(t, "buildkitd with runc needs root")
	}
	if _, err := osexec.LookPath("runc"); err != nil {
		prereq.Missing(t, "runc is not installed: scripts/install-prerequisites.sh")
	}
	buildkitd.once.Do(func() {
		dir, err := os.MkdirTemp("", "hfrel-bk-")
		if err != nil {
			buildkitd.err = err
			return
		}
		buildkitd.d, buildkitd.err = build.StartDaemon(context.Background(), build.DaemonOptions{
			StateDir: dir, ModuleDir: "../..", Logger: slog.New(slog.DiscardHandler)})
		if buildkitd.err == nil {
			buildkitd.addr = buildkitd.d.Addr()
		}
	})
	if buildkitd.err != nil {
		t.Fatalf("start buildkitd: %v", buildkitd.err)
	}
	return buildkitd.addr
}
