package ocitest

import (
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ServeRegistry is StartRegistry for code that runs outside a test, such as
// a benchmark started by mage: it returns the registry's host and a stop
// function that shuts it down and removes its blobs.
func ServeRegistry() (host string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "hyperfork-registry-")
	if err != nil {
		return "", nil, fmt.Errorf("registry blob folder: %w", err)
	}
	h := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(dir)),
	)
	srv := httptest.NewServer(h)
	return strings.TrimPrefix(srv.URL, "http://"), func() {
		srv.Close()
		os.RemoveAll(dir)
	}, nil
}

// PushGoBuilderImageTo is PushGoBuilderImage for code that runs outside a
// test: it returns the error instead of failing a test.
func PushGoBuilderImageTo(host string) (string, error) {
	img, err := GoBuilderImage()
	if err != nil {
		return "", fmt.Errorf("make Go builder image: %w", err)
	}
	ref, err := name.ParseReference(host+"/"+GoImageTag, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("make Go builder image: %w", err)
	}
	if err := remote.Write(ref, img); err != nil {
		return "", fmt.Errorf("push Go builder image to %s: %w", ref, err)
	}
	return ref.String(), nil
}

// GoRoot returns the Go installation GoBuilderImage packs, so that a
// benchmark can run the very same toolchain on the host.
func GoRoot() (string, error) { return goRoot() }
