package bench

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/pipeline"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
)

// build runs hyperfork's build stage in-process exactly as `go tool mage
// build` does, with BUILDKIT_HOST at the benchmark's daemon, and returns
// its report and the duration of the call alone. Its output, BuildKit's
// progress included, goes to the pipeline log.
func (bw *buildWorld) build(ctx context.Context, force bool) (*report.Report, time.Duration, error) {
	env := map[string]string{
		"HYPERFORK_CONFIG":   bw.config,
		"HYPERFORK_REPORT":   bw.report,
		"HYPERFORK_BRANCHES": "master",
		"BUILDKIT_HOST":      bw.daemon.Addr(),
	}
	if force {
		env["HYPERFORK_FORCE"] = "1"
	}
	if err := os.Remove(bw.report); err != nil && !os.IsNotExist(err) {
		return nil, 0, err
	}
	logf, err := os.OpenFile(bw.pipeLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline log: %w", err)
	}
	defer logf.Close()
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline log: %w", err)
	}
	fmt.Fprintf(logf, "\n=== %s hyperfork build, HYPERFORK_FORCE=%s\n", time.Now().UTC().Format(time.RFC3339Nano), env["HYPERFORK_FORCE"])

	var d time.Duration
	var code int
	// buildkitd is this process's child, but its memory is its own; the
	// compilers it runs are its descendants.
	pid := bw.buildkitdPid()
	p, kids, err := sampleWhile(buildSampleInterval, true, func() uint64 { return descendantsPeak(pid) }, func() error {
		start := time.Now()
		c, err := pipeline.Main(ctx, "build", pipeline.Env{
			Getenv: func(k string) string { return env[k] }, Stdout: logf, Stderr: logf, ModuleDir: bw.o.ModuleDir})
		d, code = time.Since(start), c
		return err
	})
	bw.ours.merge(p)
	bw.bkKids = max(bw.bkKids, kids)
	bw.lastGoBuild = goBuildStep(bw.pipeLog, offset)
	if err != nil || code != 0 {
		return nil, d, fmt.Errorf("hyperfork build exited with code %d: %v\nthe end of its log %s:\n%s", code, err, bw.pipeLog, lastLines(bw.pipeLog, 30))
	}
	b, err := os.ReadFile(bw.report)
	if err != nil {
		return nil, d, fmt.Errorf("hyperfork build wrote no report: %w", err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, d, fmt.Errorf("hyperfork build report %s: %w", bw.report, err)
	}
	return &rep, d, nil
}

// Lines of BuildKit's plain progress output: a step's name, and its end.
var (
	goBuildVertex = regexp.MustCompile(`^#(\d+) \[[^\]]+\] go build `)
	vertexDone    = regexp.MustCompile(`^#(\d+) DONE ([0-9.]+)s$`)
)

// goBuildStep reads BuildKit's progress in the log from offset on and
// returns the longest `go build` step of the platforms: the compile itself,
// as BuildKit timed it. It is 0 when the steps were cached or not run.
func goBuildStep(logPath string, offset int64) time.Duration {
	f, err := os.Open(logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0
	}
	steps := map[string]bool{}
	var longest time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := goBuildVertex.FindStringSubmatch(line); m != nil {
			steps[m[1]] = true
		} else if m := vertexDone.FindStringSubmatch(line); m != nil && steps[m[1]] {
			if secs, err := strconv.ParseFloat(m[2], 64); err == nil {
				longest = max(longest, time.Duration(secs*float64(time.Second)))
			}
		}
	}
	return longest
}

// machines are the ELF machines of the platforms checked by name.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkImage checks that the image ref in the registry has one image per
// platform, each holding every command as an ELF binary for its machine,
// and reports whether all of them are byte-identical to the host's last
// `go build`: the same toolchain, flags and source must give the same bytes.
func (bw *buildWorld) checkImage(ctx context.Context, scenario, ref string) (identical bool, err error) {
	repo, err := registry.Open(registry.Options{Ref: bw.repo})
	if err != nil {
		return false, err
	}
	idx, err := repo.Get(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("%s: %w", scenario, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return false, fmt.Errorf("%s: read index of %s: %w", scenario, ref, err)
	}
	if len(im.Manifests) != len(bw.o.Platforms) {
		return false, fmt.Errorf("%s: image %s has %d platforms, want %d", scenario, ref, len(im.Manifests), len(bw.o.Platforms))
	}
	identical = true
	for _, p := range bw.o.Platforms {
		files, err := registry.Files(idx, p)
		if err != nil {
			return false, fmt.Errorf("%s: image %s: %w", scenario, ref, err)
		}
		goos, goarch, _ := goosArch(p)
		for _, c := range projectCommands {
			ours := files["usr/local/bin/"+c]
			f, err := elf.NewFile(bytes.NewReader(ours))
			if err != nil {
				return false, fmt.Errorf("%s: %s of %s in image %s is not an ELF binary: %w", scenario, c, p, ref, err)
			}
			if m, ok := machines[goarch]; ok && f.Machine != m {
				return false, fmt.Errorf("%s: %s of %s in image %s is for %v", scenario, c, p, ref, f.Machine)
			}
			host, err := os.ReadFile(filepath.Join(bw.hostOut, goos+"_"+goarch, c))
			if err != nil {
				return false, fmt.Errorf("%s: host binary: %w", scenario, err)
			}
			if !bytes.Equal(ours, host) {
				bw.o.Logger.Warn("binary differs from the host's", "scenario", scenario, "platform", p, "command", c)
				identical = false
			}
		}
	}
	return identical, nil
}

// lastLines returns the last n lines of a file, for error messages.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
