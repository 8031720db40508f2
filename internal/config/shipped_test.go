package config

import (
	"slices"
	"strings"
	"testing"
)

// TestShippedConfigLoads keeps the repository's own branches.yaml and
// images/hyperkube.yaml valid: they are what a new user runs first.
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
	if len(p.Images) != 1 || !p.Images[0].Hyperkube || !slices.Contains(p.Images[0].Binaries, "kube-apiserver") {
		t.Fatalf("images %+v", p.Images)
	}
	for _, pkg := range []string{"k8s.io/component-base/version.gitVersion", "k8s.io/client-go/pkg/version.gitVersion"} {
		if !slices.ContainsFunc(p.Build.LDFlags, func(f string) bool { return strings.Contains(f, pkg) }) {
			t.Fatalf("ldflags do not stamp %s", pkg)
		}
	}
}
