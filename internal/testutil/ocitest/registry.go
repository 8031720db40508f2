// Package ocitest starts real OCI registries on loopback for tests and makes
// the images tests need from this machine, since neither Docker Hub nor
// registry.k8s.io can be reached: a Go toolchain image for the builder, and
// stand-ins for the bases of Kubernetes' images (go-runner,
// distroless-iptables).
package ocitest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// StartRegistry starts go-containerregistry's registry on a real TCP port of
// 127.0.0.1 and returns its host, such as "127.0.0.1:41234". Blobs are kept in
// a temporary folder, not in memory, because the Go toolchain image alone
// weighs a quarter of a gigabyte. The registry stops when the test ends.
func StartRegistry(t testing.TB) string {
	t.Helper()
	return StartRegistryWith(t, nil)
}

// StartRegistryWith is StartRegistry with the handler wrapped by wrap (nil:
// unwrapped), to observe requests or inject a fault a real registry cannot be
// made to show.
func StartRegistryWith(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(registry.NewDiskBlobHandler(t.TempDir())),
	)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// StartRefusingRegistry starts a registry that serves reads but answers every
// write (POST, PUT, PATCH, DELETE) with 403 DENIED, like a registry where the
// credentials lack push rights.
func StartRefusingRegistry(t testing.TB) string {
	t.Helper()
	return StartRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
}

// StartAuthRegistry starts a registry that requires HTTP basic authentication
// with user and password on every request, as a registry with `htpasswd`
// authentication does.
func StartAuthRegistry(t testing.TB, user, password string) string {
	t.Helper()
	return StartRegistryWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="ocitest"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
}

// Recorder counts the requests a registry receives. Wrap a registry with it
// through StartRegistryWith.
type Recorder struct {
	mu   sync.Mutex
	reqs []string
}

// Wrap returns h recording every request as "METHOD path".
func (r *Recorder) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// Requests returns the recorded requests in order.
func (r *Recorder) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

// BlobUploads returns how many blob uploads were started or sent (POST, PUT
// or PATCH under /blobs/uploads/). A push that finds every blob present makes
// none.
func (r *Recorder) BlobUploads() int {
	n := 0
	for _, q := range r.Requests() {
		method, path, _ := strings.Cut(q, " ")
		if method != http.MethodGet && method != http.MethodHead && strings.Contains(path, "/blobs/uploads/") {
			n++
		}
	}
	return n
}

// Reset forgets the recorded requests.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}
