package conformance

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// call is one command the recorder was asked to run.
type call struct {
	name string
	args []string
	env  []string
	dir  string
	// ctxDone says the command's context had ended when it was called.
	ctxDone bool
}

// line is the call as a command line, the tool by its base name.
func (c call) line() string {
	return strings.Join(append([]string{filepath.Base(c.name)}, c.args...), " ")
}

// recorder is a Commander that records each call and then does what do
// says (nil: succeed, writing nothing).
type recorder struct {
	calls []call
	do    func(ctx context.Context, c call, log io.Writer) error
}

func (r *recorder) Run(ctx context.Context, name string, args []string, env []string, dir string, log io.Writer) error {
	c := call{name: name, args: slices.Clone(args), env: slices.Clone(env), dir: dir, ctxDone: ctx.Err() != nil}
	r.calls = append(r.calls, c)
	if r.do == nil {
		return nil
	}
	return r.do(ctx, c, log)
}

func (r *recorder) lines() []string {
	var out []string
	for _, c := range r.calls {
		out = append(out, c.line())
	}
	return out
}

// flag returns the value after --name in args.
func flag(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// isKubetest2 says the call is a kubetest2 pass.
func isKubetest2(c call) bool { return filepath.Base(c.name) == "kubetest2" }

// writeResults is what a kubetest2 pass leaves in its --artifacts: its own
// junit_runner.xml, e2e's junit_01.xml, and cluster logs that hold an XML
// file which is no result.
func writeResults(t *testing.T, c call) {
	t.Helper()
	art := flag(c.args, "--artifacts")
	for name, body := range map[string]string{
		"junit_runner.xml":                       `<testsuites><testsuite name="kubetest2"/></testsuites>`,
		"junit_01.xml":                           `<testsuite name="Kubernetes e2e suite"/>`,
		"logs/kind-control-plane/containerd.xml": "<config/>",
	} {
		p := filepath.Join(art, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fakePath returns a folder holding an executable stub for each name.
// The stubs never run: the recorder stands in for them.
func fakePath(t *testing.T, names ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "path")
	for _, n := range names {
		writeScript(t, dir, n, "exit 99\n")
	}
	return dir
}

var allTools = []string{"kubetest2", "kubetest2-kind", "kubetest2-tester-ginkgo", "kind", "docker"}

// serverTarball writes a small but real kubernetes-server tarball.
func serverTarball(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubernetes-server-linux-amd64.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{
		"kubernetes/version":                       "v1.34.2-3+0123456789ab\n",
		"kubernetes/server/bin/kube-apiserver":     "#!/bin/sh\n",
		"kubernetes/server/bin/kube-apiserver.tar": "image",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// kubetest2Candidate returns a candidate with test binaries and a server
// tarball.
func kubetest2Candidate(t *testing.T) Candidate {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	for _, b := range []string{"e2e.test", "ginkgo", "kubectl", "kube-apiserver"} {
		writeScript(t, bin, b, "echo "+b+"\n")
	}
	return Candidate{
		Branch: "release-1.34", Commit: "0123456789ABCDEF0123456789abcdef01234567", Version: "v1.34.2-3+0123456789ab",
		Image:  "registry.example/hyperkube@sha256:aaaa",
		BinDir: bin, ServerTarball: serverTarball(t),
	}
}

// newKubetest2 returns a runner over rec with every tool on a fake PATH.
func newKubetest2(t *testing.T, rec *recorder) *Kubetest2 {
	t.Helper()
	return &Kubetest2{Options: DefaultOptions(), Commander: rec, Path: fakePath(t, allTools...)}
}
