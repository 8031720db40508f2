package pipeline_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// k8sComponents are the commands of the Kubernetes server tarball.
var k8sComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "kubectl", "kubeadm"}

// TestKubernetesArtifactsFromOneBuild builds a project shaped like
// Kubernetes (its seven commands and an e2e test package) with the images
// shipped in images/, their bases made locally: one build gives every image
// as a candidate with its platforms, the conformance image for the test
// platform only, and a server tarball per linux platform in the layout kind
// reads; a forced rebuild of the commit gives the same digests and bytes.
func TestKubernetesArtifactsFromOneBuild(t *testing.T) {
	addr := needBuildKit(t)
	files := map[string]string{
		"go.mod":               "module example.com/kube\n\ngo 1.22\n",
		"test/e2e/e2e_test.go": "package e2e\n\nimport \"testing\"\n\nfunc TestE2E(t *testing.T) {}\n",
	}
	for _, c := range k8sComponents {
		files["cmd/"+c+"/main.go"] = "package main\n\nimport \"fmt\"\n\nvar version string\n\nfunc main() { fmt.Println(\"" + c + "\", version) }\n"
	}
	w := newWorldWith(t, files)
	host := ocitest.StartRegistry(t)
	ocitest.PushGoBuilderImage(t, host)
	os.MkdirAll(filepath.Join(w.dir, "images"), 0o755)
	baseRE := regexp.MustCompile(`(?m)^base: (\S+)$`)
	var images []string
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "hyperkube", "conformance"} {
		b, err := os.ReadFile(filepath.Join("../../images", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		def := baseRE.ReplaceAllStringFunc(string(b), func(line string) string {
			ref := strings.TrimPrefix(line, "base: ")
			if ref == "scratch" {
				return line
			}
			stand := ocitest.PushBaseImage(t, host, ref, "linux/amd64", "linux/arm64")
			return "base: " + stand
		})
		// This project vendors no ginkgo: its conformance image holds the
		// e2e binary and kubectl.
		def = strings.Replace(def, "binaries: [e2e.test, ginkgo, kubectl]", "binaries: [e2e.test, kubectl]", 1)
		os.WriteFile(filepath.Join(w.dir, "images", name+".yaml"), []byte(def), 0o644)
		images = append(images, "images/"+name+".yaml")
	}
	w.yaml = fmt.Sprintf(`build:
  builderImage: %s/golang:local
  platforms: [linux/amd64, linux/arm64]
  targets: [%s]
  ldflags: ["-X main.version={{.Version}}"]
  images: [%s]
  testTargets: [./test/e2e]
  testCommands: []
publish:
  registry: %s/team/k8s
test:
  runner: exec
  command: [./e2e.sh]
`, host, "./cmd/"+strings.Join(k8sComponents, ", ./cmd/"), strings.Join(images, ", "), host)
	os.WriteFile(filepath.Join(w.dir, "e2e.sh"), []byte("#!/bin/sh\necho '<testsuite><testcase name=\"[It] e2e\" status=\"passed\"></testcase></testsuite>' > \"$HYPERFORK_ARTIFACTS/junit.xml\"\n"), 0o755)
	w.env["BUILDKIT_HOST"] = addr

	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	b := w.branch(rep, "master").Build
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "hyperkube", "conformance"} {
		if !strings.Contains(b.Images[name], "@sha256:") {
			t.Errorf("image %s is not a candidate: %q", name, b.Images[name])
		}
	}
	if b.Image != b.Images["hyperkube"] {
		t.Errorf("build.image %s is not the hyperkube image %s", b.Image, b.Images["hyperkube"])
	}
	tag := strings.ReplaceAll(b.Version, "+", "_")
	sums := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		path := b.Artifacts["server-linux-"+arch]
		if path == "" {
			t.Fatalf("no server tarball for %s: %v", arch, b.Artifacts)
		}
		entries, repoTags, sum := readServerTarball(t, path)
		sums[arch] = sum
		for _, want := range []string{"kubernetes/version", "kubernetes/server/bin/kubeadm", "kubernetes/server/bin/kubelet", "kubernetes/server/bin/kubectl",
			"kubernetes/server/bin/kube-apiserver.tar", "kubernetes/server/bin/kube-controller-manager.tar", "kubernetes/server/bin/kube-scheduler.tar", "kubernetes/server/bin/kube-proxy.tar"} {
			if _, ok := entries[want]; !ok {
				t.Errorf("%s: no %s in the tarball", arch, want)
			}
		}
		if v := strings.TrimSpace(entries["kubernetes/version"]); v != b.Version {
			t.Errorf("%s: kubernetes/version %q, want %q", arch, v, b.Version)
		}
		for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
			want := "registry.k8s.io/" + c + "-" + arch + ":" + tag
			if repoTags[c] != want {
				t.Errorf("%s: %s.tar is tagged %q, want %q", arch, c, repoTags[c], want)
			}
		}
	}

	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=master", "HYPERFORK_FORCE=1")
	if code != 0 {
		t.Fatalf("forced rebuild: exit %d\n%s", code, out)
	}
	again := w.branch(rep, "master").Build
	for name, ref := range b.Images {
		if again.Images[name] != ref {
			t.Errorf("rebuild of the same commit changed %s: %s → %s", name, ref, again.Images[name])
		}
	}
	for arch, sum := range sums {
		if _, _, s := readServerTarball(t, again.Artifacts["server-linux-"+arch]); s != sum {
			t.Errorf("rebuild of the same commit changed the %s server tarball", arch)
		}
	}
}

// readServerTarball returns the tarball's small files by name (the big
// ones as ""), each image tar's RepoTags[0] by component, and its SHA-256.
func readServerTarball(t *testing.T, path string) (map[string]string, map[string]string, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	f, _ := os.Open(path)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	entries, tags := map[string]string{}, map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = ""
		switch {
		case h.Name == "kubernetes/version":
			b, _ := io.ReadAll(tr)
			entries[h.Name] = string(b)
		case strings.HasSuffix(h.Name, ".tar"):
			c := strings.TrimSuffix(filepath.Base(h.Name), ".tar")
			inner := tar.NewReader(tr)
			for {
				ih, err := inner.Next()
				if err != nil {
					break
				}
				if ih.Name == "manifest.json" {
					var m []struct{ RepoTags []string }
					b, _ := io.ReadAll(inner)
					if json.Unmarshal(b, &m) == nil && len(m) == 1 && len(m[0].RepoTags) > 0 {
						tags[c] = m[0].RepoTags[0]
					}
				}
			}
		}
	}
	return entries, tags, hex.EncodeToString(sum[:])
}
