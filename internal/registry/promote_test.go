package registry_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// fiveImages are a Kubernetes candidate as images/ ships it, less one.
var fiveImages = []string{"hyperkube", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

func TestPromoteFiveImages(t *testing.T) {
	for _, dest := range registries {
		t.Run(dest.name, func(t *testing.T) {
			var rec ocitest.Recorder
			host := dest.start(t, rec.Wrap)
			r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
			ctx := context.Background()
			old := publish(t, r, fiveImages, testBranch("release-1.34", 1))
			b := testBranch("release-1.34", 2)
			refs := pushCandidate(t, r, fiveImages, b)
			rec.Reset()

			tags := registry.PromotionTags(b.version, b.branch)
			p, err := r.Promote(ctx, refs, tags)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("promotion of a %d-image candidate on %s: %v (%d manifests and %d blobs checked, %d tags written, %d requests)",
				len(fiveImages), dest.name, p.Took.Round(time.Millisecond), p.Manifests, p.Blobs, len(p.Written), len(rec.Requests()))
			if !slices.Equal(p.Tags, []string{"v1.34.2_fork.1", "release-1.34"}) {
				t.Errorf("Tags = %v", p.Tags)
			}
			if len(p.Written) != 10 || p.Manifests != 15 || p.Blobs != 25 {
				t.Errorf("written %v, %d manifests, %d blobs checked; want 10 writes, 15 manifests (5 indexes, 10 platforms), "+
					"25 blobs (per image 2 configs, 2 own layers and the shared one)", p.Written, p.Manifests, p.Blobs)
			}
			// The moving tag of every image is written after every version
			// tag of every image.
			for i, w := range p.Written {
				if moving := strings.HasSuffix(w, ":release-1.34"); moving != (i >= 5) {
					t.Errorf("write %d is %s: the moving tags must come last", i, w)
				}
			}
			reqs := rec.Requests()
			if n := rec.BlobUploads(); n != 0 {
				t.Errorf("promotion uploaded %d blobs: %v", n, reqs)
			}
			if puts := writes(reqs, http.MethodPut, "/manifests/"); len(puts) != 10 {
				t.Errorf("%d manifest PUTs, want 10: %v", len(puts), puts)
			}
			for _, im := range fiveImages {
				repo := r.ImageRef(im)
				want := strings.TrimPrefix(refs[im], repo+"@")
				for _, tag := range tags {
					if got := digestOf(t, repo, tag); got != want {
						t.Errorf("%s:%s names %s, want the candidate %s", repo, tag, got, want)
					}
				}
				if got := digestOf(t, repo, "v1.34.1_fork.1"); got != strings.TrimPrefix(old[im], repo+"@") {
					t.Errorf("the previous version tag of %s moved", im)
				}
			}

			// Again: nothing to write.
			rec.Reset()
			again, err := r.Promote(ctx, refs, tags)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Written) != 0 || len(writes(rec.Requests(), http.MethodPut, "/")) != 0 {
				t.Errorf("a repeated promotion wrote %v", again.Written)
			}
		})
	}
}

func TestPromoteRefusesIncompleteCandidate(t *testing.T) {
	for _, dest := range registries {
		t.Run(dest.name, func(t *testing.T) {
			var rec ocitest.Recorder
			host := dest.start(t, rec.Wrap)
			r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
			ctx := context.Background()
			b := testBranch("release-1.34", 1)
			refs := pushCandidate(t, r, fiveImages, b)

			// One layer of kube-scheduler's arm64 manifest goes missing.
			sched := r.ImageRef("kube-scheduler")
			idx, err := remote.Index(mustRef(t, refs["kube-scheduler"]))
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			arm, err := idx.Image(im.Manifests[1].Digest)
			if err != nil {
				t.Fatal(err)
			}
			layers, _ := arm.Layers()
			lost, _ := layers[1].Digest()
			req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/"+strings.TrimPrefix(sched, host+"/")+"/blobs/"+lost.String(), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("delete blob: %v %v", resp, err)
			}
			resp.Body.Close()
			rec.Reset()

			_, err = r.Promote(ctx, refs, registry.PromotionTags(b.version, b.branch))
			t.Log(err)
			if !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			for _, want := range []string{lost.String(), "linux/arm64", "kube-scheduler", "nothing was tagged"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %q", want)
				}
			}
			if puts := writes(rec.Requests(), http.MethodPut, "/manifests/"); len(puts) != 0 {
				t.Errorf("tags were written: %v", puts)
			}
			for _, image := range fiveImages {
				if tags := tagsOf(t, r.ImageRef(image)); tags["release-1.34"] || tags["v1.34.1_fork.1"] {
					t.Errorf("%s got a stable tag: %v", image, tags)
				}
			}
		})
	}
}

func TestPromoteRollsBackHalfWay(t *testing.T) {
	for _, tc := range []struct {
		name        string
		noTagDelete bool
	}{{"tag delete", false}, {"no tag delete", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var faults ocitest.Faults
			host := ocitest.StartRegistryWith(t, faults.Wrap)
			r := open(t, registry.Options{Ref: host + "/team/hyperkube"})
			ctx := context.Background()
			images := []string{"hyperkube", "kube-proxy", "kube-scheduler"}
			prev := publish(t, r, images, testBranch("release-1.34", 1))
			b := testBranch("release-1.34", 2)
			refs := pushCandidate(t, r, images, b)

			// Every version tag is written, then the second moving tag
			// fails: the registry fails every attempt.
			faults.Add(t, ocitest.Fault{Method: http.MethodPut, URL: `/kube-scheduler/manifests/release-1\.34$`, Status: http.StatusInternalServerError})
			if tc.noTagDelete {
				faults.Add(t, ocitest.TagDeleteRefused())
			}
			_, err := r.Promote(ctx, refs, registry.PromotionTags(b.version, b.branch))
			t.Log(err)
			var pe *registry.PromoteError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PromoteError", err)
			}
			// Images go in name order: hyperkube, kube-proxy, kube-scheduler.
			if len(pe.Written) != 5 {
				t.Errorf("Written = %v, want the 3 version tags and the moving tags of hyperkube and kube-proxy", pe.Written)
			}
			for _, im := range images {
				repo := r.ImageRef(im)
				if got, want := digestOf(t, repo, "release-1.34"), strings.TrimPrefix(prev[im], repo+"@"); got != want {
					t.Errorf("%s:release-1.34 names %s after the rollback, want the previous release %s", im, got, want)
				}
				version := digestOf(t, repo, "v1.34.2_fork.1")
				switch {
				case !tc.noTagDelete && version != "":
					t.Errorf("%s:v1.34.2_fork.1 survived the rollback", im)
				case tc.noTagDelete && version == "":
					t.Errorf("%s:v1.34.2_fork.1 is gone, though the registry refuses tag deletion", im)
				}
			}
			if tc.noTagDelete {
				if len(pe.Left) != 3 || !strings.Contains(err.Error(), "promote the same candidate again") {
					t.Errorf("Left = %v, want the three version tags", pe.Left)
				}
			} else if len(pe.Left) != 0 || len(pe.RolledBack) != 5 {
				t.Errorf("RolledBack = %v, Left = %v", pe.RolledBack, pe.Left)
			}

			// The registry recovers: promoting again completes it.
			faults.Clear()
			p, err := r.Promote(ctx, refs, registry.PromotionTags(b.version, b.branch))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("second attempt wrote %v", p.Written)
			for _, im := range images {
				repo := r.ImageRef(im)
				if got := digestOf(t, repo, "release-1.34"); got != strings.TrimPrefix(refs[im], repo+"@") {
					t.Errorf("%s:release-1.34 = %s after the second attempt", im, got)
				}
			}
		})
	}
}

func TestPromoteRefuses(t *testing.T) {
	host := ocitest.StartRegistry(t)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	ctx := context.Background()
	b := testBranch("release-1.34", 1)
	refs := pushCandidate(t, r, []string{"hyperkube"}, b)
	for _, tc := range []struct {
		name   string
		images map[string]string
		tags   []string
		want   error
	}{
		{"candidate tag", refs, []string{registry.CandidateTag("main", "0123456789abcdef")}, registry.ErrInvalid},
		{"no tags", refs, nil, registry.ErrInvalid},
		{"tag twice", refs, []string{"v1", "v1"}, registry.ErrInvalid},
		{"invalid tag", refs, []string{"v1.34.1+fork.1"}, registry.ErrInvalid},
		{"tag reference", map[string]string{"hyperkube": r.ImageRef("hyperkube") + ":" + registry.CandidateTag(b.branch, b.revision)},
			[]string{"v1"}, registry.ErrInvalid},
		{"wrong name", map[string]string{"kube-proxy": refs["hyperkube"]}, []string{"v1"}, registry.ErrInvalid},
		{"no images", nil, []string{"v1"}, registry.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Promote(ctx, tc.images, tc.tags)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("published version elsewhere", func(t *testing.T) {
		// Another build claims the version that is already published.
		publish(t, r, []string{"hyperkube"}, b)
		other := b
		other.revision = strings.Repeat("f", 40)
		again := pushCandidate(t, r, []string{"hyperkube"}, other)
		_, err := r.Promote(ctx, again, registry.PromotionTags(b.version, b.branch))
		t.Log(err)
		if !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), "v1.34.1_fork.1") {
			t.Fatalf("err = %v, want ErrConflict naming the version tag", err)
		}
		if got := digestOf(t, r.ImageRef("hyperkube"), "release-1.34"); got == strings.TrimPrefix(again["hyperkube"], r.ImageRef("hyperkube")+"@") {
			t.Error("the moving tag moved to the refused build")
		}
	})

	t.Run("no created annotation", func(t *testing.T) {
		bad := b
		bad.revision = strings.Repeat("e", 40)
		bad.omitCreated = true
		idx := buildIndex(t, "hyperkube", bad)
		ref, err := r.PushCandidate(ctx, idx, "hyperkube", bad.branch, bad.revision)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Promote(ctx, map[string]string{"hyperkube": ref}, []string{"v9"})
		t.Log(err)
		if !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), registry.AnnotationCreated) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPromoteInLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	r := open(t, registry.Options{LayoutDir: dir})
	ctx := context.Background()
	images := []string{"hyperkube", "kube-proxy", "kube-scheduler"}
	publish(t, r, images, testBranch("release-1.34", 1))
	b := testBranch("release-1.34", 2)
	refs := pushCandidate(t, r, images, b)
	p, err := r.Promote(ctx, refs, registry.PromotionTags(b.version, b.branch))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("promotion of %d images in a layout: %v", len(images), p.Took)
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, _ := lp.ImageIndex()
	im, _ := ii.IndexManifest()
	got := map[string]string{}
	for _, d := range im.Manifests {
		got[d.Annotations[registry.AnnotationImage]+":"+d.Annotations[registry.AnnotationRefName]] = d.Digest.String()
	}
	for _, name := range images {
		want := refs[name][strings.LastIndex(refs[name], "@")+1:]
		for _, tag := range []string{"release-1.34", "v1.34.2_fork.1", registry.CandidateTag(b.branch, b.revision)} {
			if got[name+":"+tag] != want {
				t.Errorf("%s:%s = %q, want %s", name, tag, got[name+":"+tag], want)
			}
		}
	}
	if len(im.Manifests) != 3*5 {
		t.Errorf("index.json has %d entries, want 15 (two candidates, two versions, one moving tag per image)", len(im.Manifests))
	}

	// A candidate with a blob gone is refused, and index.json is untouched.
	c := testBranch("release-1.34", 3)
	refs = pushCandidate(t, r, images, c)
	idx, err := r.Get(ctx, refs["kube-proxy"])
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	img, _ := idx.Image(m.Manifests[0].Digest)
	cfg, _ := img.ConfigName()
	if err := removeBlob(dir, cfg.String()); err != nil {
		t.Fatal(err)
	}
	_, err = r.Promote(ctx, refs, registry.PromotionTags(c.version, c.branch))
	t.Log(err)
	if !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), cfg.String()) {
		t.Fatalf("err = %v, want ErrNotFound naming the config %s", err, cfg)
	}
	es, _ := r.List(ctx, "hyperkube")
	for _, e := range es {
		if slices.Contains(e.Tags, "v1.34.3_fork.1") {
			t.Errorf("hyperkube was promoted although kube-proxy is incomplete: %v", e.Tags)
		}
	}
}
