package registry_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// now is when the tests' retention runs: a month after the first build.
var now = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)

func policy(branch string, images []string, keep int) registry.RetentionPolicy {
	return registry.RetentionPolicy{Branch: branch, Images: images, Keep: keep, MaxDeletes: 50,
		KeepCandidates: 14 * 24 * time.Hour, Now: now}
}

func candidateOf(b testBuild) string { return registry.CandidateTag(b.branch, b.revision) }
func versionOf(b testBuild) string   { return registry.StableTag(b.version) }

// removedTags lists the tags of a plan's removals, in order.
func removedTags(p *registry.RetentionPlan) []string {
	var out []string
	for _, g := range p.Remove {
		out = append(out, g.Tag)
	}
	return out
}

func groupTags(gs []registry.Group) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Tag)
	}
	return out
}

func digestPart(ref string) string { return ref[strings.LastIndex(ref, "@")+1:] }

func TestRetentionTwoBranchesSharingADigest(t *testing.T) {
	for _, dest := range registries {
		t.Run(dest.name, func(t *testing.T) {
			var rec ocitest.Recorder
			host := dest.start(t, rec.Wrap)
			r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
			ctx := context.Background()
			images := []string{"hyperkube", "kube-proxy"}
			// 12 published images: six of release-1.34, six of
			// release-1.35, the first of which is a digest release-1.34
			// published before (v1.34.1), tagged under 1.35's version.
			b34 := make([]testBuild, 6)
			refs := map[string]map[string]string{}
			for n := range 6 {
				b34[n] = testBranch("release-1.34", n)
				refs[versionOf(b34[n])] = publish(t, r, images, b34[n])
			}
			shared := refs[versionOf(b34[1])]
			for _, im := range images {
				if err := r.Tag(ctx, shared[im], "v1.35.0_fork.1", "release-1.35"); err != nil {
					t.Fatal(err)
				}
			}
			b35 := make([]testBuild, 6)
			for n := 1; n < 6; n++ {
				b35[n] = testBranch("release-1.35", n)
				refs[versionOf(b35[n])] = publish(t, r, images, b35[n])
			}

			rec.Reset()
			plan, err := r.Plan(ctx, policy("release-1.34", images, 3))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(plan)
			if len(writes(rec.Requests(), http.MethodPut, "/")) != 0 {
				t.Fatal("Plan wrote something")
			}
			want := []string{
				candidateOf(b34[0]), versionOf(b34[0]),
				candidateOf(b34[1]), versionOf(b34[1]),
				candidateOf(b34[2]), versionOf(b34[2]),
				candidateOf(b34[3]), candidateOf(b34[4]),
			}
			if got := removedTags(plan); !slices.Equal(got, want) {
				t.Fatalf("Remove = %v\nwant     %v", got, want)
			}
			if got := plan.KeptTags(); !slices.Equal(got, []string{versionOf(b34[5]), versionOf(b34[4]), versionOf(b34[3])}) {
				t.Errorf("KeptTags = %v", got)
			}
			for _, g := range plan.Remove {
				if g.Tag != versionOf(b34[1]) {
					continue
				}
				for _, m := range g.Images {
					if m.DeleteManifest || !slices.Contains(m.Holds, "tagged v1.35.0_fork.1") {
						t.Errorf("the shared digest would be deleted: %+v", m)
					}
				}
			}
			if len(plan.Deleted()) != 16 {
				t.Errorf("Deleted = %v", plan.Deleted())
			}

			rec.Reset()
			if err := r.Apply(ctx, plan); err != nil {
				t.Fatal(err)
			}
			deletedDigests := writes(rec.Requests(), http.MethodDelete, "/manifests/sha256:")
			if len(deletedDigests) != 4 {
				t.Errorf("deleted by digest: %v, want the indexes of v1.34.0 and v1.34.2 of both images", deletedDigests)
			}
			for _, im := range images {
				repo := r.ImageRef(im)
				tags := tagsOf(t, repo)
				for _, b := range b34[:3] {
					if tags[versionOf(b)] || tags[candidateOf(b)] {
						t.Errorf("%s still has %s or its candidate tag", repo, versionOf(b))
					}
				}
				for _, tag := range []string{versionOf(b34[3]), versionOf(b34[4]), versionOf(b34[5]), "release-1.34",
					candidateOf(b34[5]), "v1.35.0_fork.1", "release-1.35", versionOf(b35[1]), candidateOf(b35[1])} {
					if !tags[tag] {
						t.Errorf("%s lost %s", repo, tag)
					}
				}
				for _, b := range []testBuild{b34[0], b34[2]} {
					if exists(t, refs[versionOf(b)][im]) {
						t.Errorf("%s of %s is still there", im, versionOf(b))
					}
				}
				complete(t, shared[im])
				if got := digestOf(t, repo, "v1.35.0_fork.1"); got != digestPart(shared[im]) {
					t.Errorf("v1.35.0_fork.1 of %s names %s", im, got)
				}
				for _, b := range b34[3:] {
					complete(t, refs[versionOf(b)][im])
				}
			}

			// The other branch's retention does not own the shared digest.
			plan35, err := r.Plan(ctx, policy("release-1.35", images, 3))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(plan35)
			want = []string{candidateOf(b35[1]), versionOf(b35[1]), candidateOf(b35[2]), versionOf(b35[2]),
				candidateOf(b35[3]), candidateOf(b35[4])}
			if got := removedTags(plan35); !slices.Equal(got, want) {
				t.Fatalf("release-1.35 Remove = %v\nwant                 %v", got, want)
			}
			if err := r.Apply(ctx, plan35); err != nil {
				t.Fatal(err)
			}
			for _, im := range images {
				complete(t, shared[im])
			}

			// Retention is done: a new plan removes nothing.
			again, err := r.Plan(ctx, policy("release-1.34", images, 3))
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Remove) != 0 {
				t.Errorf("a second plan removes %v", removedTags(again))
			}
		})
	}
}

func TestRetentionKeepsMultiArchChildren(t *testing.T) {
	for _, dest := range registries {
		t.Run(dest.name, func(t *testing.T) {
			var rec ocitest.Recorder
			host := dest.start(t, rec.Wrap)
			r := open(t, registry.Options{Ref: host + "/hyperkube"})
			ctx := context.Background()
			bs := make([]testBuild, 4)
			for n := range bs {
				bs[n] = testBranch("release-1.34", n)
			}
			// v1.34.3's index lists, besides its own, v1.34.0's amd64
			// manifest; v1.34.1's arm64 manifest is tagged on its own.
			old := buildIndex(t, "hyperkube", bs[0])
			oldM, _ := old.IndexManifest()
			sharedChild := oldM.Manifests[0]
			childImg, err := old.Image(sharedChild.Digest)
			if err != nil {
				t.Fatal(err)
			}
			refs := make([]string, 4)
			for n, b := range bs {
				idx := buildIndex(t, "hyperkube", b)
				if n == 0 {
					idx = old
				}
				if n == 3 {
					p := v1.Platform{OS: "linux", Architecture: "amd64", Variant: "v1"}
					idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: childImg, Descriptor: v1.Descriptor{Platform: &p}})
					idx = mutate.Annotations(idx, b.annotations()).(v1.ImageIndex)
				}
				ref, err := r.PushCandidate(ctx, idx, "hyperkube", b.branch, b.revision)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Promote(ctx, map[string]string{"hyperkube": ref}, registry.PromotionTags(b.version, b.branch)); err != nil {
					t.Fatal(err)
				}
				refs[n] = ref
			}
			idx1, err := r.Get(ctx, refs[1])
			if err != nil {
				t.Fatal(err)
			}
			m1, _ := idx1.IndexManifest()
			taggedChild := m1.Manifests[1].Digest
			if err := r.Tag(ctx, "hyperkube@"+taggedChild.String(), "v1.34.1-linux-arm64"); err != nil {
				t.Fatal(err)
			}
			var children []string
			for _, ref := range refs {
				idx, _ := r.Get(ctx, ref)
				m, _ := idx.IndexManifest()
				for _, c := range m.Manifests {
					children = append(children, c.Digest.String())
				}
			}

			plan, err := r.Plan(ctx, policy("release-1.34", []string{"hyperkube"}, 2))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(plan)
			rec.Reset()
			if err := r.Apply(ctx, plan); err != nil {
				t.Fatal(err)
			}
			deleted := writes(rec.Requests(), http.MethodDelete, "/manifests/sha256:")
			if len(deleted) != 2 {
				t.Errorf("deleted by digest %v, want the indexes of v1.34.0 and v1.34.1", deleted)
			}
			for _, d := range deleted {
				for _, c := range children {
					if strings.HasSuffix(d, c) {
						t.Errorf("a child manifest was deleted on its own: %s", d)
					}
				}
			}
			if exists(t, refs[0]) || exists(t, refs[1]) {
				t.Error("the old indexes are still there")
			}
			complete(t, refs[3])
			complete(t, refs[2])
			repo := r.ImageRef("hyperkube")
			if !exists(t, repo+"@"+sharedChild.Digest.String()) || !exists(t, repo+"@"+taggedChild.String()) {
				t.Error("a child manifest another index or a tag names is gone")
			}
		})
	}
}

func TestRetentionMaxDeletes(t *testing.T) {
	host := ocitest.StartRegistry(t)
	r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
	ctx := context.Background()
	images := []string{"hyperkube", "kube-proxy"}
	for n := range 8 {
		publish(t, r, images, testBranch("release-1.34", n))
	}
	pol := policy("release-1.34", images, 2)
	pol.MaxDeletes = 0
	plan, err := r.Plan(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Remove) != 0 || len(plan.Deferred) != 13 {
		t.Fatalf("maxDeletes 0: Remove %v, %d deferred; want nothing removed, 6 releases and 7 candidates deferred",
			removedTags(plan), len(plan.Deferred))
	}
	pol.MaxDeletes = 5
	for run := 1; ; run++ {
		plan, err := r.Plan(ctx, pol)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Remove) == 0 {
			if run != 8 {
				t.Errorf("done after %d runs, want 7 runs of two groups (two images each) and a last one of one", run-1)
			}
			break
		}
		if n := len(plan.Deleted()); n > 5 {
			t.Fatalf("run %d removes %d, over maxDeletes 5", run, n)
		}
		if len(plan.Deferred) > 0 && !strings.Contains(plan.Deferred[0].Reason, "maxDeletes") {
			t.Errorf("deferred: %s", plan.Deferred[0].Reason)
		}
		if err := r.Apply(ctx, plan); err != nil {
			t.Fatal(err)
		}
		if run > 10 {
			t.Fatal("retention does not converge")
		}
	}
}

func TestRetentionCandidates(t *testing.T) {
	host := ocitest.StartRegistry(t)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	ctx := context.Background()
	images := []string{"hyperkube"}
	// Published a month ago; three candidates since, none promoted:
	// the newest failed its tests yesterday.
	pub := testBranch("release-1.34", 0)
	publish(t, r, images, pub)
	var cands []testBuild
	for i, age := range []time.Duration{20 * 24 * time.Hour, 10 * 24 * time.Hour, 24 * time.Hour} {
		b := testBranch("release-1.34", i+1)
		b.created = now.Add(-age)
		pushCandidate(t, r, images, b)
		cands = append(cands, b)
	}
	plan, err := r.Plan(ctx, policy("release-1.34", images, 3))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(plan)
	if got, want := removedTags(plan), []string{candidateOf(pub), candidateOf(cands[0])}; !slices.Equal(got, want) {
		t.Fatalf("Remove = %v, want %v (older than 14 days)", got, want)
	}
	for _, m := range plan.Remove[0].Images {
		if m.DeleteManifest {
			t.Error("the published image's manifest would go with its candidate tag")
		}
	}
	if err := r.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	tags := tagsOf(t, r.ImageRef("hyperkube"))
	for _, tag := range []string{versionOf(pub), "release-1.34", candidateOf(cands[1]), candidateOf(cands[2])} {
		if !tags[tag] {
			t.Errorf("lost %s", tag)
		}
	}

	// Even when every candidate is old, the newest stays.
	pol := policy("release-1.34", images, 3)
	pol.KeepCandidates = 0
	plan, err = r.Plan(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	if got := removedTags(plan); !slices.Equal(got, []string{candidateOf(cands[1])}) {
		t.Errorf("keepCandidates 0: Remove = %v, want all but the newest candidate", got)
	}
}

func TestRetentionPolicyIsChecked(t *testing.T) {
	r := open(t, registry.Options{LayoutDir: t.TempDir()})
	good := policy("main", []string{"hyperkube"}, 1)
	for _, tc := range []struct {
		name string
		edit func(*registry.RetentionPolicy)
	}{
		{"keep 0", func(p *registry.RetentionPolicy) { p.Keep = 0 }},
		{"no branch", func(p *registry.RetentionPolicy) { p.Branch = "" }},
		{"no images", func(p *registry.RetentionPolicy) { p.Images = nil }},
		{"bad image", func(p *registry.RetentionPolicy) { p.Images = []string{"team/hyperkube"} }},
		{"negative maxDeletes", func(p *registry.RetentionPolicy) { p.MaxDeletes = -1 }},
		{"no now", func(p *registry.RetentionPolicy) { p.Now = time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			tc.edit(&p)
			if _, err := r.Plan(context.Background(), p); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := r.Plan(context.Background(), good); err != nil {
		t.Errorf("an empty layout: %v", err)
	}
}

// TestRetentionPlanOf500Tags measures the plan over 500 tags (250 releases,
// each with its version and candidate tag) and prints the time; the figure
// is for the record, not asserted.
func TestRetentionPlanOf500Tags(t *testing.T) {
	for _, dest := range registries {
		t.Run(dest.name, func(t *testing.T) {
			host := dest.start(t, nil)
			r := open(t, registry.Options{Ref: host + "/hyperkube"})
			ctx := context.Background()
			const releases = 250
			start := time.Now()
			jobs := make(chan int)
			errs := make(chan error, releases)
			for range 4 {
				go func() {
					for n := range jobs {
						b := testBuild{branch: "main", version: "v1.37.0-" + strconv.Itoa(n) + "+fork", revision: hex40(n),
							created:   time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour),
							platforms: []string{"linux/amd64"}}
						ref, err := r.PushCandidate(ctx, buildIndex(t, "hyperkube", b), "hyperkube", b.branch, b.revision)
						if err == nil {
							err = r.Tag(ctx, ref, versionOf(b))
						}
						errs <- err
					}
				}()
			}
			for n := range releases {
				jobs <- n
			}
			close(jobs)
			for range releases {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			setup := time.Since(start)
			plan, err := r.Plan(ctx, registry.RetentionPolicy{Branch: "main", Images: []string{"hyperkube"}, Keep: 5, MaxDeletes: 20,
				KeepCandidates: 14 * 24 * time.Hour, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("retention plan over %d tags on %s: %v (setup %v); %d groups to remove now, %d deferred",
				plan.Tags, dest.name, plan.Took.Round(time.Millisecond), setup.Round(time.Millisecond), len(plan.Remove), len(plan.Deferred))
			if plan.Tags != 2*releases || len(plan.Remove) != 20 || len(plan.Kept) != 5+1 {
				t.Errorf("%d tags, %d to remove, %d kept", plan.Tags, len(plan.Remove), len(plan.Kept))
			}
		})
	}
}

func hex40(n int) string {
	const digits = "0123456789abcdef"
	b := []byte(strings.Repeat("0", 40))
	for i := 11; i >= 0 && n > 0; i-- {
		b[i] = digits[n%16]
		n /= 16
	}
	return string(b)
}

func TestRetentionInLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	r := open(t, registry.Options{LayoutDir: dir})
	ctx := context.Background()
	images := []string{"hyperkube", "kube-proxy"}
	bs := make([]testBuild, 6)
	refs := make([]map[string]string, 6)
	for n := range bs {
		bs[n] = testBranch("release-1.34", n)
		refs[n] = publish(t, r, images, bs[n])
	}
	// Another branch shares the blob store and one layer with every image.
	other := testBranch("release-1.35", 1)
	publish(t, r, images, other)
	blobsBefore := countBlobs(t, dir)

	plan, err := r.Plan(ctx, policy("release-1.34", images, 3))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(plan)
	want := []string{candidateOf(bs[0]), versionOf(bs[0]), candidateOf(bs[1]), versionOf(bs[1]),
		candidateOf(bs[2]), versionOf(bs[2]), candidateOf(bs[3]), candidateOf(bs[4])}
	if got := removedTags(plan); !slices.Equal(got, want) {
		t.Fatalf("Remove = %v\nwant     %v", got, want)
	}
	if err := r.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	for _, im := range images {
		es, err := r.List(ctx, im)
		if err != nil {
			t.Fatal(err)
		}
		var versions []string
		for _, e := range es {
			versions = append(versions, e.Annotations[registry.AnnotationVersion])
		}
		if !slices.Equal(versions, []string{bs[5].version, bs[4].version, bs[3].version, other.version}) {
			t.Errorf("%s keeps %v", im, versions)
		}
		for n, ref := range refs {
			idx, err := r.Get(ctx, ref[im])
			if n < 3 {
				if !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("%s of %s: %v, want it gone", im, versionOf(bs[n]), err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			completeIndex(t, ref[im], idx)
		}
	}
	// Three releases of two images are gone: per image and release an
	// index, two manifests, two configs and two layers of its own.
	if got, want := blobsBefore-countBlobs(t, dir), 3*2*7; got != want {
		t.Errorf("%d blobs freed, want %d", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(mustDigest(t, sharedLayer).String(), "sha256:"))); err != nil {
		t.Errorf("the layer every image shares is gone: %v", err)
	}
}

func countBlobs(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestRetentionOrdersByCreatedNotByPush publishes five releases out of
// order, the two oldest last (a rebuilt old commit, a slow branch): keep 2
// keeps the two newest by their created annotation and the one the moving
// tag names, whatever the order they reached the registry in.
func TestRetentionOrdersByCreatedNotByPush(t *testing.T) {
	for _, dest := range registries {
		t.Run(dest.name, func(t *testing.T) {
			host := dest.start(t, nil)
			r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
			images := []string{"hyperkube"}
			var builds []testBuild
			for n := range 5 {
				builds = append(builds, testBranch("release-1.34", n))
			}
			for _, n := range []int{3, 4, 0, 1, 2} {
				publish(t, r, images, builds[n])
			}
			plan, err := r.Plan(context.Background(), policy("release-1.34", images, 2))
			if err != nil {
				t.Fatal(err)
			}
			var removed []string
			for _, tag := range removedTags(plan) {
				if strings.HasPrefix(tag, "v1.") {
					removed = append(removed, tag)
				}
			}
			slices.Sort(removed)
			// 2 is the moving tag's (promoted last); 3 and 4 are the newest.
			if want := []string{versionOf(builds[0]), versionOf(builds[1])}; !slices.Equal(removed, want) {
				t.Errorf("keep 2 removes the stable tags %v, want %v (ordered by created, never by push)", removed, want)
			}
			for _, n := range []int{2, 3, 4} {
				if !slices.Contains(plan.KeptTags(), versionOf(builds[n])) {
					t.Errorf("keep 2 does not keep %s: kept %v", versionOf(builds[n]), plan.KeptTags())
				}
			}
		})
	}
}
