package ocitest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ServeRegistry is StartRegistry for code that runs outside a test, such as
// a benchmark started by mage: it returns the registry's host and a stop
// function that shuts it down and removes its blobs.
//
// Unlike StartRegistry's, its blobs never pass through memory: the
// registry's own handler keeps every upload in memory until it completes
// and hashes a blob on every read, which for the quarter-gigabyte Go
// builder image costs half a gigabyte of this process's memory and seconds
// of CPU, and would be charged to whatever a benchmark measures in this
// process. Uploads stream to files and reads are served from them.
func ServeRegistry() (host string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "hyperfork-registry-")
	if err != nil {
		return "", nil, fmt.Errorf("registry blob folder: %w", err)
	}
	h := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		// The same layout as fileBlobs, so manifests, deletes and
		// anything fileBlobs passes on see the same blobs.
		registry.WithBlobHandler(registry.NewDiskBlobHandler(dir)),
	)
	srv := httptest.NewServer(&fileBlobs{dir: dir, next: h})
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

// fileBlobs serves blob uploads (POST, PATCH, PUT under blobs/uploads/) and
// blob reads (GET, HEAD) from files under dir/sha256/ and dir/uploads/, and
// passes every other request to next.
type fileBlobs struct {
	dir  string
	next http.Handler
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (s *fileBlobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	i := strings.LastIndex(p, "/blobs/")
	if !strings.HasPrefix(p, "/v2/") || i < len("/v2/") {
		s.next.ServeHTTP(w, r)
		return
	}
	repo, rest := p[len("/v2/"):i], p[i+len("/blobs/"):]
	switch {
	case r.Method == http.MethodPost && (rest == "uploads/" || rest == "uploads"):
		s.start(w, r, repo)
	case (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.HasPrefix(rest, "uploads/"):
		s.upload(w, r, repo, strings.TrimPrefix(rest, "uploads/"))
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && sha256Digest.MatchString(rest):
		s.get(w, r, rest)
	default:
		s.next.ServeHTTP(w, r)
	}
}

// start begins an upload. A cross-repository mount is answered as a new
// upload, which clients take as "mount not possible, upload instead"; a
// monolithic POST with ?digest= is completed at once.
func (s *fileBlobs) start(w http.ResponseWriter, r *http.Request, repo string) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Join(s.dir, "uploads"), 0o755); err != nil {
		fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if err := os.WriteFile(s.uploadPath(id), nil, 0o644); err != nil {
		fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if r.URL.Query().Get("digest") != "" {
		r.Method = http.MethodPut
		s.upload(w, r, repo, id)
		return
	}
	w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", "0-0")
	w.WriteHeader(http.StatusAccepted)
}

func (s *fileBlobs) uploadPath(id string) string { return filepath.Join(s.dir, "uploads", id) }

// upload appends the body to the upload; a PUT then checks the digest and
// moves the file to its place.
func (s *fileBlobs) upload(w http.ResponseWriter, r *http.Request, repo, id string) {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		fail(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "no such upload")
		return
	}
	f, err := os.OpenFile(s.uploadPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fail(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "no such upload")
		return
	}
	n, err := io.Copy(f, r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if r.Method == http.MethodPatch {
		fi, err := os.Stat(s.uploadPath(id))
		if err != nil {
			fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		w.Header().Set("Location", "/v2/"+repo+"/blobs/uploads/"+id)
		w.Header().Set("Docker-Upload-UUID", id)
		w.Header().Set("Range", fmt.Sprintf("0-%d", max(fi.Size(), n)-1))
		w.WriteHeader(http.StatusAccepted)
		return
	}
	digest := r.URL.Query().Get("digest")
	if !sha256Digest.MatchString(digest) {
		fail(w, http.StatusBadRequest, "DIGEST_INVALID", "digest must be sha256:<64 hex digits>")
		return
	}
	got, err := fileDigest(s.uploadPath(id))
	if err != nil {
		fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if got != digest {
		os.Remove(s.uploadPath(id))
		fail(w, http.StatusBadRequest, "DIGEST_INVALID", "content has digest "+got+", not "+digest)
		return
	}
	dst := s.blobPath(digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if err := os.Rename(s.uploadPath(id), dst); err != nil {
		fail(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
}

func (s *fileBlobs) blobPath(digest string) string {
	return filepath.Join(s.dir, "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// get serves a blob from its file, ranges included; a blob without a file
// is left to next, which answers BLOB_UNKNOWN.
func (s *fileBlobs) get(w http.ResponseWriter, r *http.Request, digest string) {
	f, err := os.Open(s.blobPath(digest))
	if err != nil {
		s.next.ServeHTTP(w, r)
		return
	}
	defer f.Close()
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// fail answers with the registry error format of the distribution spec.
func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}
