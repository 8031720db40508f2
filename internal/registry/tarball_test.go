package registry_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// serverVersion has a "+", which image tags write as "_".
const serverVersion = "v1.37.2-2+0123456789ab"

// hostArch is the architecture the test's binaries run on; otherArch is
// built too, so that the tarball must pick the right platform.
var hostArch, otherArch = runtime.GOARCH, map[bool]string{true: "arm64", false: "amd64"}[runtime.GOARCH == "amd64"]

// helloBinary compiles, for linux on this machine's architecture, a
// program that prints the name it was run by, and returns its path.
func helloBinary(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"go.mod":  "module hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"path/filepath\"\n)\n\nfunc main() { fmt.Println(filepath.Base(os.Args[0])) }\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(src, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goroot, err := ocitest.GoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command(filepath.Join(goroot, "bin", "go"), "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+hostArch, "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// serverBinDir lays out the binaries the shipped images hold as BuildKit's
// local exporter does: the hello program for linux/<hostArch>, and
// stand-in bytes for linux/<otherArch>. The test binaries are in both,
// which is more than a build makes: test.platform is one of them.
func serverBinDir(t *testing.T, hello string) string {
	t.Helper()
	prog, err := os.ReadFile(hello)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, arch := range []string{hostArch, otherArch} {
		sub := filepath.Join(dir, "linux_"+arch)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range append(registry.ServerBinaries(), "hyperkube", "e2e.test", "ginkgo") {
			data := prog
			if arch != hostArch {
				data = []byte("\x7fELF linux/" + arch + " " + b)
			}
			if err := os.WriteFile(filepath.Join(sub, b), data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// shippedPipeline loads the repository's images/*.yaml with their bases
// pointed at host, as a user points them at a mirror, in a pipeline of the
// default targets and test targets for linux/<hostArch> and
// linux/<otherArch>, and pushes stand-ins for those bases to host.
func shippedPipeline(t *testing.T, host string) *config.Pipeline {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	shipped, err := filepath.Glob(filepath.Join("..", "..", "images", "*.yaml"))
	if err != nil || len(shipped) == 0 {
		t.Fatalf("no images/*.yaml: %v", err)
	}
	var files []string
	for _, f := range shipped {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := regexp.MustCompile(`(?m)^base: (\S+)$`).FindSubmatch(data)
		if base == nil {
			t.Fatalf("%s has no base: line", f)
		}
		if string(base[1]) != registry.Scratch {
			mirror := ocitest.PushBaseImage(t, host, string(base[1]), "linux/"+hostArch, "linux/"+otherArch)
			data = bytes.Replace(data, base[1], []byte(mirror), 1)
		}
		rel := "images/" + filepath.Base(f)
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	pipeline := "apiVersion: hyperfork.dev/v1alpha1\nkind: Pipeline\nupstream: {url: https://github.com/kubernetes/kubernetes.git}\n" +
		"branches: [{name: master}]\nbuild:\n  platforms: [linux/" + hostArch + ", linux/" + otherArch + "]\n" +
		"  images: [" + strings.Join(files, ", ") + "]\n"
	path := filepath.Join(dir, "branches.yaml")
	if err := os.WriteFile(path, []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// shippedServerImages returns the kube-* images of shippedPipeline.
func shippedServerImages(t *testing.T, host string) []config.Image {
	t.Helper()
	var out []config.Image
	for _, img := range shippedPipeline(t, host).Images {
		if slices.Contains(registry.ServerImages(), img.Name) {
			out = append(out, img)
		}
	}
	if len(out) != len(registry.ServerImages()) {
		t.Fatalf("images/ has %d of the %d server images", len(out), len(registry.ServerImages()))
	}
	return out
}

// packServer packs each image for both architectures, as the build stage
// does, and returns the images of linux/<hostArch>.
func packServer(t *testing.T, imgs []config.Image, binDir string) map[string]registry.Image {
	t.Helper()
	out := map[string]registry.Image{}
	for _, img := range imgs {
		s := spec(binDir)
		s.Image, s.Platforms, s.Insecure = img, []string{"linux/" + hostArch, "linux/" + otherArch}, true
		idx, err := registry.Pack(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if out[img.Name], err = registry.PlatformImage(idx, "linux/"+hostArch); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func writeServer(t *testing.T, in registry.ServerTarball) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := registry.WriteServerTarball(&buf, in); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestServerTarball makes the server tarball of the shipped kube-* images
// on stand-ins of their bases, and reads it as kind does: the layout and
// tags exactly, every image tar through go-containerregistry's reader,
// and the binaries run. A second build of the same inputs, in other
// folders, gives the same bytes.
func TestServerTarball(t *testing.T) {
	host := ocitest.StartRegistry(t)
	imgs := shippedServerImages(t, host)
	hello := helloBinary(t)
	binDir := serverBinDir(t, hello)
	images := packServer(t, imgs, binDir)
	in := registry.ServerTarball{Version: serverVersion, Arch: hostArch, BinDir: binDir, Images: images, Created: created}
	data := writeServer(t, in)

	// A second build: the same commit, its own output folder and packing.
	again := in
	again.BinDir = serverBinDir(t, hello)
	again.Images = packServer(t, imgs, again.BinDir)
	if !bytes.Equal(data, writeServer(t, again)) {
		t.Error("two builds of the same inputs gave different tarballs")
	}

	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("gzip header holds name %q, time %v: want neither", gz.Name, gz.ModTime)
	}
	tr := tar.NewReader(gz)
	var names []string
	contents := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(created) {
			t.Errorf("%s: owner %d:%d, time %v; want 0:0 and %v", h.Name, h.Uid, h.Gid, h.ModTime, created)
		}
		wantMode := int64(0o644)
		if h.Typeflag == tar.TypeDir || slices.Contains(registry.ServerBinaries(), strings.TrimPrefix(h.Name, "kubernetes/server/bin/")) {
			wantMode = 0o755
		}
		if h.Mode != wantMode {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, wantMode)
		}
		if contents[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	const bin = "kubernetes/server/bin/"
	want := []string{"kubernetes/", "kubernetes/server/", bin,
		bin + "kube-apiserver", bin + "kube-apiserver.docker_tag", bin + "kube-apiserver.tar",
		bin + "kube-controller-manager", bin + "kube-controller-manager.docker_tag", bin + "kube-controller-manager.tar",
		bin + "kube-proxy", bin + "kube-proxy.docker_tag", bin + "kube-proxy.tar",
		bin + "kube-scheduler", bin + "kube-scheduler.docker_tag", bin + "kube-scheduler.tar",
		bin + "kubeadm", bin + "kubectl", bin + "kubelet",
		"kubernetes/version"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if got := string(contents["kubernetes/version"]); got != serverVersion+"\n" {
		t.Errorf("kubernetes/version = %q", got)
	}

	unpacked := t.TempDir()
	for _, c := range registry.ServerImages() {
		if got := string(contents[bin+c+".docker_tag"]); got != "v1.37.2-2_0123456789ab\n" {
			t.Errorf("%s.docker_tag = %q", c, got)
		}
		archive := filepath.Join(unpacked, c+".tar")
		if err := os.WriteFile(archive, contents[bin+c+".tar"], 0o644); err != nil {
			t.Fatal(err)
		}
		checkDockerArchive(t, archive, c, images[c])
	}
	kubectl := filepath.Join(unpacked, "kubectl")
	if err := os.WriteFile(kubectl, contents[bin+"kubectl"], 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, kubectl, "kubectl")
}

// checkDockerArchive reads the docker archive of component as kind and
// docker load do: manifest.json's one image tagged as release.sh tags it,
// then the image itself, whose binary must run.
func checkDockerArchive(t *testing.T, archive, component string, packed registry.Image) {
	t.Helper()
	opener := func() (io.ReadCloser, error) { return os.Open(archive) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		t.Fatalf("%s: %v", archive, err)
	}
	tag := "registry.k8s.io/" + component + "-" + hostArch + ":v1.37.2-2_0123456789ab"
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{tag}) {
		t.Fatalf("%s: manifest.json %+v, want one image tagged %s", archive, m, tag)
	}
	ref, _ := name.NewTag(tag)
	img, err := tarball.ImageFromPath(archive, &ref)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustConfigName(t, img), mustConfigName(t, packed); got != want {
		t.Errorf("%s: config %s, want the packed image's %s", component, got, want)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	base := "build-image/go-runner:"
	if component == "kube-proxy" {
		base = "build-image/distroless-iptables:"
	}
	if !strings.Contains(cf.Config.Labels[ocitest.StandInLabel], base) || cf.OS != "linux" || cf.Architecture != hostArch {
		t.Errorf("%s: %s/%s on %q, want linux/%s on %s", component, cf.OS, cf.Architecture, cf.Config.Labels[ocitest.StandInLabel], hostArch, base)
	}
	if component != "kube-proxy" && !slices.Equal(cf.Config.Entrypoint, []string{"/go-runner"}) {
		t.Errorf("%s: entrypoint %q, want go-runner's, kept as Kubernetes' build keeps it", component, cf.Config.Entrypoint)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s: no usr/local/bin/%s in the image", archive, component)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "usr/local/bin/"+component {
			continue
		}
		exe := filepath.Join(t.TempDir(), component)
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, exe, component)
		return
	}
}

func mustConfigName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// run runs exe and wants it to print want.
func run(t *testing.T, exe, want string) {
	t.Helper()
	out, err := exec.Command(exe).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("%s: %v, printed %q; want %q", exe, err, out, want)
	}
}

// TestServerTarballRefuses checks what cannot make a tarball kind reads:
// each case names the problem and what to do, before anything is written.
func TestServerTarballRefuses(t *testing.T) {
	binDir := binDir(t, registry.ServerBinaries()...)
	image := func(arch string) registry.Image {
		img, _ := random.Image(64, 1)
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, _ = mutate.ConfigFile(img, cf)
		return img
	}
	all := func() map[string]registry.Image {
		m := map[string]registry.Image{}
		for _, c := range registry.ServerImages() {
			m[c] = image("amd64")
		}
		return m
	}
	ok := registry.ServerTarball{Version: serverVersion, Arch: "amd64", BinDir: binDir, Images: all()}
	if err := registry.WriteServerTarball(io.Discard, ok); err != nil {
		t.Fatalf("the good case fails: %v", err)
	}
	tests := []struct {
		name   string
		change func(*registry.ServerTarball)
		kind   error
		want   string
	}{
		{"no version", func(s *registry.ServerTarball) { s.Version = "" }, registry.ErrInvalid, "no version"},
		{"version makes no tag", func(s *registry.ServerTarball) { s.Version = "v1.37 beta" }, registry.ErrInvalid, `version "v1.37 beta" makes no image tag`},
		{"bad arch", func(s *registry.ServerTarball) { s.Arch = "linux/amd64" }, registry.ErrInvalid, "is not a GOARCH"},
		{"no kube-proxy image", func(s *registry.ServerTarball) { delete(s.Images, "kube-proxy") }, registry.ErrInvalid,
			"no kube-proxy image for linux/amd64: kind loads kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy; add images/kube-proxy.yaml to build.images"},
		{"image of another arch", func(s *registry.ServerTarball) { s.Images["kube-scheduler"] = image("arm64") }, registry.ErrInvalid,
			"the kube-scheduler image is linux/arm64, not linux/amd64"},
		{"binary not built", func(s *registry.ServerTarball) { s.Binaries = []string{"kubelet", "kubeletx"} }, registry.ErrNotFound,
			"binary kubeletx is not in "},
		{"no images", func(s *registry.ServerTarball) { s.Images = nil }, registry.ErrInvalid, "no kube-apiserver image"},
		{"no folder for the arch", func(s *registry.ServerTarball) {
			s.Arch = "s390x"
			for c := range s.Images {
				s.Images[c] = image("s390x")
			}
		}, registry.ErrNotFound, "no folder linux_s390x in "},
		{"bad component", func(s *registry.ServerTarball) { s.Images["Kube/Thing"] = image("amd64") }, registry.ErrInvalid, `component "Kube/Thing" is not an image name`},
		{"binary listed twice", func(s *registry.ServerTarball) { s.Binaries = []string{"kubelet", "kubelet"} }, registry.ErrInvalid, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			in.Images = all()
			tt.change(&in)
			var buf bytes.Buffer
			err := registry.WriteServerTarball(&buf, in)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v with ...%s...", err, tt.kind, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "server tarball kubernetes-server-linux-") {
				t.Errorf("err = %v, want it to name the tarball", err)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before refusing", buf.Len())
			}
		})
	}
}

func TestServerNames(t *testing.T) {
	if got := registry.ServerTarballName("arm64"); got != "kubernetes-server-linux-arm64.tar.gz" {
		t.Errorf("ServerTarballName = %s", got)
	}
	if got := registry.ServerImageTag("kube-proxy", "arm64", "v1.37.2-2+abc"); got != "registry.k8s.io/kube-proxy-arm64:v1.37.2-2_abc" {
		t.Errorf("ServerImageTag = %s", got)
	}
}

// TestPlatformImage picks one platform of an index, arm64 matching
// arm64/v8, and names what the index has when it lacks the platform.
func TestPlatformImage(t *testing.T) {
	idx, err := registry.Pack(context.Background(), spec(binDir(t, "kubelet", "kubectl")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64", "linux/arm64/v8"} {
		img, err := registry.PlatformImage(idx, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cf, _ := img.ConfigFile()
		if want := strings.Split(p, "/")[1]; cf.Architecture != want {
			t.Errorf("%s: got %s", p, cf.Architecture)
		}
	}
	_, err = registry.PlatformImage(idx, "linux/s390x")
	if !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "it has linux/amd64, linux/arm64") {
		t.Errorf("s390x: %v", err)
	}
}

// TestPackShippedImages packs every definition of images/ on stand-ins of
// its base, each for the platforms config gives it: the conformance image
// for test.platform alone, the others for build.platforms.
func TestPackShippedImages(t *testing.T) {
	host := ocitest.StartRegistry(t)
	p := shippedPipeline(t, host)
	dir := serverBinDir(t, helloBinary(t))
	if len(p.Images) != 6 {
		t.Errorf("images/ has %d definitions, want 6", len(p.Images))
	}
	for _, img := range p.Images {
		s := spec(dir)
		s.Image, s.Platforms, s.Insecure = img, p.ImagePlatforms(img), true
		idx, err := registry.Pack(context.Background(), s)
		if err != nil {
			t.Fatalf("pack %s: %v", img.Name, err)
		}
		im, _ := idx.IndexManifest()
		var got []string
		for _, d := range im.Manifests {
			got = append(got, d.Platform.String())
		}
		if !slices.Equal(got, s.Platforms) {
			t.Errorf("%s: platforms %q, want %q", img.Name, got, s.Platforms)
		}
		files, err := registry.Files(idx, s.Platforms[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range img.Binaries {
			if _, ok := files["usr/local/bin/"+b]; !ok {
				t.Errorf("%s: no usr/local/bin/%s", img.Name, b)
			}
		}
		if _, ok := files["go-runner"]; ok != strings.Contains(img.Base, "go-runner") {
			t.Errorf("%s on %s: /go-runner present %v", img.Name, img.Base, ok)
		}
	}
	if want := []string{"linux/amd64"}; !slices.Equal(p.ImagePlatforms(p.Images[0]), want) || p.Images[0].Name != "conformance" {
		t.Errorf("%s packs for %q, want conformance for %q", p.Images[0].Name, p.ImagePlatforms(p.Images[0]), want)
	}
}
