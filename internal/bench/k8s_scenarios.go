package bench

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/template"
	"time"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
)

// scenarios measures the scenarios in order and fills res. Each runs
// hyperfork first, then the host, which links with the version hyperfork
// reported so that both produce the same binaries.
func (kw *k8sWorld) scenarios(ctx context.Context, res *K8sResult) error {
	log, n := kw.o.Logger, len(kw.k8s.Platforms)
	runtime.GC()
	debug.FreeOSMemory()
	res.LoadBefore = loadAverage()
	res.Identical = true
	check := func(name string, b *report.Build) (bool, error) {
		same, err := kw.checkImage(ctx, name, b.Image)
		res.Identical = res.Identical && same
		return same, err
	}

	// (a) cold: a fresh buildkitd against an empty GOCACHE on the host.
	name := fmt.Sprintf("cold build, %d platforms", n)
	log.Info("measuring", "scenario", name, "targets", kw.k8s.Targets)
	cold, ours, steps, err := kw.buildSteps(ctx, name, false, report.BuildBuilt)
	if err != nil {
		return err
	}
	host, err := kw.hostBuild(ctx, name, cold)
	if err != nil {
		return err
	}
	same, err := check(name, cold)
	if err != nil {
		return err
	}
	res.Versions = append(res.Versions, cold.Version)
	res.Timings = append(res.Timings, K8sTiming{Timing{Name: name, Ours: ours, Plain: host, Target: "<= 1.2x go build", Verified: same},
		steps, Samples{ours}, Samples{host}})

	// (b) no-op: nothing new on the fork; the host does `go build` with
	// everything cached, the least it can do to be sure.
	name = "no-op, nothing new"
	log.Info("measuring", "scenario", name, "runs", kw.k8s.Runs)
	var oursRuns, hostRuns Samples
	var noopSteps []Step
	for r := range kw.k8s.Runs {
		for _, side := range roundOrder(r+1, 2) {
			if side == 0 {
				b, d, st, err := kw.buildSteps(ctx, name, false, report.BuildUpToDate)
				if err != nil {
					return err
				}
				if b.Image != cold.Image {
					return fmt.Errorf("%s: hyperfork reports image %s, want the cold build's %s", name, b.Image, cold.Image)
				}
				oursRuns, noopSteps = append(oursRuns, d), st
			} else {
				d, err := kw.hostBuild(ctx, name, cold)
				if err != nil {
					return err
				}
				hostRuns = append(hostRuns, d)
			}
		}
	}
	res.Timings = append(res.Timings, K8sTiming{Timing{Name: name, Ours: median(oursRuns), Plain: median(hostRuns),
		Target: "< 0.5s (go build: all cached, for reference)", Verified: true}, noopSteps, oursRuns, hostRuns})

	// (c) one line changed in kubectl's version command, committed to the
	// fork: Runs rounds, each a new commit, hyperfork then the host.
	name = "one-line change in kubectl's version command"
	log.Info("measuring", "scenario", name, "file", k8sEditFile, "runs", kw.k8s.Runs)
	var inc *report.Build
	var incOurs, incHost Samples
	verified, prev := true, cold
	for r := 1; r <= kw.k8s.Runs; r++ {
		if err := editK8s(kw.src, r); err != nil {
			return err
		}
		if err := kw.commitFork(ctx, fmt.Sprintf("fix: one line in %s (%d)", k8sEditFile, r)); err != nil {
			return err
		}
		if inc, ours, steps, err = kw.buildSteps(ctx, name, false, report.BuildBuilt); err != nil {
			return err
		}
		if host, err = kw.hostBuild(ctx, name, inc); err != nil {
			return err
		}
		if same, err = check(name, inc); err != nil {
			return err
		}
		if digestOf(inc.Image) == digestOf(prev.Image) {
			return fmt.Errorf("%s: the image %s did not change", name, inc.Image)
		}
		prev, verified = inc, verified && same
		incOurs, incHost = append(incOurs, ours), append(incHost, host)
		res.Versions = append(res.Versions, inc.Version)
	}
	res.Timings = append(res.Timings, K8sTiming{Timing{Name: name, Ours: incOurs.Median(), Plain: incHost.Median(),
		Target: "<= 1.5x go build", Verified: verified}, steps, incOurs, incHost})

	// (d) the same commit again, forced: nothing to recompile or relink,
	// and the same image digest every time.
	name = "forced rebuild, same commit"
	log.Info("measuring", "scenario", name, "runs", kw.k8s.Runs)
	var forcedOurs, forcedHost Samples
	res.SameDigest = true
	for range kw.k8s.Runs {
		forced, ours, st, err := kw.buildSteps(ctx, name, true, report.BuildBuilt)
		if err != nil {
			return err
		}
		if host, err = kw.hostBuild(ctx, name, forced); err != nil {
			return err
		}
		steps = st
		res.SameDigest = res.SameDigest && digestOf(forced.Image) != "" && digestOf(forced.Image) == digestOf(inc.Image)
		forcedOurs, forcedHost = append(forcedOurs, ours), append(forcedHost, host)
	}
	res.Timings = append(res.Timings, K8sTiming{Timing{Name: name, Ours: forcedOurs.Median(), Plain: forcedHost.Median(),
		Target: "same digest (go build: all cached, for reference)", Verified: res.SameDigest}, steps, forcedOurs, forcedHost})
	res.LoadAfter = loadAverage()
	return nil
}

// buildSteps runs hyperfork's build as buildExpect does and reads its
// steps from the pipeline log.
func (kw *k8sWorld) buildSteps(ctx context.Context, scenario string, force bool, want string) (*report.Build, time.Duration, []Step, error) {
	var offset int64
	if fi, err := os.Stat(kw.pipeLog); err == nil {
		offset = fi.Size()
	}
	b, d, err := kw.buildExpect(ctx, scenario, force, want)
	if err != nil {
		return nil, d, nil, err
	}
	steps, err := readSteps(kw.pipeLog, offset)
	if err != nil {
		return nil, d, nil, fmt.Errorf("%s: read hyperfork's steps: %w", scenario, err)
	}
	kw.o.Logger.Info("hyperfork built", "scenario", scenario, "took", d.Round(time.Millisecond), "steps", stepSummary(steps))
	return b, d, steps, nil
}

// hostBuild runs `go build` of the targets for every platform at once, all
// sharing one GOCACHE, as BuildKit runs one `go build` per platform on one
// shared cache mount, with hyperfork's flags and the stamp of b, in the
// host work tree, which holds b's commit. The output folders keep the
// previous binaries, as a developer's do.
func (kw *k8sWorld) hostBuild(ctx context.Context, scenario string, b *report.Build) (time.Duration, error) {
	ldflags, err := kw.hostLDFlags(ctx, b)
	if err != nil {
		return 0, err
	}
	type run struct {
		cmd *exec.Cmd
		out bytes.Buffer
		err error
	}
	runs := make([]*run, len(kw.k8s.Platforms))
	start := time.Now()
	for i, p := range kw.k8s.Platforms {
		goos, goarch, _ := goosArch(p)
		args := append([]string{"build", "-trimpath", "-buildvcs=false", "-mod=vendor", "-ldflags=" + ldflags,
			"-o", filepath.Join(kw.hostOut, goos+"_"+goarch) + "/"}, kw.k8s.Targets...)
		r := &run{cmd: exec.CommandContext(ctx, kw.goBin, args...)}
		r.cmd.Dir, r.cmd.Env = kw.src, kw.k8sHostEnv(goos, goarch)
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
		r.err = r.cmd.Start()
		runs[i] = r
	}
	for _, r := range runs {
		if r.err == nil {
			r.err = r.cmd.Wait()
		}
	}
	d := time.Since(start)
	for i, r := range runs {
		if r.err != nil {
			return d, fmt.Errorf("%s: host go build for %s: %s: %w\n%s", scenario, kw.k8s.Platforms[i], r.cmd, r.err, bytes.TrimSpace(r.out.Bytes()))
		}
	}
	return d, nil
}

// hostLDFlags renders the benchmark's ldflags for b's commit as the build
// stage does (build.Spec): each template in order, then -s -w.
func (kw *k8sWorld) hostLDFlags(ctx context.Context, b *report.Build) (string, error) {
	when, err := kw.git(ctx, kw.src, "show", "-s", "--format=%cI", b.Commit)
	if err != nil {
		return "", err
	}
	t, err := time.Parse(time.RFC3339, when)
	if err != nil {
		return "", fmt.Errorf("date of %s: %w", b.Commit, err)
	}
	data := struct{ Version, Commit, TreeState, BuildDate string }{b.Version, b.Commit, "clean", t.UTC().Format(build.BuildDateFormat)}
	var parts []string
	for _, f := range k8sLDFlags(kw.k8s.Version) {
		var out bytes.Buffer
		if err := template.Must(template.New("ldflags").Parse(f)).Execute(&out, data); err != nil {
			return "", err
		}
		parts = append(parts, out.String())
	}
	return strings.Join(append(parts, "-s", "-w"), " "), nil
}

// k8sHostEnv is the host build's environment: what hostEnv gives, in the
// tree's workspace (go.work) as BuildKit builds it.
func (kw *k8sWorld) k8sHostEnv(goos, goarch string) []string {
	var env []string
	for _, kv := range kw.hostEnv(goos, goarch) {
		if !strings.HasPrefix(kv, "GOWORK=") {
			env = append(env, kv)
		}
	}
	return env
}

// checkImage checks that the image ref has every target as an ELF binary
// for each platform's machine, and reports whether all are byte-identical
// to the host's last `go build`. One platform is held in memory at a time.
func (kw *k8sWorld) checkImage(ctx context.Context, scenario, ref string) (bool, error) {
	repo, err := registry.Open(registry.Options{Ref: kw.repo})
	if err != nil {
		return false, err
	}
	idx, err := repo.Get(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("%s: %w", scenario, err)
	}
	identical := true
	for _, p := range kw.k8s.Platforms {
		files, err := registry.Files(idx, p)
		if err != nil {
			return false, fmt.Errorf("%s: image %s: %w", scenario, ref, err)
		}
		goos, goarch, _ := goosArch(p)
		for _, t := range kw.k8s.Targets {
			name := filepath.Base(t)
			ours := files["usr/local/bin/"+name]
			f, err := elf.NewFile(bytes.NewReader(ours))
			if err != nil {
				return false, fmt.Errorf("%s: %s of %s in image %s is not an ELF binary: %w", scenario, name, p, ref, err)
			}
			if m, ok := machines[goarch]; ok && f.Machine != m {
				return false, fmt.Errorf("%s: %s of %s in image %s is for %v", scenario, name, p, ref, f.Machine)
			}
			host, err := os.ReadFile(filepath.Join(kw.hostOut, goos+"_"+goarch, name))
			if err != nil {
				return false, fmt.Errorf("%s: host binary: %w", scenario, err)
			}
			if !bytes.Equal(ours, host) {
				kw.o.Logger.Warn("binary differs from the host's", "scenario", scenario, "platform", p, "binary", name)
				identical = false
			}
		}
		if _, ok := files["usr/local/bin/"+registry.HyperkubeBinary]; !ok {
			return false, fmt.Errorf("%s: image %s has no hyperkube dispatcher for %s", scenario, ref, p)
		}
	}
	return identical, nil
}
