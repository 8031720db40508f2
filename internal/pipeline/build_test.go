package pipeline_test

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// One buildkitd for every build test of this package: its Go build cache
// makes the second and later compiles fast.
var buildkitd struct {
	once sync.Once
	addr string
	err  error
	d    *build.Daemon
}

func needBuildKit(t *testing.T) string {
	t.Helper()
	prereq.Slow(t, "needs buildkitd")
	if os.Geteuid() != 0 {
		skipOrFail(t, "buildkitd with runc needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		skipOrFail(t, "runc is not installed: apt-get install -y runc")
	}
	buildkitd.once.Do(func() {
		dir, err := os.MkdirTemp("", "hfpipe-bk-")
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

func TestMain(m *testing.M) {
	code := m.Run()
	if buildkitd.d != nil {
		buildkitd.d.Close()
	}
	os.Exit(code)
}

func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	prereq.Missing(t, "%s", reason)
}

// goProject is a small Go module with two commands that print the version
// stamped into them.
var goProject = map[string]string{
	"go.mod":              "module example.com/kube\n\ngo 1.22\n",
	"cmd/alpha/main.go":   "package main\n\nimport \"fmt\"\n\nvar version, commit, date string\n\nfunc main() { fmt.Println(\"alpha\", version, commit, date) }\n",
	"cmd/beta/main.go":    "package main\n\nimport \"fmt\"\n\nvar version string\n\nfunc main() { fmt.Println(\"beta\", version) }\n",
	"images/alpha.yaml":   "unused\n",
	"internal/lib/lib.go": "package lib\n\nconst Name = \"lib\"\n",
	// The conformance suite of this project: compiled with go test -c into
	// e2e.test by the build stage, run by e2e.sh in the test stage.
	"test/e2e/e2e_test.go": "package e2e\n\nimport \"testing\"\n\nfunc TestE2E(t *testing.T) { t.Log(\"e2e ran\") }\n",
}

// buildWorld is a world whose upstream is goProject and whose config
// builds it for two platforms into a registry on loopback.
func buildWorld(t *testing.T, addr string) (*world, string) {
	t.Helper()
	w := newWorldWith(t, goProject)
	host := ocitest.StartRegistry(t)
	builder := ocitest.PushGoBuilderImage(t, host)
	img := "name: hyperkube\nbase: scratch\nhyperkube: true\nbinaries: [alpha, beta]\nentrypoint: [/usr/local/bin/hyperkube]\nlabels:\n  team: platform\n"
	os.MkdirAll(filepath.Join(w.dir, "images"), 0o755)
	if err := os.WriteFile(filepath.Join(w.dir, "images", "test.yaml"), []byte(img), 0o644); err != nil {
		t.Fatal(err)
	}
	w.yaml = fmt.Sprintf(`build:
  builderImage: %s/golang:local
  platforms: [linux/amd64, linux/arm64]
  targets: [./cmd/alpha, ./cmd/beta]
  ldflags:
    - -X main.version={{.Version}}
    - -X main.commit={{.Commit}}
    - -X main.date={{.BuildDate}}
  images: [images/test.yaml]
  testTargets: [./test/e2e]
  testCommands: []
publish:
  registry: %s/team/hyperkube
test:
  runner: exec
  command: [./e2e.sh]
  timeout: 2m
`, host, host)
	os.WriteFile(filepath.Join(w.dir, "e2e.sh"), []byte(e2eScript), 0o755)
	os.WriteFile(filepath.Join(w.dir, "MODE"), []byte("pass"), 0o644)
	_ = builder
	w.env["BUILDKIT_HOST"] = addr
	return w, host
}

func TestBuildPushesReproducibleCandidate(t *testing.T) {
	addr := needBuildKit(t)
	w, host := buildWorld(t, addr)
	w.forkCommit("master", "carry: alpha says hi", map[string]string{"cmd/alpha/hi.go": "package main\n\nconst hi = 1\n"})
	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	b := w.branch(rep, "master").Build
	head := w.forkHead("master")
	if b.Status != report.BuildBuilt || b.Commit != head || !strings.Contains(b.Image, "@sha256:") || len(b.Platforms) != 2 {
		t.Fatalf("build: %+v", b)
	}
	// Two carries past the tag: the world's and this test's.
	// The build log holds BuildKit's progress, plain, without warnings.
	if log, err := os.ReadFile(b.Log); err != nil || !strings.Contains(string(log), "go build ./cmd/alpha ./cmd/beta") || strings.Contains(string(log), "WARN") {
		t.Fatalf("build log %s (%v):\n%s", b.Log, err, log)
	}
	wantVersion := "v1.0.0-2+" + head[:14]
	if b.Version != wantVersion {
		t.Fatalf("version %q, want %q", b.Version, wantVersion)
	}
	repo, err := registry.Open(registry.Options{Ref: host + "/team/hyperkube"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	entries, err := repo.List(ctx, "hyperkube")
	if err != nil || len(entries) != 1 {
		t.Fatalf("registry holds %d images (%v)", len(entries), err)
	}
	// Its tests passed, so the publish stage gave the candidate's digest
	// its stable tags: the version and the branch, nothing else.
	if p := w.branch(rep, "master").Publish; p == nil || p.Status != report.PublishPublished {
		t.Fatalf("publish: %+v", p)
	}
	stable := map[string]bool{registry.StableTag(wantVersion): true, registry.BranchTag("master"): true}
	for _, tag := range entries[0].Tags {
		if registry.IsCandidateTag(tag) {
			continue
		}
		if !stable[tag] {
			t.Fatalf("unexpected tag %q on the published digest", tag)
		}
		delete(stable, tag)
	}
	if len(stable) > 0 {
		t.Fatalf("the published digest lacks the tags %v: has %v", stable, entries[0].Tags)
	}
	ann := entries[0].Annotations
	if ann[registry.AnnotationRevision] != head || ann[registry.AnnotationVersion] != wantVersion ||
		ann[registry.AnnotationBranch] != "master" || ann[registry.AnnotationCreated] == "" || ann[registry.AnnotationSource] == "" {
		t.Fatalf("annotations %v", ann)
	}

	// The image: one manifest per platform, binaries of the right machine.
	idx, err := repo.Get(ctx, b.Image)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 2 {
		t.Fatalf("index: %v %v", im, err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var alphaAMD64, hyperkubeAMD64 []byte
	for _, d := range im.Manifests {
		files, err := registry.Files(idx, d.Platform.OS+"/"+d.Platform.Architecture)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"alpha", "beta", "hyperkube"} {
			data := files["usr/local/bin/"+name]
			f, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s/%s: %v", d.Platform.Architecture, name, err)
			}
			if f.Machine != want[d.Platform.Architecture] {
				t.Fatalf("%s/%s is %v", d.Platform.Architecture, name, f.Machine)
			}
		}
		if d.Platform.Architecture == "amd64" {
			alphaAMD64, hyperkubeAMD64 = files["usr/local/bin/alpha"], files["usr/local/bin/hyperkube"]
		}
	}
	// Run the amd64 binaries: the stamp, and the dispatcher.
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "alpha"), alphaAMD64, 0o755)
	os.WriteFile(filepath.Join(bin, "hyperkube"), hyperkubeAMD64, 0o755)
	got, err := exec.Command(filepath.Join(bin, "alpha")).CombinedOutput()
	if err != nil || !strings.Contains(string(got), wantVersion) || !strings.Contains(string(got), head) {
		t.Fatalf("alpha printed %q (%v), want the version %s and commit", got, err, wantVersion)
	}
	if got, err := exec.Command(filepath.Join(bin, "hyperkube"), "alpha").CombinedOutput(); err != nil || !strings.HasPrefix(string(got), "alpha "+wantVersion) {
		t.Fatalf("hyperkube alpha printed %q (%v)", got, err)
	}

	// Nothing new: up-to-date without contacting BuildKit at all.
	w.env["BUILDKIT_HOST"] = "tcp://127.0.0.1:1"
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Build.Status != report.BuildUpToDate {
		t.Fatalf("second build: exit %d\n%s", code, out)
	}
	// A forced rebuild of the same commit gives the same digest.
	w.env["BUILDKIT_HOST"] = addr
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=master", "HYPERFORK_FORCE=1")
	if code != 0 || w.branch(rep, "master").Build.Image != b.Image {
		t.Fatalf("forced rebuild: exit %d, image %s, want %s\n%s", code, w.branch(rep, "master").Build.Image, b.Image, out)
	}
	// arm64 on its own daemon (build.buildkitByPlatform): the same candidate.
	w.yaml = strings.Replace(w.yaml, "build:\n", "build:\n  buildkitByPlatform:\n    linux/arm64: "+addr+"\n", 1)
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=master", "HYPERFORK_FORCE=1")
	if code != 0 || w.branch(rep, "master").Build.Image != b.Image {
		t.Fatalf("build with a daemon per platform: exit %d, image %s, want %s\n%s", code, w.branch(rep, "master").Build.Image, b.Image, out)
	}
}

func TestBuildFaults(t *testing.T) {
	addr := needBuildKit(t)
	w, host := buildWorld(t, addr)
	// master does not compile; release-1.0 does.
	w.forkCommit("master", "carry: broken", map[string]string{"cmd/beta/broken.go": "package main\n\nfunc broken() { undefinedThing() }\n"})
	code, rep, out := w.run("build")
	if code != report.ExitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	m := w.branch(rep, "master")
	if m.Build.Status != report.BuildError || !strings.Contains(m.Error, "undefined: undefinedThing") {
		t.Fatalf("master: %+v\n%s", m.Build, m.Error)
	}
	t.Logf("compile error: %s", m.Error)
	if log, err := os.ReadFile(m.Build.Log); err != nil || !strings.Contains(string(log), "undefinedThing") {
		t.Fatalf("the build log %s lacks the compiler's error (%v)", m.Build.Log, err)
	}
	if r := w.branch(rep, "release-1.0"); r.Build.Status != report.BuildBuilt {
		t.Fatalf("release-1.0 next to the broken branch: %+v %s", r.Build, r.Error)
	}
	msgs := w.notifications()
	if len(msgs) != 1 || msgs[0].Event != "build.error" || len(msgs[0].Attachments) != 1 {
		t.Fatalf("notifications: %+v", msgs)
	}
	// The failed commit is not rebuilt in a loop; BuildKit is not even contacted.
	w.env["BUILDKIT_HOST"] = "tcp://127.0.0.1:1"
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Build.Status != report.BuildUpToDate {
		t.Fatalf("rerun of a failed commit: exit %d\n%s", code, out)
	}

	// BuildKit unreachable: a clear error, exit 1, nothing recorded as built.
	w.forkCommit("release-1.0", "carry: more", map[string]string{"cmd/alpha/more.go": "package main\n"})
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=release-1.0")
	r := w.branch(rep, "release-1.0")
	if code != report.ExitFailed || !strings.Contains(r.Error, "unreachable") || !strings.Contains(r.Error, "BUILDKIT_HOST") {
		t.Fatalf("unreachable BuildKit: exit %d %s\n%s", code, r.Error, out)
	}
	t.Logf("BuildKit unreachable: %s", r.Error)
	w.env["BUILDKIT_HOST"] = addr
	// An infrastructure fault is not the commit's: the next run retries it.
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=release-1.0")
	if code != 0 || w.branch(rep, "release-1.0").Build.Status != report.BuildBuilt {
		t.Fatalf("retry after BuildKit came back: exit %d\n%s", code, out)
	}

	// A registry that refuses the push.
	refusing := ocitest.StartRefusingRegistry(t)
	w.yaml = strings.Replace(w.yaml, "registry: "+host+"/team/hyperkube", "registry: "+refusing+"/team/hyperkube", 1)
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=release-1.0", "HYPERFORK_FORCE=1")
	r = w.branch(rep, "release-1.0")
	if code != report.ExitFailed || r.Build.Status != report.BuildError || !strings.Contains(strings.ToLower(r.Error), "denied") {
		t.Fatalf("refused push: exit %d %s\n%s", code, r.Error, out)
	}
	t.Logf("refused push: %s", r.Error)

	// A base image that does not exist.
	w.yaml = strings.Replace(w.yaml, "registry: "+refusing+"/team/hyperkube", "registry: "+host+"/team/hyperkube", 1)
	img := "name: hyperkube\nbase: " + host + "/no/such-base:1.0\nbinaries: [alpha]\n"
	os.WriteFile(filepath.Join(w.dir, "images", "test.yaml"), []byte(img), 0o644)
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=release-1.0", "HYPERFORK_FORCE=1")
	r = w.branch(rep, "release-1.0")
	if code != report.ExitFailed || !strings.Contains(r.Error, "no/such-base") {
		t.Fatalf("missing base: exit %d %s\n%s", code, r.Error, out)
	}
	t.Logf("missing base: %s", r.Error)
}

func TestBuildBadPlatformIsAConfigError(t *testing.T) {
	w := newWorldWith(t, goProject)
	os.MkdirAll(filepath.Join(w.dir, "images"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "images", "test.yaml"), []byte("name: x\nbase: scratch\nbinaries: [alpha]\n"), 0o644)
	w.yaml = "build:\n  platforms: [linux/amd64, linux/sparc99]\n  targets: [./cmd/alpha]\n  images: [images/test.yaml]\n"
	code, rep, out := w.run("build")
	if code != report.ExitConfig || !strings.Contains(rep.Error, "sparc99") || !strings.Contains(rep.Error, "branches.yaml:") {
		t.Fatalf("exit %d %s\n%s", code, rep.Error, out)
	}
}

// TestReleaseOnEmbeddedDefaults runs release the way README's first command
// does: no BUILDKIT_HOST (hyperfork starts its own buildkitd in the state
// folder) and no registry (the candidate goes to the local OCI layout).
func TestReleaseOnEmbeddedDefaults(t *testing.T) {
	needBuildKit(t) // the same prerequisites; its daemon is not used here
	w, _ := buildWorld(t, "")
	delete(w.env, "BUILDKIT_HOST")
	i, j := strings.Index(w.yaml, "publish:"), strings.Index(w.yaml, "test:\n")
	w.yaml = w.yaml[:i] + w.yaml[j:] // no publish.registry: the local OCI layout
	state := filepath.Join(w.dir, "state")
	t.Cleanup(func() {
		if err := build.StopDaemon(state); err != nil {
			t.Errorf("stop the embedded buildkitd: %v", err)
		}
	})
	w.upstreamCommit("master", "upstream: beta says more", map[string]string{"cmd/beta/more.go": "package main\n\nconst more = 1\n"})
	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	m := w.branch(rep, "master")
	if m.Sync.Status != report.SyncMerged || m.Build.Status != report.BuildBuilt || m.Build.Commit != w.forkHead("master") {
		t.Fatalf("sync %+v build %+v", m.Sync, m.Build)
	}
	if !strings.HasPrefix(m.Build.Image, registry.LayoutScheme+filepath.Join(state, "oci")) {
		t.Fatalf("candidate %s is not in the state folder's OCI layout", m.Build.Image)
	}
	if _, err := os.Stat(filepath.Join(state, "buildkitd")); err != nil {
		t.Fatalf("the embedded buildkitd has no state in the state folder: %v", err)
	}
	repo, err := registry.Open(registry.Options{LayoutDir: filepath.Join(state, "oci")})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := repo.List(context.Background(), "hyperkube")
	if err != nil || len(entries) != 1 || len(entries[0].Tags) != 3 {
		t.Fatalf("layout holds %+v (%v), want one image with its candidate, version and branch tags", entries, err)
	}
	if p := m.Publish; p == nil || p.Status != report.PublishPublished || len(p.Tags) != 2 {
		t.Fatalf("publish into the local layout: %+v", p)
	}
	// The next run finds nothing new and reuses nothing but the state.
	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Build.Status != report.BuildUpToDate || w.branch(rep, "master").Sync.Status != report.SyncUpToDate {
		t.Fatalf("second release: exit %d\n%s", code, out)
	}
}
