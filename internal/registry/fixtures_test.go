package registry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// testBuild is one build of a branch, as the build stage annotates it.
type testBuild struct {
	branch, version, revision string
	created                   time.Time
	// platforms default to linux/amd64 and linux/arm64.
	platforms []string
	// omitCreated leaves the created annotation out, as no build does.
	omitCreated bool
}

func (b testBuild) annotations() map[string]string {
	ann := map[string]string{
		registry.AnnotationRevision: b.revision,
		registry.AnnotationSource:   "https://example.com/fork.git",
		registry.AnnotationVersion:  b.version,
		registry.AnnotationCreated:  b.created.UTC().Format(time.RFC3339),
		registry.AnnotationBranch:   b.branch,
	}
	if b.omitCreated {
		delete(ann, registry.AnnotationCreated)
	}
	return ann
}

// removeBlob deletes a blob from a local OCI layout, as a disk fault would.
func removeBlob(dir, digest string) error {
	return os.Remove(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
}

// sharedLayer is in every image, as a base's layers are.
var sharedLayer = static.NewLayer([]byte("a base layer every image shares"), types.OCILayer)

// buildIndex makes a multi-platform image of b for image: per platform, the
// shared layer and one of its own, annotated as Pack annotates.
func buildIndex(t *testing.T, image string, b testBuild) registry.Index {
	t.Helper()
	plats := b.platforms
	if plats == nil {
		plats = []string{"linux/amd64", "linux/arm64"}
	}
	ann := b.annotations()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, ps := range plats {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			t.Fatal(err)
		}
		own := static.NewLayer([]byte(fmt.Sprintf("%s %s at %s for %s", image, b.version, b.revision, ps)), types.OCILayer)
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		img, err = mutate.AppendLayers(img, sharedLayer, own)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		cf.Created = v1.Time{Time: b.created}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		img = mutate.Annotations(img, ann).(v1.Image)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	return mutate.Annotations(idx, ann).(v1.ImageIndex)
}

// testBranch makes the n-th build of a branch: version v<minor>.<n>, one
// commit and one day per build from the first of September 2025.
func testBranch(branch string, n int) testBuild {
	minor := strings.TrimPrefix(branch, "release-1.")
	return testBuild{
		branch:   branch,
		version:  fmt.Sprintf("v1.%s.%d+fork.1", minor, n),
		revision: fmt.Sprintf("%s%02d%s", strings.ReplaceAll(minor, ".", ""), n, strings.Repeat("0", 36)),
		created:  time.Date(2025, 9, 1+n, 12, 0, 0, 0, time.UTC),
	}
}

// pushCandidate pushes b of every image as a candidate, as the build stage
// does, and returns image name → digest reference.
func pushCandidate(t *testing.T, r *registry.Repository, images []string, b testBuild) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, im := range images {
		ref, err := r.PushCandidate(context.Background(), buildIndex(t, im, b), im, b.branch, b.revision)
		if err != nil {
			t.Fatal(err)
		}
		out[im] = ref
	}
	return out
}

// publish pushes b as a candidate and promotes it, as a passed run does.
func publish(t *testing.T, r *registry.Repository, images []string, b testBuild) map[string]string {
	t.Helper()
	refs := pushCandidate(t, r, images, b)
	if _, err := r.Promote(context.Background(), refs, registry.PromotionTags(b.version, b.branch)); err != nil {
		t.Fatal(err)
	}
	return refs
}

// destination is a registry the tests run against.
type destination struct {
	name  string
	start func(t *testing.T, wrap func(http.Handler) http.Handler) string
}

// registries are the two real registries: go-containerregistry's, in
// process, and distribution v3, the one users run, with deletes on.
var registries = []destination{
	{"ggcr", func(t *testing.T, wrap func(http.Handler) http.Handler) string {
		return ocitest.StartRegistryWith(t, wrap)
	}},
	{"distribution", func(t *testing.T, wrap func(http.Handler) http.Handler) string {
		host := ocitest.StartDistribution(t, ocitest.DistributionOptions{})
		if wrap == nil {
			return host
		}
		return ocitest.Proxy(t, host, wrap)
	}},
}

// chain applies wrappers, the first outermost.
func chain(ws ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		for i := len(ws) - 1; i >= 0; i-- {
			h = ws[i](h)
		}
		return h
	}
}

// tagsOf lists a repository's tags directly, without the code under test.
func tagsOf(t *testing.T, repo string) map[string]bool {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil {
		t.Fatalf("list %s: %v", repo, err)
	}
	out := map[string]bool{}
	for _, tg := range tags {
		out[tg] = true
	}
	return out
}

// digestOf returns what repo:tag names, or "" when the tag is absent.
func digestOf(t *testing.T, repo, tag string) string {
	t.Helper()
	desc, err := remote.Head(mustRef(t, repo+":"+tag))
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// exists reports whether a manifest is still in the registry.
func exists(t *testing.T, ref string) bool {
	t.Helper()
	_, err := remote.Head(mustRef(t, ref))
	return err == nil
}

// complete fails unless ref's index, its manifests and their blobs are all
// present.
func complete(t *testing.T, ref string) {
	t.Helper()
	idx, err := remote.Index(mustRef(t, ref))
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	completeIndex(t, ref, idx)
}

// completeIndex fails unless every manifest, config and layer of idx can be
// read.
func completeIndex(t *testing.T, ref string, idx v1.ImageIndex) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err == nil {
			_, err = img.RawConfigFile()
		}
		if err != nil {
			t.Fatalf("%s is not complete: manifest %s: %v", ref, d.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Fatalf("%s is not complete: a layer of %s: %v", ref, d.Digest, err)
			}
		}
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// writes counts the requests that change a registry.
func writes(reqs []string, method, pathPart string) []string {
	var out []string
	for _, q := range reqs {
		m, p, _ := strings.Cut(q, " ")
		if m == method && strings.Contains(p, pathPart) {
			out = append(out, q)
		}
	}
	return out
}
