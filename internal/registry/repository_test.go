package registry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func pack(t *testing.T) registry.Index {
	t.Helper()
	idx, err := registry.Pack(context.Background(), spec(binDir(t, "kubelet", "kubectl")))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func open(t *testing.T, opts registry.Options) *registry.Repository {
	t.Helper()
	r, err := registry.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCandidateTag(t *testing.T) {
	if got := registry.CandidateTag("release/1.34", commit); got != "candidate-release-1.34-0123456789ab" {
		t.Errorf("CandidateTag = %q", got)
	}
	long := registry.CandidateTag(strings.Repeat("b", 200), commit)
	if len(long) != 128 || !strings.HasSuffix(long, "-0123456789ab") {
		t.Errorf("long branch gave %q (%d), want 128 characters ending in the commit", long, len(long))
	}
	if got := registry.StableTag("v1.34.1+fork.3"); got != "v1.34.1_fork.3" {
		t.Errorf("StableTag = %q", got)
	}
}

func TestImageRef(t *testing.T) {
	r := open(t, registry.Options{Ref: "registry.example.com/team/hyperkube"})
	if got := r.ImageRef("hyperkube"); got != "registry.example.com/team/hyperkube" {
		t.Errorf("image named like the repository: %s", got)
	}
	if got := r.ImageRef("kube-proxy"); got != "registry.example.com/team/hyperkube/kube-proxy" {
		t.Errorf("other image: %s", got)
	}
	dir := t.TempDir()
	l := open(t, registry.Options{LayoutDir: dir})
	if got := l.ImageRef("hyperkube"); got != "oci-layout://"+filepath.ToSlash(dir)+"/hyperkube" {
		t.Errorf("layout: %s", got)
	}
}

func TestPushCandidateToRegistry(t *testing.T) {
	host := ocitest.StartRegistry(t)
	r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
	idx := pack(t)
	ctx := context.Background()
	ref, err := r.PushCandidate(ctx, idx, "hyperkube", "release/1.34", commit)
	if err != nil {
		t.Fatal(err)
	}
	want := host + "/team/hyperkube@" + mustDigest(t, idx).String()
	if ref != want {
		t.Fatalf("ref = %s, want %s", ref, want)
	}
	es, err := r.List(ctx, "hyperkube")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !slices.Equal(es[0].Tags, []string{"candidate-release-1.34-0123456789ab"}) || es[0].Ref != ref {
		t.Fatalf("List = %+v, want the candidate tag only", es)
	}
	if es[0].Annotations[registry.AnnotationRevision] != commit {
		t.Errorf("List annotations = %v", es[0].Annotations)
	}
	got, err := r.Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, got) != mustDigest(t, idx) {
		t.Error("Get returned another index")
	}
	// Another image of the same pipeline lives under the repository.
	other, err := r.PushCandidate(ctx, idx, "kube-proxy", "main", commit)
	if err != nil || !strings.HasPrefix(other, host+"/team/hyperkube/kube-proxy@sha256:") {
		t.Fatalf("kube-proxy: %s, %v", other, err)
	}
}

func TestPushAgainUploadsNothing(t *testing.T) {
	var rec ocitest.Recorder
	host := ocitest.StartRegistryWith(t, rec.Wrap)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	ctx := context.Background()
	if _, err := r.PushCandidate(ctx, pack(t), "hyperkube", "main", commit); err != nil {
		t.Fatal(err)
	}
	if rec.BlobUploads() == 0 {
		t.Fatal("the first push uploaded nothing: the recorder sees no uploads")
	}
	rec.Reset()
	// Packed anew from new files with the same contents, as a rebuild does.
	if _, err := r.PushCandidate(ctx, pack(t), "hyperkube", "main", commit); err != nil {
		t.Fatal(err)
	}
	if n := rec.BlobUploads(); n != 0 {
		t.Fatalf("the second push started %d blob uploads, want 0: %v", n, rec.Requests())
	}
}

func TestTagAndDeleteInRegistry(t *testing.T) {
	host := ocitest.StartRegistry(t)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	ctx := context.Background()
	ref, err := r.PushCandidate(ctx, pack(t), "hyperkube", "main", commit)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tag(ctx, ref, registry.StableTag("v1.34.1+fork.1"), "main"); err != nil {
		t.Fatal(err)
	}
	es, err := r.List(ctx, "hyperkube")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !slices.Equal(es[0].Tags, []string{"candidate-main-0123456789ab", "main", "v1.34.1_fork.1"}) {
		t.Fatalf("List = %+v", es)
	}
	if _, err := r.Get(ctx, "hyperkube:main"); err != nil {
		t.Errorf("Get by tag shorthand: %v", err)
	}
	if err := r.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if es, err := r.List(ctx, "hyperkube"); err != nil || len(es) != 0 {
		t.Fatalf("after Delete: %+v, %v", es, err)
	}
	if _, err := r.Get(ctx, ref); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
}

func TestLayoutDestination(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	r := open(t, registry.Options{LayoutDir: dir})
	ctx := context.Background()
	idx := pack(t)
	ref, err := r.PushCandidate(ctx, idx, "hyperkube", "main", commit)
	if err != nil {
		t.Fatal(err)
	}
	// Twice: the entry is replaced, not duplicated.
	if _, err := r.PushCandidate(ctx, idx, "hyperkube", "main", commit); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, _ := p.ImageIndex()
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[registry.AnnotationRefName] != "candidate-main-0123456789ab" {
		t.Fatalf("index.json = %+v", im.Manifests)
	}
	back, err := ii.ImageIndex(mustDigest(t, idx))
	if err != nil {
		t.Fatal(err)
	}
	if bm, _ := back.IndexManifest(); len(bm.Manifests) != 2 {
		t.Fatalf("read back %d manifests", len(bm.Manifests))
	}

	if err := r.Tag(ctx, ref, "v1.34.1_fork.1", "main"); err != nil {
		t.Fatal(err)
	}
	es, err := r.List(ctx, "hyperkube")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || len(es[0].Tags) != 3 || es[0].Annotations[registry.AnnotationBranch] != "release-1.34" {
		t.Fatalf("List = %+v", es)
	}
	if _, err := r.Get(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if es, _ := r.List(ctx, "hyperkube"); len(es) != 0 {
		t.Fatalf("after Delete: %+v", es)
	}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Errorf("Delete left %d blobs", len(blobs))
	}
	if _, err := r.Get(ctx, ref); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestRefusingRegistry(t *testing.T) {
	host := ocitest.StartRefusingRegistry(t)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	_, err := r.PushCandidate(context.Background(), pack(t), "hyperkube", "main", commit)
	t.Log(err)
	if !errors.Is(err, registry.ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied", err)
	}
	if !strings.Contains(err.Error(), host+"/hyperkube:candidate-main-0123456789ab") || !strings.Contains(err.Error(), "push to") {
		t.Errorf("error does not name the image or say what to do: %v", err)
	}
}

func TestUnreachableRegistry(t *testing.T) {
	// Port 1: nothing listens there, and unlike a freed ephemeral port no
	// server started by a parallel test can take it.
	host := "127.0.0.1:1"
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	_, err := r.PushCandidate(context.Background(), pack(t), "hyperkube", "main", commit)
	t.Log(err)
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), host) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, host)
	}
	var re *registry.Error
	if !errors.As(err, &re) || !re.Temporary() {
		t.Errorf("an unreachable registry should be worth a retry: %#v", err)
	}
}

func TestCredentials(t *testing.T) {
	const user, password = "robot", "s3cret-Passw0rd"
	host := ocitest.StartAuthRegistry(t, user, password)
	ctx := context.Background()
	good := open(t, registry.Options{Ref: host + "/hyperkube", Username: user, Password: password})
	if _, err := good.PushCandidate(ctx, pack(t), "hyperkube", "main", commit); err != nil {
		t.Fatalf("push with the right credentials: %v", err)
	}
	const wrong = "wr0ng-Passw0rd"
	bad := open(t, registry.Options{Ref: host + "/hyperkube", Username: user, Password: wrong})
	_, err := bad.PushCandidate(ctx, pack(t), "hyperkube", "main", commit)
	t.Log(err)
	if !errors.Is(err, registry.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if _, err2 := bad.List(ctx, "hyperkube"); !errors.Is(err2, registry.ErrUnauthorized) {
		t.Fatalf("List: %v, want ErrUnauthorized", err2)
	}
	for _, secret := range []string{wrong, password} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows a password: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "docker login") {
		t.Errorf("error does not say what to do: %v", err)
	}
}
