package ocitest

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// GoImageTag is the repository and tag PushGoBuilderImage pushes to.
const GoImageTag = "golang:local"

// goImageTime dates every file and the config: the image depends on the Go
// installation only, so pushing it twice gives the same digest.
var goImageTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// GoImageEnv returns the builder image's environment, as in the official
// golang image, plus what makes builds hermetic: no toolchain download, no VCS
// stamp.
func GoImageEnv() []string {
	return []string{
		"PATH=/usr/local/go/bin:/usr/bin:/bin",
		"GOROOT=/usr/local/go",
		"HOME=/root",
		"GOTOOLCHAIN=local",
		"GOFLAGS=-buildvcs=false",
	}
}

// PushGoBuilderImage makes a Go toolchain image from this machine's Go
// installation (golang:1.26 cannot be pulled here), pushes it to the registry
// at host as host+"/"+GoImageTag and returns that reference. The image holds
// GOROOT at /usr/local/go without what builds never read (the test suite, API
// lists, docs, *_test.go and testdata), an empty /tmp and /root, and the
// host's CA bundle so the go command can reach a module proxy. It has no
// shell. Its platform is the host's; go cross-compiles from it with
// CGO_ENABLED=0. The uncompressed layer is cached in os.TempDir() across runs.
func PushGoBuilderImage(t testing.TB, host string) string {
	t.Helper()
	img, err := GoBuilderImage()
	if err != nil {
		t.Fatalf("make Go builder image: %v", err)
	}
	ref, err := name.ParseReference(host+"/"+GoImageTag, name.Insecure)
	if err != nil {
		t.Fatalf("make Go builder image: %v", err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push Go builder image to %s: %v", ref, err)
	}
	return ref.String()
}

// GoBuilderImage returns the image PushGoBuilderImage pushes.
func GoBuilderImage() (v1.Image, error) {
	goroot, err := goRoot()
	if err != nil {
		return nil, err
	}
	version, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("read Go version: %w", err)
	}
	v, _, _ := strings.Cut(string(version), "\n")
	cache := filepath.Join(os.TempDir(), "hyperfork-goimage-"+strings.TrimSpace(v)+".tar")
	if _, err := os.Stat(cache); err != nil {
		if err := writeGoTar(goroot, cache); err != nil {
			return nil, err
		}
	}
	layer, err := newFileLayer(cache)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(
		mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{Layer: layer, MediaType: types.OCIUncompressedLayer,
			History: v1.History{Created: v1.Time{Time: goImageTime}, CreatedBy: "ocitest: " + v + " from " + goroot}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: goImageTime}
	cf.Config.Env = GoImageEnv()
	cf.Config.WorkingDir = "/"
	cf.Config.Cmd = []string{"go", "version"}
	return mutate.ConfigFile(img, cf)
}

// goRoot finds the Go installation: the one this test was built by, else the
// one on PATH.
func goRoot() (string, error) {
	// runtime.GOROOT is deprecated because a binary may run elsewhere; a
	// test binary runs where it was built, with $GOROOT set by go test.
	if r := runtime.GOROOT(); r != "" {
		if _, err := os.Stat(filepath.Join(r, "bin", "go")); err == nil {
			return r, nil
		}
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("find GOROOT: go env GOROOT: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// skipped reports whether rel (slash-separated, relative to GOROOT) is left
// out of the image: nothing `go build` reads.
func skipped(rel string, dir bool) bool {
	switch rel {
	case "test", "api", "doc", "pkg/obj":
		return true
	}
	if dir {
		return strings.HasPrefix(rel, "src/") && filepath.Base(rel) == "testdata"
	}
	return strings.HasSuffix(rel, "_test.go")
}

// writeGoTar writes the layer to dst through a temporary file renamed into
// place, so that concurrent test processes never read half a tar.
func writeGoTar(goroot, dst string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	tw := tar.NewWriter(f)
	for _, d := range []struct {
		name string
		mode int64
	}{{"etc/", 0o755}, {"root/", 0o700}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"usr/local/", 0o755}} {
		if err := tw.WriteHeader(header(d.name, tar.TypeDir, d.mode, 0)); err != nil {
			return err
		}
	}
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		for _, h := range []*tar.Header{header("etc/ssl/", tar.TypeDir, 0o755, 0), header("etc/ssl/certs/", tar.TypeDir, 0o755, 0)} {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(header("etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644, int64(len(ca)))); err != nil {
			return err
		}
		if _, err := tw.Write(ca); err != nil {
			return err
		}
	}
	err = filepath.WalkDir(goroot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goroot, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skipped(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := "usr/local/go"
		if rel != "." {
			name += "/" + rel
		}
		return addGoFile(tw, path, name, d)
	})
	if err != nil {
		return fmt.Errorf("pack %s: %w", goroot, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file private; the cache is meant to be shared.
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

// addGoFile adds one entry of GOROOT, readable by everyone and executable if
// it was, so the toolchain works whatever user the builder runs as.
func addGoFile(tw *tar.Writer, path, name string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		return tw.WriteHeader(header(name+"/", tar.TypeDir, 0o755, 0))
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		h := header(name, tar.TypeSymlink, 0o777, 0)
		h.Linkname = target
		return tw.WriteHeader(h)
	case fi.Mode().IsRegular():
		mode := int64(0o644)
		if fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(header(name, tar.TypeReg, mode, fi.Size())); err != nil {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(tw, in)
		return err
	}
	return nil // sockets and devices have no place in an image
}

func header(name string, typ byte, mode, size int64) *tar.Header {
	return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: goImageTime, Format: tar.FormatPAX}
}

// fileLayer is an uncompressed layer read from a tar file: the registry is on
// loopback, so compressing 200 MB would only cost time.
type fileLayer struct {
	path string
	hash v1.Hash
	size int64
}

func newFileLayer(path string) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return &fileLayer{path: path, size: n, hash: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

var _ v1.Layer = (*fileLayer)(nil)
