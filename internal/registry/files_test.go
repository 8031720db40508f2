package registry_test

import (
	"archive/tar"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hyperfork/hyperfork/internal/registry"
)

// tarLayer is a layer holding the given regular files, and a symlink.
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[name]))
	}
	tw.WriteHeader(&tar.Header{Name: "usr/local/bin/link", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink})
	tw.Close()
	return static.NewLayer(b.Bytes(), types.OCILayer)
}

// ExtractCommands takes the named commands from /usr/local/bin of the
// platform's image, a later layer's over an earlier one's, and nothing
// else: not other folders, not paths that climb out, not symlinks.
func TestExtractCommands(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image,
		tarLayer(t, map[string]string{"usr/local/bin/alpha": "old alpha", "usr/local/bin/beta": "beta", "etc/gamma": "not a command"}),
		tarLayer(t, map[string]string{"usr/local/bin/alpha": "new alpha", "usr/local/bin/sub/gamma": "nested", "usr/local/bin/../../../delta": "climbs out"}))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	dir := t.TempDir()
	got, err := registry.ExtractCommands(idx, "linux/arm64", dir, []string{"alpha", "beta", "gamma", "delta", "link", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Errorf("found %q, want alpha and beta", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "alpha")); string(b) != "new alpha" {
		t.Errorf("alpha is %q, want the later layer's", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "beta")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("beta: %v, %v", fi, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want the two commands", len(entries))
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "delta")); err == nil {
		t.Error("a path that climbs out was written outside dir")
	}
	// Another platform: nothing, and no error.
	if got, err := registry.ExtractCommands(idx, "linux/amd64", t.TempDir(), []string{"alpha"}); err != nil || len(got) != 0 {
		t.Errorf("for a platform the index lacks: %q, %v", got, err)
	}
}
