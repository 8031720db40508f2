package build

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// writeModule makes a stdlib-only module with two commands that print a
// version stamped by ldflags, and one that does not compile.
func writeModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":             "module example.com/hello\n\ngo 1.22\n",
		"cmd/alpha/main.go":  "package main\n\nimport \"fmt\"\n\nvar version = \"unset\"\n\nfunc main() { fmt.Println(\"alpha\", version) }\n",
		"cmd/beta/main.go":   "package main\n\nimport \"fmt\"\n\nvar version = \"unset\"\n\nfunc main() { fmt.Println(\"beta\", version) }\n",
		"cmd/broken/main.go": "package main\n\nfunc main() {\n\tundefinedCall(\n}\n",
		".git/HEAD":          "ref: refs/heads/main\n", // must not reach the build
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeGinkgoModule makes writeModule's module with a ginkgo v2 suite in
// ./suite and ginkgo's command vendored (through tools.go, as Kubernetes
// vendors it): `go mod tidy` fetches what the local module cache lacks from
// GOPROXY, then `go mod vendor` lays vendor/ out.
func writeGinkgoModule(t *testing.T) string {
	t.Helper()
	dir := writeModule(t)
	files := map[string]string{
		"go.mod": "module example.com/hello\n\ngo 1.24\n\nrequire github.com/onsi/ginkgo/v2 v2.34.0\n",
		"suite/suite_test.go": `package suite

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
)

func TestSuite(t *testing.T) { ginkgo.RunSpecs(t, "hyperfork suite") }

var _ = ginkgo.Describe("the fork", func() {
	ginkgo.It("builds its test binaries", func() {
		if len("fork") != 4 {
			ginkgo.Fail("arithmetic")
		}
	})
})
`,
		"suite/doc.go": "// Package suite is the fork's test suite.\npackage suite\n",
		"tools.go":     "//go:build tools\n\n// Package tools pins the commands the build needs.\npackage tools\n\nimport _ \"github.com/onsi/ginkgo/v2/ginkgo\"\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.RemoveAll(filepath.Join(dir, "cmd", "broken")) // go mod tidy reads every package
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
	for _, args := range [][]string{{"mod", "tidy"}, {"mod", "vendor"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			skipOrFail(t, fmt.Sprintf("go %s in the test module (needs github.com/onsi/ginkgo/v2@v2.34.0 from the module cache or GOPROXY): %v\n%s",
				strings.Join(args, " "), err, out))
		}
	}
	return dir
}

func TestCompile(t *testing.T) {
	d := needDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := Connect(ctx, d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	host := ocitest.StartRegistry(t)
	image := ocitest.PushGoBuilderImage(t, host)
	src := writeModule(t)
	spec := Spec{
		SourceDir:    src,
		Targets:      []string{"./cmd/alpha", "./cmd/beta"},
		Platforms:    []string{"linux/amd64", "linux/arm64"},
		LDFlags:      []string{"-X main.version={{.Version}}+{{.Commit}}"},
		Stamp:        Stamp{Version: "v1.2.3-hf.0", Commit: "0123abc", TreeState: "clean", BuildDate: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		BuilderImage: image,
		Hyperkube:    true,
	}

	compileInto := func(t *testing.T, spec Spec, label, out string) (*Result, string, error) {
		t.Helper()
		var progress bytes.Buffer
		start := time.Now()
		res, err := Compile(ctx, c, spec, out, &progress)
		t.Logf("%s compile of %v: %s", label, spec.Platforms, time.Since(start).Round(time.Millisecond))
		if err != nil && !strings.Contains(err.Error(), "syntax error") {
			t.Logf("progress:\n%s", progress.String())
		}
		if err == nil && !strings.Contains(progress.String(), "go build") {
			t.Errorf("progress output does not show the build steps:\n%s", progress.String())
		}
		return res, out, err
	}
	compile := func(t *testing.T, spec Spec, label string) (*Result, string, error) {
		t.Helper()
		return compileInto(t, spec, label, t.TempDir())
	}

	first, out1, err := compile(t, spec, "cold")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", first.Platforms)
	}
	machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
	for p, want := range machines {
		var names []string
		for _, b := range first.Binaries[p] {
			names = append(names, filepath.Base(b))
			if filepath.Dir(b) != filepath.Join(out1, PlatformDir(p)) {
				t.Errorf("%s is not in %s's folder", b, p)
			}
			f, err := elf.Open(b)
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if f.Machine != want {
				t.Errorf("%s: ELF machine %v, want %v", b, f.Machine, want)
			}
			f.Close()
		}
		if !slices.Equal(names, []string{"alpha", "beta", "hyperkube"}) {
			t.Errorf("%s binaries %v, want alpha beta hyperkube", p, names)
		}
	}

	hostDir := filepath.Join(out1, PlatformDir("linux/"+runtime.GOARCH))
	if _, ok := machines["linux/"+runtime.GOARCH]; ok && runtime.GOOS == "linux" {
		t.Run("stamped binary runs", func(t *testing.T) {
			out, err := exec.Command(filepath.Join(hostDir, "alpha")).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "alpha v1.2.3-hf.0+0123abc" {
				t.Errorf("alpha: %q, %v; want the stamped version", out, err)
			}
		})
		t.Run("hyperkube dispatches to a sibling", func(t *testing.T) {
			out, err := exec.Command(filepath.Join(hostDir, "hyperkube"), "beta").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "beta v1.2.3-hf.0+0123abc" {
				t.Errorf("hyperkube beta: %q, %v", out, err)
			}
			out, _ = exec.Command(filepath.Join(hostDir, "hyperkube"), "--help").CombinedOutput()
			if !strings.Contains(string(out), "  alpha\n  beta\n") {
				t.Errorf("hyperkube --help: %q", out)
			}
		})
	}

	t.Run("rebuild is byte-identical", func(t *testing.T) {
		second, _, err := compile(t, spec, "warm (cached)")
		if err != nil {
			t.Fatal(err)
		}
		assertSameFiles(t, first, second, nil)
		// An extra variable changes the exec's cache key, so go build
		// really runs again and must still produce the same bytes.
		rerun := spec
		rerun.Env = map[string]string{"HYPERFORK_TEST_RERUN": "1"}
		third, _, err := compile(t, rerun, "warm (go build re-run)")
		if err != nil {
			t.Fatal(err)
		}
		assertSameFiles(t, first, third, nil)
	})

	t.Run("a kept output folder gets only what changed", func(t *testing.T) {
		out := t.TempDir()
		base, _, err := compileInto(t, spec, "into a kept folder", out)
		if err != nil {
			t.Fatal(err)
		}
		for p, names := range base.Exported {
			if len(names) != 3 {
				t.Errorf("%s: first build into an empty folder exported %v, want all three", p, names)
			}
		}
		// A stale binary of a target no longer built goes; caches stay.
		amd := filepath.Join(out, PlatformDir("linux/amd64"))
		os.WriteFile(filepath.Join(amd, "old-target"), []byte("x"), 0o755)
		os.MkdirAll(filepath.Join(amd, ".layers"), 0o755)
		os.WriteFile(filepath.Join(amd, ".layers", "kept"), []byte("x"), 0o644)
		// registry.Pack's layer cache hard-links the binaries it packed.
		if err := os.Link(filepath.Join(amd, "alpha"), filepath.Join(amd, ".layers", "alpha.link")); err != nil {
			t.Fatal(err)
		}

		again, _, err := compileInto(t, spec, "nothing changed, kept folder", out)
		if err != nil {
			t.Fatal(err)
		}
		for p, names := range again.Exported {
			if len(names) != 0 {
				t.Errorf("%s: nothing changed but %v were exported", p, names)
			}
		}
		assertSameFiles(t, first, again, nil)
		if _, err := os.Stat(filepath.Join(amd, "old-target")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a binary no target makes is still there: %v", err)
		}
		if _, err := os.Stat(filepath.Join(amd, ".layers", "kept")); err != nil {
			t.Errorf("the folder's cache is gone: %v", err)
		}

		p := filepath.Join(src, "cmd/beta/main.go")
		old, _ := os.ReadFile(p)
		t.Cleanup(func() { os.WriteFile(p, old, 0o644) })
		if err := os.WriteFile(p, bytes.Replace(old, []byte(`"beta"`), []byte(`"beta!"`), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		third, _, err := compileInto(t, spec, "incremental, kept folder", out)
		if err != nil {
			t.Fatal(err)
		}
		assertSameFiles(t, first, third, []string{"beta"})
		for p, names := range third.Exported {
			if !slices.Equal(names, []string{"beta"}) {
				t.Errorf("%s: one-line change in beta exported %v, want beta only", p, names)
			}
		}
		// A client that lost a binary gets it back, and only it.
		os.Remove(filepath.Join(amd, "alpha"))
		fourth, _, err := compileInto(t, spec, "one binary removed from the folder", out)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fourth.Exported["linux/amd64"], []string{"alpha"}) || len(fourth.Exported["linux/arm64"]) != 0 {
			t.Errorf("exported %v, want alpha for amd64 only", fourth.Exported)
		}
		assertSameFiles(t, third, fourth, nil)
	})

	t.Run("test binaries in the same solve", func(t *testing.T) {
		tsrc := writeGinkgoModule(t)
		ts := spec
		ts.SourceDir = tsrc
		ts.TestTargets = []string{"./suite"}
		ts.TestPlatform = "linux/" + runtime.GOARCH
		res, out, err := compile(t, ts, "with test binaries")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(out, PlatformDir(ts.TestPlatform))
		want := []string{filepath.Join(dir, "ginkgo"), filepath.Join(dir, "suite.test")}
		if res.TestPlatform != ts.TestPlatform || !slices.Equal(res.TestBinaries, want) {
			t.Fatalf("test platform %q binaries %v, want %v", res.TestPlatform, res.TestBinaries, want)
		}
		for _, p := range res.Platforms {
			for _, b := range res.Binaries[p] {
				if n := filepath.Base(b); n == "ginkgo" || strings.HasSuffix(n, ".test") {
					t.Errorf("%s lists test binary %s among its binaries", p, b)
				}
			}
		}
		other := filepath.Join(out, PlatformDir("linux/arm64"))
		if runtime.GOARCH == "arm64" {
			other = filepath.Join(out, PlatformDir("linux/amd64"))
		}
		if _, err := os.Stat(filepath.Join(other, "suite.test")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a test binary was built for a platform that does not run tests: %v", err)
		}
		if runtime.GOOS != "linux" {
			return
		}
		got, err := exec.Command(filepath.Join(dir, "suite.test"), "-ginkgo.v", "-ginkgo.no-color").CombinedOutput()
		t.Logf("suite.test -ginkgo.v:\n%s", got)
		if err != nil || !strings.Contains(string(got), "hyperfork suite") || !strings.Contains(string(got), "Ran 1 of 1 Specs") {
			t.Errorf("suite.test: %v; want ginkgo's report of the suite", err)
		}
		got, err = exec.Command(filepath.Join(dir, "ginkgo"), "version").CombinedOutput()
		if err != nil || !strings.Contains(string(got), "Ginkgo Version 2.34.0") {
			t.Errorf("ginkgo version: %q, %v; want the vendored 2.34.0", got, err)
		}
	})

	t.Run("single platform keeps the per-platform layout", func(t *testing.T) {
		one := spec
		one.Platforms, one.Targets, one.Hyperkube = []string{"linux/arm64"}, []string{"./cmd/alpha"}, false
		res, out, err := compile(t, one, "single-platform")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(out, "linux_arm64", "alpha")}
		if !slices.Equal(res.Binaries["linux/arm64"], want) {
			t.Errorf("binaries %v, want %v", res.Binaries, want)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 1 {
			t.Errorf("output folder holds %d entries, want only linux_arm64", len(entries))
		}
	})

	t.Run("compile error quotes the compiler", func(t *testing.T) {
		bad := spec
		bad.Targets, bad.Platforms = []string{"./cmd/broken"}, []string{"linux/amd64"}
		_, _, err := compile(t, bad, "failing")
		if err == nil {
			t.Fatal("broken target compiled")
		}
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("error %T is not a *CompileError", err)
		}
		if !strings.Contains(err.Error(), "cmd/broken/main.go:5:1: syntax error") {
			t.Errorf("error does not quote the compiler:\n%v", err)
		}
		t.Logf("the error reads:\n%v", err)
	})

	t.Run("bad platform", func(t *testing.T) {
		bad := spec
		bad.Platforms = []string{"linux/amd64", "linux/sparc99"}
		_, err := Compile(ctx, c, bad, t.TempDir(), nil)
		if err == nil || !strings.Contains(err.Error(), `platform "linux/sparc99": Go cannot target architecture`) {
			t.Errorf("error %v, want one naming the platform", err)
		}
	})

	t.Run("missing builder image", func(t *testing.T) {
		bad := spec
		bad.BuilderImage = host + "/nope:missing"
		_, err := Compile(ctx, c, bad, t.TempDir(), nil)
		if err == nil || !strings.Contains(err.Error(), "resolve builder image "+bad.BuilderImage) {
			t.Errorf("error %v, want one naming the builder image", err)
		}
	})

	t.Run("second StartDaemon reuses the running one", func(t *testing.T) {
		d2, err := StartDaemon(ctx, DaemonOptions{StateDir: testDaemon.dir})
		if err != nil {
			t.Fatal(err)
		}
		if !d2.Reused() || d2.Addr() != d.Addr() {
			t.Errorf("reused=%v addr=%s, want the running daemon at %s", d2.Reused(), d2.Addr(), d.Addr())
		}
		if err := d2.Close(); err != nil {
			t.Error(err)
		}
		if _, err := WorkerPlatforms(ctx, c); err != nil {
			t.Errorf("closing a reused daemon stopped it: %v", err)
		}
	})

	t.Run("changed daemon options restart it", func(t *testing.T) {
		d3, err := StartDaemon(ctx, DaemonOptions{StateDir: testDaemon.dir, InsecureRegistries: []string{"registry.test:5000"}, ModuleDir: moduleRoot(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d3.Close() })
		if d3.Reused() {
			t.Error("a daemon with other insecure registries was reused")
		}
		cfg, _ := os.ReadFile(filepath.Join(testDaemon.dir, "buildkitd", "buildkitd.toml"))
		if !strings.Contains(string(cfg), `[registry."registry.test:5000"]`) {
			t.Errorf("config not rewritten:\n%s", cfg)
		}
		c3, err := Connect(ctx, d3.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c3.Close()
	})
}

// assertSameFiles compares two results binary by binary; changed lists the
// binaries expected to differ.
func assertSameFiles(t *testing.T, a, b *Result, changed []string) {
	t.Helper()
	for p, files := range a.Binaries {
		if len(b.Binaries[p]) != len(files) {
			t.Fatalf("%s: %d binaries, then %d", p, len(files), len(b.Binaries[p]))
		}
		for i, f := range files {
			x, _ := os.ReadFile(f)
			y, _ := os.ReadFile(b.Binaries[p][i])
			same := len(x) > 0 && bytes.Equal(x, y)
			if want := !slices.Contains(changed, filepath.Base(f)); same != want {
				t.Errorf("%s %s: identical=%v, want %v", p, filepath.Base(f), same, want)
			}
		}
	}
}
