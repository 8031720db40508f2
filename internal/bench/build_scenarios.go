package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// scenarios measures the scenarios in order and fills res. Each runs
// hyperfork first, then the host, which links with the version hyperfork
// reported so that both produce the same binaries.
func (bw *buildWorld) scenarios(ctx context.Context, res *BuildResult) error {
	log, n := bw.o.Logger, len(bw.o.Platforms)
	// Setup's garbage (generating, pushing the builder image) is not
	// hyperfork's: collect it before the first sample.
	runtime.GC()
	debug.FreeOSMemory()
	res.Memory.SelfPeakBefore = selfPeak()
	res.LoadBefore = loadAverage()
	res.Identical = true

	// (a) cold: empty BuildKit cache (fresh daemon) against an empty GOCACHE.
	name := fmt.Sprintf("cold build, %d platforms", n)
	log.Info("measuring", "scenario", name)
	cold, ours, err := bw.buildExpect(ctx, name, false, report.BuildBuilt)
	if err != nil {
		return err
	}
	host, err := bw.hostBuild(ctx, name, cold.Version)
	if err != nil {
		return err
	}
	same, err := bw.checkImage(ctx, name, cold.Image)
	if err != nil {
		return err
	}
	res.ColdImage, res.Identical = cold.Image, res.Identical && same
	res.Timings = append(res.Timings, bw.timing(Timing{Name: name, Ours: ours, Plain: host, Target: "<= 1.3x go build", Verified: same}))

	// (b) no-op: nothing new on the fork. The host reference is `go build`
	// with everything cached, the least it can do to be sure.
	name = "no-op, nothing new"
	log.Info("measuring", "scenario", name, "runs", bw.o.Runs)
	var oursRuns, hostRuns []time.Duration
	for r := range bw.o.Runs {
		for side := range 2 {
			if (side+r)%2 == 0 {
				b, d, err := bw.buildExpect(ctx, name, false, report.BuildUpToDate)
				if err != nil {
					return err
				}
				if b.Image != cold.Image {
					return fmt.Errorf("%s: hyperfork reports image %s, want the cold build's %s", name, b.Image, cold.Image)
				}
				oursRuns = append(oursRuns, d)
			} else {
				d, err := bw.hostBuild(ctx, name, cold.Version)
				if err != nil {
					return err
				}
				hostRuns = append(hostRuns, d)
			}
		}
	}
	res.Timings = append(res.Timings, bw.timing(Timing{Name: name, Ours: median(oursRuns), Plain: median(hostRuns),
		Target: "< 1s (go build: all cached, for reference)", Verified: true}))

	// (c) one line changed in a leaf package, committed to the fork.
	name = "one-line change in a leaf package"
	log.Info("measuring", "scenario", name, "package", bw.shape.leafPackage())
	file, err := editLeaf(bw.src, bw.shape)
	if err != nil {
		return err
	}
	if err := bw.commit(ctx, "fix: one line in "+file); err != nil {
		return err
	}
	if _, err := bw.git(ctx, bw.src, "push", "--quiet", bw.fork, "master"); err != nil {
		return err
	}
	inc, ours, err := bw.buildExpect(ctx, name, false, report.BuildBuilt)
	if err != nil {
		return err
	}
	if host, err = bw.hostBuild(ctx, name, inc.Version); err != nil {
		return err
	}
	if same, err = bw.checkImage(ctx, name, inc.Image); err != nil {
		return err
	}
	if digestOf(inc.Image) == digestOf(cold.Image) {
		return fmt.Errorf("%s: the image %s did not change", name, inc.Image)
	}
	res.Image, res.Identical = inc.Image, res.Identical && same
	res.Timings = append(res.Timings, bw.timing(Timing{Name: name, Ours: ours, Plain: host, Target: "<= 1.5x go build", Verified: same}))

	// (d) reproducibility: the same commit again, forced.
	name = "forced rebuild, same commit"
	log.Info("measuring", "scenario", name)
	forced, ours, err := bw.buildExpect(ctx, name, true, report.BuildBuilt)
	if err != nil {
		return err
	}
	if host, err = bw.hostBuild(ctx, name, forced.Version); err != nil {
		return err
	}
	res.ForcedImage = forced.Image
	res.SameDigest = digestOf(forced.Image) != "" && digestOf(forced.Image) == digestOf(inc.Image)
	res.Timings = append(res.Timings, bw.timing(Timing{Name: name, Ours: ours, Plain: host,
		Target: "same digest (go build: all cached, for reference)", Verified: res.SameDigest}))

	res.LoadAfter = loadAverage()
	pid := bw.buildkitdPid()
	res.Memory = BuildMemory{
		SelfPeak:         selfPeak(),
		SelfPeakBefore:   res.Memory.SelfPeakBefore,
		OursRSS:          bw.ours.rss,
		OursHeap:         bw.ours.heap,
		BuildKitd:        procStatusKB(pid, "VmHWM:"),
		BuildKitChildren: bw.bkKids,
		Host:             bw.hostRSS,
	}
	return nil
}

// buildExpect runs hyperfork's build and checks that the report says want
// for the fork's head, with every platform when it built.
func (bw *buildWorld) buildExpect(ctx context.Context, scenario string, force bool, want string) (*report.Build, time.Duration, error) {
	rep, d, err := bw.build(ctx, force)
	if err != nil {
		return nil, d, fmt.Errorf("%s: %w", scenario, err)
	}
	head, err := bw.git(ctx, bw.fork, "rev-parse", "refs/heads/master")
	if err != nil {
		return nil, d, err
	}
	if rep.ExitCode != 0 || len(rep.Branches) != 1 || rep.Branches[0].Build == nil {
		return nil, d, fmt.Errorf("%s: hyperfork's report has exit code %d and %d branches, want 0 and master only", scenario, rep.ExitCode, len(rep.Branches))
	}
	b := rep.Branches[0].Build
	if b.Status != want || b.Commit != head || digestOf(b.Image) == "" {
		return nil, d, fmt.Errorf("%s: hyperfork's build %+v: want status %s of %s with an image digest", scenario, b, want, head)
	}
	if want == report.BuildBuilt && len(b.Platforms) != len(bw.o.Platforms) {
		return nil, d, fmt.Errorf("%s: hyperfork built platforms %v, want %v", scenario, b.Platforms, bw.o.Platforms)
	}
	return b, d, nil
}

// hostBuild runs `go build` of the targets for every platform at once, all
// sharing one GOCACHE, as BuildKit runs one `go build` per platform at once
// on one shared cache mount. It uses the very toolchain the builder image
// was made from and hyperfork's flags, and returns the wall time of the
// whole.
func (bw *buildWorld) hostBuild(ctx context.Context, scenario, version string) (time.Duration, error) {
	type run struct {
		cmd *exec.Cmd
		out bytes.Buffer
		err error
	}
	runs := make([]*run, len(bw.o.Platforms))
	start := time.Now()
	var pids []int
	for i, p := range bw.o.Platforms {
		goos, goarch, _ := goosArch(p) // validated by withDefaults
		args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=" + hostLDFlags(version),
			"-o", filepath.Join(bw.hostOut, goos+"_"+goarch) + "/"}
		for _, c := range projectCommands {
			args = append(args, "./cmd/"+c)
		}
		r := &run{cmd: exec.CommandContext(ctx, bw.goBin, args...)}
		r.cmd.Dir, r.cmd.Env = bw.src, bw.hostEnv(goos, goarch)
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
		if r.err = r.cmd.Start(); r.err == nil {
			pids = append(pids, r.cmd.Process.Pid)
		}
		runs[i] = r
	}
	_, peak, _ := sampleWhile(buildSampleInterval, false, func() uint64 { return treePeak(pids) }, func() error {
		for _, r := range runs {
			if r.err == nil {
				r.err = r.cmd.Wait()
			}
		}
		return nil
	})
	d := time.Since(start)
	bw.hostRSS = max(bw.hostRSS, peak)
	for i, r := range runs {
		if r.err != nil {
			return d, fmt.Errorf("%s: host go build for %s: %s: %w\n%s", scenario, bw.o.Platforms[i], r.cmd, r.err, bytes.TrimSpace(r.out.Bytes()))
		}
	}
	return d, nil
}

// hostEnv is the host build's environment: this process's without any Go
// setting, then exactly what hyperfork's build graph sets (build.withBaseEnv)
// that matters to the output, and no network.
func (bw *buildWorld) hostEnv(goos, goarch string) []string {
	var env []string
	for _, kv := range gitEnv() {
		if !strings.HasPrefix(kv, "GO") && !strings.HasPrefix(kv, "CGO_") {
			env = append(env, kv)
		}
	}
	return append(env, "GOROOT="+filepath.Dir(filepath.Dir(bw.goBin)), "GOCACHE="+bw.hostCache,
		"GOMODCACHE="+filepath.Join(bw.o.WorkDir, "host", "gomodcache"), "GOENV=off", "GOFLAGS=",
		"GOTOOLCHAIN=local", "GOPROXY=off", "GOWORK=off", "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
}

// digestOf returns the sha256:… part of an image reference, or "".
func digestOf(ref string) string {
	_, d, ok := strings.Cut(ref, "@")
	if !ok || !strings.HasPrefix(d, "sha256:") {
		return ""
	}
	return d
}

// timing adds the in-BuildKit compile time of the last hyperfork build.
func (bw *buildWorld) timing(t Timing) BuildTiming {
	return BuildTiming{Timing: t, GoBuild: bw.lastGoBuild}
}
