package build

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// TestHyperkubeDispatcher compiles the embedded dispatcher for the host and
// checks every way of calling it, next to a stand-in binary.
func TestHyperkubeDispatcher(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		skipOrFail(t, "go is not on PATH")
	}
	ctx := context.Background()
	src, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(hyperkubeGoMod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), hyperkubeMain, 0o644); err != nil {
		t.Fatal(err)
	}
	hk := filepath.Join(bin, "hyperkube")
	if _, err := hfexec.Run(ctx, hfexec.Cmd{Name: "go", Args: []string{"build", "-o", hk, "."}, Dir: src,
		Env: []string{"GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0"}}); err != nil {
		t.Fatalf("the embedded dispatcher does not compile: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "greet"), []byte("#!/bin/sh\necho \"greet:$0:$*\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hyperkube", filepath.Join(bin, "greet-link")); err != nil {
		t.Fatal(err)
	}

	run := func(argv0 string, args ...string) (string, int) {
		cmd := exec.Command(hk, args...)
		cmd.Args[0] = argv0
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	out, code := run(hk, "greet", "a", "b")
	if code != 3 || !strings.Contains(out, "greet:") || !strings.Contains(out, ":a b") {
		t.Errorf("hyperkube greet a b: exit %d, %q; want the sibling's output and exit code 3", code, out)
	}
	out, code = run(filepath.Join(bin, "greet"), "x") // as through a symlink named greet
	if code != 3 || !strings.Contains(out, ":x") {
		t.Errorf("argv[0]=greet: exit %d, %q", code, out)
	}
	for _, help := range [][]string{nil, {"--help"}} {
		out, code = run(hk, help...)
		if code != 0 || !strings.Contains(out, "  greet\n") || strings.Contains(out, "  hyperkube\n") || strings.Contains(out, "greet-link") {
			t.Errorf("hyperkube %v: exit %d, %q; want a list with greet only", help, code, out)
		}
	}
	out, code = run(hk, "nosuch")
	if code != 127 || !strings.Contains(out, `no binary "nosuch"`) {
		t.Errorf("hyperkube nosuch: exit %d, %q", code, out)
	}
	// A symlink to the dispatcher must not make it exec itself forever.
	out, code = run(filepath.Join(bin, "greet-link"))
	if code != 127 {
		t.Errorf("greet-link: exit %d, %q; want 127", code, out)
	}
}

func TestDaemonConfig(t *testing.T) {
	got := string(daemonConfig("/usr/sbin/runc", "overlayfs", "/s/buildkitd/otel-grpc.sock", []string{"reg.local:5000", "127.0.0.1:5000", "reg.local:5000", ""}))
	for _, want := range []string{
		"[worker.oci]\n  enabled = true\n  binary = \"/usr/sbin/runc\"\n  snapshotter = \"overlayfs\"\n  networkMode = \"host\"",
		"[worker.containerd]\n  enabled = false",
		"[otel]\n  socketPath = \"/s/buildkitd/otel-grpc.sock\"",
		"[registry.\"127.0.0.1:5000\"]\n  http = true\n  insecure = true",
		"[registry.\"reg.local:5000\"]\n  http = true\n  insecure = true",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "reg.local") != 1 || strings.Contains(got, `registry.""`) {
		t.Errorf("duplicates or empty hosts kept:\n%s", got)
	}
}

func TestSocketPath(t *testing.T) {
	short := "/tmp/state/buildkitd"
	if p, _ := socketPath(short); p != short+"/buildkitd.sock" {
		t.Errorf("short dir: %s", p)
	}
	long := "/tmp/" + strings.Repeat("x", 120) + "/buildkitd"
	p, err := socketPath(long)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Dir(p)) })
	if len(p) > maxSocketPath || !strings.Contains(p, "hyperfork-"+digest.FromString(long).Encoded()[:12]) {
		t.Errorf("long dir: socket %s (%d bytes)", p, len(p))
	}
	if p2, _ := socketPath(long); p2 != p {
		t.Errorf("fallback not stable: %s then %s", p, p2)
	}
}

func TestConnectUnreachable(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{
		"unix://" + filepath.Join(t.TempDir(), "nope.sock"),
		"tcp://127.0.0.1:1",
		"",
		"not an address",
	} {
		start := time.Now()
		c, err := Connect(ctx, addr)
		if err == nil {
			c.Close()
			t.Fatalf("Connect(%q) succeeded", addr)
		}
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("Connect(%q): %v is not ErrUnreachable", addr, err)
		}
		for _, want := range []string{"is unreachable", "start buildkitd", "BUILDKIT_HOST", "build.buildkit"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Connect(%q): %q lacks %q", addr, err, want)
			}
		}
		if addr != "" && !strings.Contains(err.Error(), "BuildKit at "+addr) {
			t.Errorf("Connect(%q): %q does not name the address", addr, err)
		}
		if d := time.Since(start); d > connectTimeout+2*time.Second {
			t.Errorf("Connect(%q) took %s", addr, d)
		}
	}
}

func TestStatusTapQuotesTheCompiler(t *testing.T) {
	tap := newStatusTap()
	in, out := make(chan *client.SolveStatus), make(chan *client.SolveStatus, 10)
	go tap.run(in, []chan *client.SolveStatus{out})
	failed, cancelled := digest.FromString("a"), digest.FromString("b")
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{{Digest: failed, Name: "[linux/amd64] go build ./cmd/x"}, {Digest: cancelled, Name: "[linux/arm64] go build ./cmd/x"}}}
	in <- &client.SolveStatus{Logs: []*client.VertexLog{{Vertex: failed, Stream: 2, Data: []byte("# example.com/x\n./main.go:3:1: syntax error: non-declaration statement outside function body\n")}}}
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: failed, Name: "[linux/amd64] go build ./cmd/x", Error: "process did not complete successfully: exit code: 1"},
		{Digest: cancelled, Name: "[linux/arm64] go build ./cmd/x", Error: "context canceled"},
	}}
	close(in)
	for range out {
	}
	err := tap.explain(errors.New("solve failed"))
	var ce *CompileError
	if !errors.As(err, &ce) || ce.Step != "[linux/amd64] go build ./cmd/x" {
		t.Fatalf("explain: %v, want a CompileError for the amd64 step", err)
	}
	if !strings.Contains(err.Error(), "./main.go:3:1: syntax error") || strings.Contains(err.Error(), "arm64") {
		t.Errorf("message %q should quote the compiler and skip the cancelled step", err)
	}
}

func TestLDFlags(t *testing.T) {
	s := Spec{LDFlags: []string{"-X 'k8s.io/component-base/version.gitVersion={{.Version}}'", "", "-X x.state={{.TreeState}}"},
		Stamp: Stamp{Version: "v1.2.3", TreeState: "dirty", BuildDate: time.Date(2026, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600))}}
	got, err := s.ldflags()
	if err != nil {
		t.Fatal(err)
	}
	if want := "-X 'k8s.io/component-base/version.gitVersion=v1.2.3' -X x.state=dirty -s -w"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.LDFlags = []string{"{{.BuildDate}}"}
	if got, _ := s.ldflags(); !strings.HasPrefix(got, "2026-05-06T06:08:09Z") {
		t.Errorf("BuildDate rendered %q, want UTC in Kubernetes' format", got)
	}
}
