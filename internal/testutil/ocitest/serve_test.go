package ocitest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// TestServeRegistry pushes and pulls an image through the file-backed blob
// layer, reads a blob range as a puller resuming a download does, and
// checks that a wrong digest is refused.
func TestServeRegistry(t *testing.T) {
	host, stop, err := ocitest.ServeRegistry()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ref, _ := name.ParseReference(host+"/team/x:1", name.Insecure)
	img, _ := random.Image(100_000, 3)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("read back %s, want %s", d, want)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest as it reads
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := layers[0].Digest()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/team/x/blobs/"+d.String(), nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || len(b) != 10 || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("range read: %s, %d bytes, digest %q", resp.Status, len(b), resp.Header.Get("Docker-Content-Digest"))
	}

	resp, err = http.Post("http://"+host+"/v2/team/x/blobs/uploads/?digest=sha256:"+strings.Repeat("0", 64), "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("upload with a wrong digest: %s", resp.Status)
	}
	resp, err = http.Head("http://" + host + "/v2/team/x/blobs/sha256:" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of a missing blob: %s", resp.Status)
	}
}
