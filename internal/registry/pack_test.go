package registry_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

var (
	platforms = []string{"linux/amd64", "linux/arm64"}
	created   = time.Date(2025, 9, 1, 12, 30, 0, 0, time.UTC)
)

// binDir lays out files as BuildKit's local exporter does for a
// multi-platform build: <dir>/<os>_<arch>/<binary>.
func binDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range platforms {
		sub := filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(sub, n), []byte("\x7fELF "+p+" "+n), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func spec(dir string) registry.PackSpec {
	return registry.PackSpec{
		Image: config.Image{
			Name:       "hyperkube",
			Base:       "scratch",
			Binaries:   []string{"kubelet", "kubectl"},
			Entrypoint: []string{"/usr/local/bin/kubelet"},
			Labels:     map[string]string{"team": "platform"},
			File:       "images/hyperkube.yaml",
		},
		Platforms: platforms,
		BinDir:    dir,
		Created:   created,
		Annotations: map[string]string{
			registry.AnnotationRevision: "0123456789abcdef0123456789abcdef01234567",
			registry.AnnotationSource:   "https://example.com/fork.git",
			registry.AnnotationVersion:  "v1.34.1+fork.1",
			registry.AnnotationBranch:   "release-1.34",
		},
		Labels: map[string]string{"extra": "yes"},
	}
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// layerFiles returns the tar headers and contents of a layer.
func layerFiles(t *testing.T, l v1.Layer) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		hs[h.Name], data[h.Name] = h, string(b)
	}
}

func TestPackScratch(t *testing.T) {
	s := spec(binDir(t, "kubelet", "kubectl"))
	idx, err := registry.Pack(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index: media type %s, %d manifests; want OCI index with 2", im.MediaType, len(im.Manifests))
	}
	for k, v := range s.Annotations {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}
	if got := im.Annotations[registry.AnnotationCreated]; got != "2025-09-01T12:30:00Z" {
		t.Errorf("index created annotation = %q, want the Created time", got)
	}
	for i, desc := range im.Manifests {
		want, _ := v1.ParsePlatform(platforms[i])
		if desc.Platform == nil || !desc.Platform.Equals(*want) {
			t.Errorf("manifest %d platform = %v, want %v", i, desc.Platform, want)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := img.Manifest()
		if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("manifest %d media types %s / %s, want OCI", i, m.MediaType, m.Config.MediaType)
		}
		if m.Annotations[registry.AnnotationBranch] != "release-1.34" || m.Annotations[registry.AnnotationCreated] == "" {
			t.Errorf("manifest %d annotations = %v, want the index's", i, m.Annotations)
		}
		cf, _ := img.ConfigFile()
		if cf.OS != want.OS || cf.Architecture != want.Architecture || !cf.Created.Time.Equal(created) {
			t.Errorf("config %d: %s/%s created %v", i, cf.OS, cf.Architecture, cf.Created)
		}
		if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/kubelet"}) ||
			cf.Config.Labels["team"] != "platform" || cf.Config.Labels["extra"] != "yes" ||
			!slices.ContainsFunc(cf.Config.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") && strings.Contains(e, "/usr/local/bin") }) {
			t.Errorf("config %d: entrypoint %v labels %v env %v", i, cf.Config.Entrypoint, cf.Config.Labels, cf.Config.Env)
		}
		if len(cf.History) != 2 || !cf.History[0].Created.Time.Equal(created) || !strings.Contains(cf.History[1].CreatedBy, "COPY kubelet ") {
			t.Errorf("config %d history = %+v, want one entry per binary at Created", i, cf.History)
		}
		layers, _ := img.Layers()
		if len(layers) != 2 {
			t.Fatalf("manifest %d has %d layers, want one per binary", i, len(layers))
		}
		for j, n := range []string{"kubectl", "kubelet"} { // in name order
			hs, data := layerFiles(t, layers[j])
			h := hs["usr/local/bin/"+n]
			if h == nil || len(hs) != 4 {
				t.Fatalf("layer %d of %d lacks usr/local/bin/%s or holds more: %v", j, i, n, hs)
			}
			if h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(layerTime) {
				t.Errorf("%s: mode %o uid %d gid %d mtime %v", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime)
			}
			if want := "\x7fELF " + platforms[i] + " " + n; data[h.Name] != want {
				t.Errorf("%s holds %q, want %q", h.Name, data[h.Name], want)
			}
		}
	}
}

// layerTime is the date of every file in the binaries' layers.
var layerTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// layerDigests returns each platform's layer digests of an index.
func layerDigests(t *testing.T, idx registry.Index) [][]v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]v1.Hash
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		var ds []v1.Hash
		for _, l := range m.Layers {
			ds = append(ds, l.Digest)
		}
		out = append(out, ds)
	}
	return out
}

// TestPackLayerPerBinary checks that a binary that did not change keeps its
// layer, whatever else changed: another commit time, another binary, another
// image holding it; and that a changed binary changes its layer only.
func TestPackLayerPerBinary(t *testing.T) {
	dir := binDir(t, "kubelet", "kubectl")
	first, err := registry.Pack(context.Background(), spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	before := layerDigests(t, first)

	// The next commit: another time, kubelet of arm64 relinked.
	s := spec(dir)
	s.Created = created.Add(48 * time.Hour)
	p := filepath.Join(dir, "linux_arm64", "kubelet")
	if err := os.WriteFile(p+".new", []byte("\x7fELF relinked kubelet"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	next, err := registry.Pack(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	after := layerDigests(t, next)
	if !slices.Equal(before[0], after[0]) {
		t.Errorf("amd64 layers changed although no binary did: %v then %v", before[0], after[0])
	}
	if before[1][0] != after[1][0] || before[1][1] == after[1][1] {
		t.Errorf("arm64 layers %v then %v: want kubectl's kept and kubelet's changed", before[1], after[1])
	}

	// Another image holding kubectl reuses its layer: the same digest, and
	// no new compressed copy in the layer cache.
	cache := filepath.Join(dir, "linux_amd64", ".layers")
	files, _ := os.ReadDir(cache)
	other := spec(dir)
	other.Image.Name, other.Image.Binaries = "kubectl", []string{"kubectl"}
	idx, err := registry.Pack(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if got := layerDigests(t, idx); got[0][0] != before[0][0] {
		t.Errorf("kubectl's layer in another image is %s, want %s", got[0][0], before[0][0])
	}
	if again, _ := os.ReadDir(cache); len(again) != len(files) {
		t.Errorf("layer cache grew from %d to %d files for a binary it holds", len(files), len(again))
	}
	// The replaced kubelet's old layer is gone from the cache: one
	// compressed layer per binary is kept.
	gz, _ := filepath.Glob(filepath.Join(dir, "linux_arm64", ".layers", "*.tar.gz"))
	if len(gz) != 2 {
		t.Errorf("arm64 layer cache holds %d compressed layers, want 2: %v", len(gz), gz)
	}
}

// TestPackPushesKeptLayers pushes an image whose layers come from the layer
// cache and reads the binaries back from the registry.
func TestPackPushesKeptLayers(t *testing.T) {
	host := ocitest.StartRegistry(t)
	dir := binDir(t, "kubelet", "kubectl")
	if _, err := registry.Pack(context.Background(), spec(dir)); err != nil {
		t.Fatal(err)
	}
	idx, err := registry.Pack(context.Background(), spec(dir)) // from the cache
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/kept/hyperkube:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range platforms {
		files, err := registry.Files(got, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"kubelet", "kubectl"} {
			if want := "\x7fELF " + p + " " + n; string(files["usr/local/bin/"+n]) != want {
				t.Errorf("%s %s from the registry: %q, want %q", p, n, files["usr/local/bin/"+n], want)
			}
		}
	}
}

func TestPackIsReproducible(t *testing.T) {
	dir := binDir(t, "kubelet", "kubectl")
	first, err := registry.Pack(context.Background(), spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	// File times and a new copy of the folder must not matter.
	later := time.Now().Add(time.Hour)
	_ = os.Chtimes(filepath.Join(dir, "linux_amd64", "kubelet"), later, later)
	second, err := registry.Pack(context.Background(), spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustDigest(t, first), mustDigest(t, second); a != b {
		t.Fatalf("same inputs gave %s then %s", a, b)
	}
	if err := os.WriteFile(filepath.Join(dir, "linux_arm64", "kubectl"), []byte("changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	third, err := registry.Pack(context.Background(), spec(dir))
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, first) == mustDigest(t, third) {
		t.Fatal("a changed binary gave the same digest")
	}
}

func TestPackHyperkubeAddsDispatcher(t *testing.T) {
	s := spec(binDir(t, "kubelet", "kubectl", "hyperkube"))
	s.Image.Hyperkube = true
	idx, err := registry.Pack(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	layers, _ := img.Layers()
	if len(layers) != 3 {
		t.Fatalf("%d layers, want hyperkube, kubectl, kubelet", len(layers))
	}
	if hs, _ := layerFiles(t, layers[0]); hs["usr/local/bin/hyperkube"] == nil {
		t.Fatal("hyperkube: true did not add /usr/local/bin/hyperkube")
	}
}

func TestPackMissingBinary(t *testing.T) {
	s := spec(binDir(t, "kubelet"))
	_, err := registry.Pack(context.Background(), s)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "kubectl") || !strings.Contains(err.Error(), "linux/amd64") {
		t.Fatalf("err = %v, want one naming kubectl and the platform", err)
	}
}

// pushBase pushes a two-platform base image with one random layer each and
// PATH set, as a distroless-like base would be.
func pushBase(t *testing.T, host string) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, ps := range platforms {
		p, _ := v1.ParsePlatform(ps)
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = p.OS, p.Architecture
		cf.Config.Env = []string{"PATH=/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/ca.pem"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	ref := host + "/base/static:1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestPackOnBaseFromRegistry(t *testing.T) {
	host := ocitest.StartRegistry(t)
	s := spec(binDir(t, "kubelet", "kubectl"))
	s.Image.Base = pushBase(t, host)
	idx, err := registry.Pack(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for i, desc := range im.Manifests {
		img, _ := idx.Image(desc.Digest)
		layers, _ := img.Layers()
		cf, _ := img.ConfigFile()
		if len(layers) != 3 || len(cf.RootFS.DiffIDs) != 3 {
			t.Fatalf("manifest %d: %d layers, %d diff IDs; want the base's and one per binary", i, len(layers), len(cf.RootFS.DiffIDs))
		}
		if cf.Architecture != desc.Platform.Architecture {
			t.Errorf("manifest %d: base of %s used for %s", i, cf.Architecture, desc.Platform.Architecture)
		}
		if !slices.Contains(cf.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin") || !slices.Contains(cf.Config.Env, "SSL_CERT_FILE=/etc/ssl/ca.pem") {
			t.Errorf("manifest %d env = %v, want the base's with /usr/local/bin on PATH", i, cf.Config.Env)
		}
		m, _ := img.Manifest()
		for _, l := range m.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("manifest %d: layer media type %s, want %s", i, l.MediaType, types.OCILayer)
			}
		}
		if m.Annotations[registry.AnnotationBaseName] == "" || m.Annotations[registry.AnnotationBaseDigest] == "" {
			t.Errorf("manifest %d does not record its base: %v", i, m.Annotations)
		}
	}
}

func TestPackMissingBase(t *testing.T) {
	host := ocitest.StartRegistry(t)
	s := spec(binDir(t, "kubelet", "kubectl"))
	s.Image.Base = host + "/base/missing:1"
	_, err := registry.Pack(context.Background(), s)
	t.Log(err)
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{s.Image.Base, "push", "images/hyperkube.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
