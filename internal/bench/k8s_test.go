package bench

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// BenchmarkK8s runs the k8s benchmark (HYPERFORK_BENCH_K8S_* variables) and
// prints its table. It needs the module proxy, root and runc, and takes
// half an hour or more for the seven commands:
//
//	HYPERFORK_BENCH_K8S_TARGETS=./cmd/kubectl go test -run '^$' -bench K8s -benchtime 1x -timeout 0 ./internal/bench/
func BenchmarkK8s(b *testing.B) {
	needBuildKit(b)
	opts, err := K8sOptionsFromEnv(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	opts.ModuleDir = "../.."
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	for b.Loop() {
		res, err := K8s(b.Context(), os.Stdout, opts)
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
	}
}

func TestStagingVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.37.2": "v0.37.2", "v1.38.0-rc.1": "v0.38.0-rc.1"} {
		if got, err := stagingVersion(in); err != nil || got != want {
			t.Errorf("stagingVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"1.37.2", "v2.0.0", "v1.37", "v1.37.2+x"} {
		if _, err := stagingVersion(bad); err == nil {
			t.Errorf("stagingVersion(%q) accepted", bad)
		}
	}
}

// TestK8sLayout lays out a miniature of the module proxy's Kubernetes: a
// root module whose go.work and go.mod name three staging modules, one of
// which is not served, and checks the layout and the edits the go command
// makes, then that the workspace builds.
func TestK8sLayout(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		prereq.Missing(t, "go is not on PATH")
	}
	root, a := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	write(root, "go.mod", "module k8s.io/kubernetes\n\ngo 1.22\n\nrequire (\n\tk8s.io/api v0.0.0\n\tk8s.io/sample-controller v0.0.0\n)\n\n"+
		"replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller // a sample\n)\n")
	write(root, "go.work", "// This is a generated file. Do not edit directly.\n\ngo 1.22\n\nuse (\n\t.\n\t./staging/src/k8s.io/api\n\t./staging/src/k8s.io/sample-controller\n)\n")
	write(root, "cmd/tool/main.go", "package main\n\nimport \"k8s.io/api\"\n\nfunc main() { println(api.Name) }\n")
	write(root, "hack/run.sh", "#!/bin/sh\necho hi\n")
	write(a, "go.mod", "module k8s.io/api\n\ngo 1.22\n")
	write(a, "api.go", "package api\n\nconst Name = \"api\"\n")

	uses, err := workUses(filepath.Join(root, "go.work"))
	if err != nil || !slices.Equal(uses, []string{".", "./staging/src/k8s.io/api", "./staging/src/k8s.io/sample-controller"}) {
		t.Fatalf("workUses = %q, %v", uses, err)
	}
	dst := filepath.Join(t.TempDir(), "tree")
	if err := copyModule(root, dst); err != nil {
		t.Fatal(err)
	}
	if err := copyModule(a, filepath.Join(dst, "staging/src/k8s.io/api")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "hack/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("script mode %v, %v; want 0755", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "go.mod")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("go.mod mode %v, %v; want 0644 (the module cache's are read-only)", fi.Mode(), err)
	}
	m := k8sTreeMaker{goBin: goBin, env: os.Environ()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.dropModules(ctx, dst, []string{"k8s.io/sample-controller"}); err != nil {
		t.Fatal(err)
	}
	work, _ := os.ReadFile(filepath.Join(dst, "go.work"))
	mod, _ := os.ReadFile(filepath.Join(dst, "go.mod"))
	if strings.Contains(string(work), "sample") || strings.Contains(string(mod), "sample") {
		t.Errorf("the unserved module is still named:\ngo.work:\n%s\ngo.mod:\n%s", work, mod)
	}
	if !strings.Contains(string(work), "./staging/src/k8s.io/api") || !strings.Contains(string(mod), "k8s.io/api => ./staging/src/k8s.io/api") {
		t.Errorf("the served module was dropped too:\ngo.work:\n%s\ngo.mod:\n%s", work, mod)
	}
	env := append(m.goEnv(), "GOPROXY=off")
	if out, err := m.run(ctx, dst, env, goBin, "build", "-o", os.DevNull, "./cmd/tool"); err != nil {
		t.Errorf("the laid-out workspace does not build: %v\n%s", err, out)
	}

	if err := editK8sIn(t, dst); err != nil {
		t.Error(err)
	}
}

// editK8sIn checks the one-line change on a copy of kubectl's version.go.
func editK8sIn(t *testing.T, dir string) error {
	p := filepath.Join(dir, filepath.FromSlash(k8sEditFile))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	src := "package version\n\nfunc (o *Options) Run() error {\n\tif o.x {\n\t\treturn fmt.Errorf(\"VersionOptions were not validated: --output=%q\", o.Output)\n\t}\n\treturn nil\n}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		return err
	}
	if err := editK8s(dir, 1); err != nil {
		return err
	}
	b, _ := os.ReadFile(p)
	if want := "fmt.Errorf(\"[hyperfork bench 1] VersionOptions"; !strings.Contains(string(b), want) || strings.Count(string(b), "\n") != strings.Count(src, "\n") {
		t.Errorf("edited file:\n%s\nwant one line changed to hold %q", b, want)
	}
	return nil
}

func TestParseSteps(t *testing.T) {
	log := `=== 2026 hyperfork build
time=x level=INFO msg="fetched and described" branch=master took=64ms commit=56eb
time=x level=INFO msg="exported source" branch=master took=42ms dir=/x
#1 resolve image config for docker-image://127.0.0.1:42655/golang:local
#1 DONE 0.0s

#3 source tree
#3 transferring source: 22.45kB 0.1s
#3 DONE 0.2s

#4 [linux/arm64] go build ./cmd/a ./cmd/b
#4 DONE 2.6s

#5 [linux/amd64] go build ./cmd/a ./cmd/b
#5 CACHED

#6 exporting to client directory
#6 copying files linux/arm64 4.03MB 0.1s
#6 DONE 0.7s
time=x level=INFO msg=compiled branch=master took=3.616s platforms="[linux/amd64 linux/arm64]"
time=x level=INFO msg="packed image" image=project platform=linux/amd64 digest=sha256:56
time=x level=INFO msg=packed branch=master took=516ms image=project
time=x level=INFO msg=pushed branch=master took=40ms image=x
time=x level=INFO msg=packed branch=master took=100ms image=other
`
	steps, err := parseSteps(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	got := stepSummary(steps)
	want := "fetch 64ms, export tree 42ms, compile 3.62s (source tree 200ms, [linux/arm64] go build 2.60s, [linux/amd64] go build cached, exporting to client directory 700ms), pack 616ms, push 40ms"
	if got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
}

func TestK8sOptionsFromEnv(t *testing.T) {
	env := map[string]string{EnvK8sVersion: "v1.36.0", EnvK8sTargets: "./cmd/kubectl, ./cmd/kubelet", EnvK8sRuns: "2", "GOPROXY": "http://127.0.0.1:1"}
	o, err := K8sOptionsFromEnv(func(k string) string { return env[k] })
	if err != nil || o.Version != "v1.36.0" || !slices.Equal(o.Targets, []string{"./cmd/kubectl", "./cmd/kubelet"}) || o.Runs != 2 || o.GoProxy != "http://127.0.0.1:1" {
		t.Errorf("options %+v, %v", o, err)
	}
	env = map[string]string{EnvK8sVersion: "1.37", EnvK8sRuns: "x"}
	if _, err := K8sOptionsFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), EnvK8sVersion) || !strings.Contains(err.Error(), EnvK8sRuns) {
		t.Errorf("error %v, want both variables named", err)
	}
}
