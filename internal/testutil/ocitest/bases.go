package ocitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The bases Kubernetes' own images are built on, by their repository on
// registry.k8s.io. registry.k8s.io cannot be reached here, so BaseImage
// makes a small stand-in for each.
const (
	// GoRunnerRepository is the base of kube-apiserver,
	// kube-controller-manager, kube-scheduler and conformance: distroless
	// static with /go-runner as entrypoint.
	GoRunnerRepository = "build-image/go-runner"
	// DistrolessIptablesRepository is the base of kube-proxy: distroless
	// with the iptables and conntrack tools, and no entrypoint.
	DistrolessIptablesRepository = "build-image/distroless-iptables"
)

// StandInLabel is set on every stand-in's config to the reference it
// stands in for, so a test can tell the base an image was built on.
const StandInLabel = "dev.hyperfork.ocitest.stand-in-for"

// DefaultBasePlatforms are the platforms of a stand-in when none are given:
// the default build.platforms.
var DefaultBasePlatforms = []string{"linux/amd64", "linux/arm64"}

// basePath is PATH in both bases, as in distroless.
const basePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BaseImage returns a stand-in for ref, a Kubernetes base image such as
// registry.k8s.io/build-image/go-runner:v2.4.0-go1.25.5-bookworm.0 (any
// registry: only the repository's last element, go-runner or
// distroless-iptables, decides what it holds). It is a Docker manifest list
// with one Docker schema 2 image per platform (DefaultBasePlatforms if none
// are given), as registry.k8s.io serves them, of one small layer:
//
//   - go-runner: /go-runner, entrypoint ["/go-runner"]
//   - distroless-iptables: /usr/sbin/{iptables,ip6tables,iptables-wrapper,conntrack}, no entrypoint
//
// and, in both, /etc/passwd, /etc/group, /etc/nsswitch.conf and /tmp. The
// programs are placeholders naming what they stand in for, not
// executables: images are packed and read back here, never run. Equal
// arguments give the same digest.
func BaseImage(ref string, platforms ...string) (v1.ImageIndex, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("stand-in for %q: %w", ref, err)
	}
	repo := r.Context().RepositoryStr()
	kind := repo[strings.LastIndex(repo, "/")+1:]
	if kind != "go-runner" && kind != "distroless-iptables" {
		return nil, fmt.Errorf("stand-in for %s: no stand-in for %s: only for %s and %s", ref, kind, GoRunnerRepository, DistrolessIptablesRepository)
	}
	if len(platforms) == 0 {
		platforms = DefaultBasePlatforms
	}
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	for _, ps := range platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("stand-in for %s: platform %q is not os/arch[/variant]", ref, ps)
		}
		img, err := baseFor(kind, ref, *p)
		if err != nil {
			return nil, fmt.Errorf("stand-in for %s for %s: %w", ref, ps, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.DockerManifestSchema2, Platform: p},
		})
	}
	return idx, nil
}

// baseFor makes the stand-in's image for one platform.
func baseFor(kind, ref string, p v1.Platform) (v1.Image, error) {
	files := []tarFile{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: "root:x:0:\nnonroot:x:65532:\n"},
		{name: "etc/nsswitch.conf", mode: 0o644, data: "hosts: files dns\n"},
		{name: "etc/passwd", mode: 0o644, data: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{name: "tmp/", mode: 0o1777},
	}
	placeholder := func(file string) tarFile {
		return tarFile{name: file, mode: 0o755, data: fmt.Sprintf("ocitest stand-in for /%s of %s for %s\n", file, ref, p.String())}
	}
	var entrypoint []string
	switch kind {
	case "go-runner":
		files = append(files, placeholder("go-runner"))
		entrypoint = []string{"/go-runner"}
	case "distroless-iptables":
		files = append(files, tarFile{name: "usr/", mode: 0o755}, tarFile{name: "usr/sbin/", mode: 0o755})
		for _, b := range []string{"conntrack", "ip6tables", "iptables", "iptables-wrapper"} {
			files = append(files, placeholder("usr/sbin/"+b))
		}
	}
	raw, err := tarOf(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.DockerLayer), tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, MediaType: types.DockerLayer,
		History: v1.History{Created: v1.Time{Time: goImageTime}, CreatedBy: "ocitest: stand-in for " + ref}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: goImageTime}
	cf.Config.Env = []string{basePath}
	cf.Config.Entrypoint = entrypoint
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{StandInLabel: ref}
	return mutate.ConfigFile(img, cf)
}

type tarFile struct {
	name string
	mode int64
	data string // a directory when name ends in "/"
}

// tarOf writes files, in order, with fixed owner and time.
func tarOf(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := byte(tar.TypeReg)
		if strings.HasSuffix(f.name, "/") {
			typ = tar.TypeDir
		}
		if err := tw.WriteHeader(header(f.name, typ, f.mode, int64(len(f.data)))); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// StandInRef returns where PushBaseImage puts the stand-in for ref: its
// repository path and tag on host
// (registry.k8s.io/build-image/go-runner:v2 on 127.0.0.1:5000 is
// 127.0.0.1:5000/build-image/go-runner:v2). A test points an image
// definition's base at it by the same edit a user makes for a mirror.
func StandInRef(host, ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("stand-in for %q: %w", ref, err)
	}
	tag, ok := r.(name.Tag)
	if !ok {
		return "", fmt.Errorf("stand-in for %s: a stand-in cannot have the real image's digest: name the base by a tag in the test", ref)
	}
	return host + "/" + tag.RepositoryStr() + ":" + tag.TagStr(), nil
}

// PushBaseImage pushes BaseImage(ref, platforms...) to the registry at
// host, at StandInRef(host, ref), and returns that reference.
func PushBaseImage(t testing.TB, host, ref string, platforms ...string) string {
	t.Helper()
	out, err := PushBaseImageTo(host, ref, platforms...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// PushBaseImageTo is PushBaseImage for code that runs outside a test, such
// as a benchmark: it returns the error instead of failing a test.
func PushBaseImageTo(host, ref string, platforms ...string) (string, error) {
	dst, err := StandInRef(host, ref)
	if err != nil {
		return "", err
	}
	idx, err := BaseImage(ref, platforms...)
	if err != nil {
		return "", err
	}
	r, err := name.ParseReference(dst, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("stand-in for %s: %w", ref, err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		return "", fmt.Errorf("push stand-in for %s to %s: %w", ref, dst, err)
	}
	return dst, nil
}
