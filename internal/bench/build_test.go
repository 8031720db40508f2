package bench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// needBuildKit skips (fails under CI=true) when buildkitd cannot run here.
func needBuildKit(t testing.TB) {
	t.Helper()
	prereq.Slow(t, "starts buildkitd and compiles for two platforms")
	reason := ""
	if os.Geteuid() != 0 {
		reason = "buildkitd with runc needs root"
	} else if _, err := exec.LookPath("runc"); err != nil {
		reason = "runc is not installed: apt-get install -y runc"
	}
	if reason == "" {
		return
	}
	prereq.Missing(t, "%s", reason)
}

// BenchmarkBuild runs the build benchmark at its default size (or as the
// HYPERFORK_BENCH_BUILD_* variables say) and prints its table:
//
//	go test -run '^$' -bench Build -benchtime 1x ./internal/bench/
//
// It reports the ratios as metrics; go's own ns/op is the whole run and
// means little.
func BenchmarkBuild(b *testing.B) {
	needBuildKit(b)
	opts, err := BuildOptionsFromEnv(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	opts.ModuleDir = "../.."
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	for b.Loop() {
		res, err := Build(b.Context(), os.Stdout, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Verified {
			b.Fatal("results not verified")
		}
		for _, t := range res.Timings {
			if t.Plain > 0 {
				b.ReportMetric(t.Ratio(), "ratio-"+metricName(t.Name))
			}
		}
		b.ReportMetric(float64(res.Memory.SelfPeak)/(1<<20), "peak-MiB")
	}
}

// TestBuildBenchSmall runs the whole build benchmark on a tiny project and
// checks that every scenario's results were verified and the table
// printed. It asserts nothing about timings: those depend on the machine.
func TestBuildBenchSmall(t *testing.T) {
	needBuildKit(t)
	var out bytes.Buffer
	res, err := Build(context.Background(), &out, BuildOptions{
		WorkDir: t.TempDir(), Packages: 3, Files: 1, Funcs: 2, Runs: 1, ModuleDir: "../..",
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	if !res.Verified || !res.SameDigest || !res.Identical {
		t.Fatalf("results not verified: same digest %v, identical %v, %+v", res.SameDigest, res.Identical, res.Timings)
	}
	if len(res.Timings) != 4 {
		t.Fatalf("%d scenarios, want 4 (cold, no-op, one-line change, forced): %+v", len(res.Timings), res.Timings)
	}
	for _, tm := range res.Timings {
		if !tm.Verified || tm.Ours <= 0 || tm.Plain <= 0 {
			t.Errorf("scenario %q: %+v", tm.Name, tm)
		}
	}
	if res.Timings[0].GoBuild <= 0 || res.Timings[1].GoBuild != 0 {
		t.Errorf("go build inside BuildKit: cold %v, no-op %v", res.Timings[0].GoBuild, res.Timings[1].GoBuild)
	}
	if digestOf(res.ColdImage) == "" || digestOf(res.ColdImage) == digestOf(res.Image) || res.ForcedImage != res.Image {
		t.Errorf("images: cold %s, changed %s, forced %s", res.ColdImage, res.Image, res.ForcedImage)
	}
	if m := res.Memory; m.SelfPeak == 0 || m.OursRSS == 0 || m.BuildKitd == 0 || m.Host == 0 {
		t.Errorf("memory not measured: %+v", m)
	}
	for _, s := range []string{"cold build, 2 platforms", "one-line change in a leaf package", "same digest: yes", "PARALLEL", "buildkitd, its own peak RSS"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
}

func TestBuildOptionsFromEnv(t *testing.T) {
	env := map[string]string{EnvBuildPackages: "20", EnvBuildPlatforms: "linux/amd64, linux/s390x", EnvBuildFiles: "many", EnvBuildRuns: "-1"}
	o, err := BuildOptionsFromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), EnvBuildFiles) || !strings.Contains(err.Error(), EnvBuildRuns) {
		t.Fatalf("want errors for %s and %s, got %v", EnvBuildFiles, EnvBuildRuns, err)
	}
	if o.Packages != 20 || len(o.Platforms) != 2 || o.Platforms[1] != "linux/s390x" {
		t.Fatalf("options %+v", o)
	}
	if _, err := (BuildOptions{Platforms: []string{"linux/arm/v7"}}).withDefaults(); err == nil {
		t.Fatal("a platform with a variant was accepted")
	}
	d, err := BuildOptions{}.withDefaults()
	if err != nil || d.Packages != DefaultBuildPackages || len(d.Platforms) != 2 || d.Runs != 3 {
		t.Fatalf("defaults %+v, %v", d, err)
	}
}

// TestGeneratedProject checks the generated project is formatted, vets
// clean, and that the package the incremental scenario edits is a leaf
// imported by a command only, and that the edit changes exactly one line.
func TestGeneratedProject(t *testing.T) {
	dir := t.TempDir()
	s := projectShape{Packages: 12, Files: 2, Funcs: 2}
	if err := generateProject(dir, s); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOPROXY=off", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	if out := run("gofmt", "-l", "."); out != "" {
		t.Fatalf("not gofmt-formatted:\n%s", out)
	}
	run("go", "vet", "./...")
	leaf := projectModule + "/pkg/" + s.leafPackage()
	importers := run("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	var users []string
	for _, line := range strings.Split(strings.TrimSpace(importers), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == leaf {
				users = append(users, f[0])
			}
		}
	}
	if len(users) != 1 || !strings.HasPrefix(users[0], projectModule+"/cmd/") {
		t.Fatalf("%s is imported by %v, want one command only", leaf, users)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "pkg", s.leafPackage(), "f0.go"))
	rel, err := editLeaf(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	a, b := strings.Split(string(before), "\n"), strings.Split(string(after), "\n")
	diff := 0
	for i := range a {
		if a[i] != b[i] {
			diff++
		}
	}
	if len(a) != len(b) || diff != 1 {
		t.Fatalf("the edit changed %d lines of %s, want 1", diff, rel)
	}
	run("go", "vet", "./...")
}

func TestGoBuildStep(t *testing.T) {
	log := filepath.Join(t.TempDir(), "pipeline.log")
	old := "#4 [linux/amd64] go build ./cmd/a\n#4 DONE 99.0s\n"
	cur := `#3 source tree
#3 DONE 0.2s

#4 [linux/arm64] go build ./cmd/a ./cmd/b ./cmd/c
#4 ...

#5 [linux/amd64] go build ./cmd/a ./cmd/b ./cmd/c
#5 DONE 41.8s

#4 [linux/arm64] go build ./cmd/a ./cmd/b ./cmd/c
#4 DONE 42.4s

#6 exporting to client directory
#6 DONE 50.3s
`
	if err := os.WriteFile(log, []byte(old+cur), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := goBuildStep(log, int64(len(old))); d.Seconds() != 42.4 {
		t.Fatalf("goBuildStep = %v, want 42.4s", d)
	}
	if err := os.WriteFile(log, []byte("#4 [linux/amd64] go build ./cmd/a\n#4 CACHED\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := goBuildStep(log, 0); d != 0 {
		t.Fatalf("goBuildStep of cached steps = %v, want 0", d)
	}
}
