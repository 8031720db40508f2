package ocitest_test

import (
	"archive/tar"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

const (
	goRunner   = "registry.k8s.io/build-image/go-runner:v2.4.0-go1.25.5-bookworm.0"
	distroless = "registry.k8s.io/build-image/distroless-iptables:v0.8.6"
)

// TestPushBaseImage pushes both stand-ins under the repository path and
// tag of the real bases and reads each platform back as Pack will.
func TestPushBaseImage(t *testing.T) {
	host := ocitest.StartRegistry(t)
	for _, tt := range []struct {
		ref        string
		entrypoint []string
		file       string
	}{
		{goRunner, []string{"/go-runner"}, "go-runner"},
		{distroless, nil, "usr/sbin/iptables"},
	} {
		got := ocitest.PushBaseImage(t, host, tt.ref)
		want, _ := ocitest.StandInRef(host, tt.ref)
		if got != want || !strings.HasPrefix(got, host+"/build-image/") || !strings.HasSuffix(got, tt.ref[strings.LastIndex(tt.ref, ":"):]) {
			t.Fatalf("pushed %s at %s, StandInRef says %s", tt.ref, got, want)
		}
		r, _ := name.ParseReference(got, name.Insecure)
		idx, err := remote.Index(r)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		if im.MediaType != types.DockerManifestList || len(im.Manifests) != len(ocitest.DefaultBasePlatforms) {
			t.Fatalf("%s: %s with %d manifests, want a Docker manifest list of %d", got, im.MediaType, len(im.Manifests), len(ocitest.DefaultBasePlatforms))
		}
		for _, ps := range ocitest.DefaultBasePlatforms {
			p, _ := v1.ParsePlatform(ps)
			img, err := remote.Image(r, remote.WithPlatform(*p))
			if err != nil {
				t.Fatal(err)
			}
			cf, _ := img.ConfigFile()
			if cf.OS+"/"+cf.Architecture != ps || !slices.Equal(cf.Config.Entrypoint, tt.entrypoint) || cf.Config.Labels[ocitest.StandInLabel] != tt.ref {
				t.Errorf("%s for %s: %s/%s, entrypoint %q, labels %v", got, ps, cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.Labels)
			}
			rc := mutate.Extract(img)
			files := tarNames(t, rc)
			rc.Close()
			if !files[tt.file] || !files["etc/passwd"] {
				t.Errorf("%s for %s lacks %s or etc/passwd: %v", got, ps, tt.file, files)
			}
		}
	}
}

// TestBaseImageReproducible: the same reference and platforms give the
// same digest, so tests that compare digests of images built on it can.
func TestBaseImageReproducible(t *testing.T) {
	a, err := ocitest.BaseImage(goRunner, "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ocitest.BaseImage(goRunner, "linux/arm64")
	c, _ := ocitest.BaseImage(goRunner, "linux/amd64")
	if must(a.Digest()) != must(b.Digest()) || must(a.Digest()) == must(c.Digest()) {
		t.Error("digests: want equal for the same platform, different for another")
	}
}

func TestBaseImageRefuses(t *testing.T) {
	if _, err := ocitest.BaseImage("registry.k8s.io/pause:3.10"); err == nil || !strings.Contains(err.Error(), "no stand-in for pause") {
		t.Errorf("pause: %v", err)
	}
	if _, err := ocitest.StandInRef("127.0.0.1:1", goRunner[:strings.LastIndex(goRunner, ":")]+"@sha256:"+strings.Repeat("a", 64)); err == nil ||
		!strings.Contains(err.Error(), "digest") {
		t.Errorf("digest reference: %v", err)
	}
}

// tarNames returns the names of the entries of the tar stream r.
func tarNames(t *testing.T, r io.Reader) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
}
