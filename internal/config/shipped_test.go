package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// TestShippedConfigLoads keeps the repository's own branches.yaml and
// images/*.yaml valid: they are what a new user runs first.
func TestShippedConfigLoads(t *testing.T) {
	p, err := Load("../../branches.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Upstream.URL, "kubernetes/kubernetes") || p.Fork.URL != "" {
		t.Fatalf("upstream %q, fork %q: want Kubernetes and the embedded fork", p.Upstream.URL, p.Fork.URL)
	}
	if p.Branches[0].Name != "master" || len(p.Branches) < 3 {
		t.Fatalf("branches %+v", p.Branches)
	}
	for _, pkg := range []string{"k8s.io/component-base/version.gitVersion", "k8s.io/client-go/pkg/version.gitVersion"} {
		if !slices.ContainsFunc(p.Build.LDFlags, func(f string) bool { return strings.Contains(f, pkg) }) {
			t.Fatalf("ldflags do not stamp %s", pkg)
		}
	}
	equal(t, "test binaries", p.Build.TestBinaries(), []string{"e2e.test", "ginkgo"})
	if p.Test.Platform != "linux/amd64" {
		t.Errorf("test.platform = %q", p.Test.Platform)
	}

	// The images Kubernetes ships, and hyperkube.
	byName := map[string]Image{}
	for _, img := range p.Images {
		byName[img.Name] = img
	}
	want := map[string]struct {
		base     string // repository of the base, without the tag
		binaries []string
	}{
		"hyperkube": {"scratch", []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
			"kubelet", "kubectl", "kubeadm"}},
		"kube-apiserver":          {"registry.k8s.io/build-image/go-runner", []string{"kube-apiserver"}},
		"kube-controller-manager": {"registry.k8s.io/build-image/go-runner", []string{"kube-controller-manager"}},
		"kube-scheduler":          {"registry.k8s.io/build-image/go-runner", []string{"kube-scheduler"}},
		"kube-proxy":              {"registry.k8s.io/build-image/distroless-iptables", []string{"kube-proxy"}},
		"conformance":             {"registry.k8s.io/build-image/go-runner", []string{"e2e.test", "ginkgo", "kubectl"}},
	}
	if len(p.Images) != len(want) {
		t.Errorf("%d images, want %d", len(p.Images), len(want))
	}
	for name, w := range want {
		img, ok := byName[name]
		if !ok {
			t.Errorf("image %s is not in build.images", name)
			continue
		}
		if repo, _, _ := strings.Cut(img.Base, ":"); repo != w.base {
			t.Errorf("image %s: base %s, want %s:<tag>", name, img.Base, w.base)
		}
		equal(t, name+" binaries", img.Binaries, w.binaries)
	}
	equal(t, "conformance platforms", p.ImagePlatforms(byName["conformance"]), []string{"linux/amd64"})
	equal(t, "kube-proxy platforms", p.ImagePlatforms(byName["kube-proxy"]), p.Build.Platforms)
	if !byName["hyperkube"].Hyperkube {
		t.Error("hyperkube image has no dispatcher")
	}
}

// TestShippedImagesListed keeps every file of images/ in branches.yaml and
// every base a full, tagged reference: a user who mirrors bases edits these
// lines and nothing else, so a short name (resolved against Docker Hub) or
// a moving "latest" must not hide among them.
func TestShippedImagesListed(t *testing.T) {
	p, err := Load("../../branches.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../images/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		if !slices.Contains(p.Build.Images, abs) {
			t.Errorf("%s is not listed in branches.yaml's build.images", f)
		}
	}
	for _, img := range p.Images {
		if img.Base == "scratch" {
			continue
		}
		named, err := reference.ParseNamed(img.Base) // refuses short names
		if err != nil {
			t.Errorf("%s: base %q is not a full reference: %v", img.File, img.Base, err)
			continue
		}
		tagged, ok := named.(reference.Tagged)
		if !ok || tagged.Tag() == "latest" {
			t.Errorf("%s: base %q has no fixed tag", img.File, img.Base)
		}
		if data, err := os.ReadFile(img.File); err != nil || !strings.Contains(string(data), "mirror") {
			t.Errorf("%s does not say how to use a mirror for its base", img.File)
		}
	}
}
