package ocitest_test

import (
	"archive/tar"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

func TestStartRegistry(t *testing.T) {
	var rec ocitest.Recorder
	host := ocitest.StartRegistryWith(t, rec.Wrap)
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("host = %s, want loopback", host)
	}
	ref, _ := name.ParseReference(host+"/x:1", name.Insecure)
	img, _ := random.Image(256, 1)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := got.Digest(); a != must(img.Digest()) {
		t.Fatal("read back another image")
	}
	if rec.BlobUploads() == 0 {
		t.Error("recorder saw no blob upload")
	}
}

func must(h v1.Hash, err error) v1.Hash {
	if err != nil {
		panic(err)
	}
	return h
}

func TestStartRefusingRegistry(t *testing.T) {
	host := ocitest.StartRefusingRegistry(t)
	ref, _ := name.ParseReference(host+"/x:1", name.Insecure)
	img, _ := random.Image(256, 1)
	err := remote.Write(ref, img)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusForbidden {
		t.Fatalf("err = %v, want 403", err)
	}
}

// TestPushGoBuilderImage checks the image holds a working toolchain: the
// layer is unpacked and its go cross-compiles a program for linux/arm64, as
// the build stage will do inside it.
func TestPushGoBuilderImage(t *testing.T) {
	prereq.Slow(t, "makes a 200 MB image and compiles with it")
	host := ocitest.StartRegistry(t)
	start := time.Now()
	ref := ocitest.PushGoBuilderImage(t, host)
	t.Logf("pushed in %v", time.Since(start))
	if ref != host+"/golang:local" {
		t.Fatalf("ref = %s", ref)
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if !slices.Contains(cf.Config.Env, "GOTOOLCHAIN=local") || cf.OS != "linux" {
		t.Errorf("config: %s %v", cf.OS, cf.Config.Env)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	root := t.TempDir()
	modes := unpack(t, layers[0], root)
	if m, ok := modes["usr/local/go/bin/go"]; !ok || m != 0o755 {
		t.Fatalf("usr/local/go/bin/go: present %v mode %o", ok, m)
	}
	for _, gone := range []string{"usr/local/go/test/", "usr/local/go/src/fmt/fmt_test.go"} {
		if _, ok := modes[gone]; ok {
			t.Errorf("%s should be left out", gone)
		}
	}
	if m := modes["tmp/"]; m != 0o1777 {
		t.Errorf("tmp/ mode %o, want 1777", m)
	}

	t.Logf("unpacked at %v", time.Since(start))
	src := t.TempDir()
	_ = os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	_ = os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n"), 0o644)
	goroot := filepath.Join(root, "usr/local/go")
	cmd := exec.Command(filepath.Join(goroot, "bin/go"), "build", "-o", "hello", ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOROOT="+goroot, "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0",
		"GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false", "GOCACHE="+filepath.Join(t.TempDir(), "cache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for linux/arm64 with the image's toolchain: %v\n%s", err, out)
	}
}

// unpack extracts the layer under root and returns each entry's mode.
func unpack(t *testing.T, l v1.Layer, root string) map[string]int64 {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return modes
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
		dst := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode).Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
}
