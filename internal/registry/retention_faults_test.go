package registry_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// These tests inject, through ocitest.Faults, what a real registry does only
// on its own terms, and check that retention never deletes on a view it
// could not complete or a plan the registry has moved away from.

func TestRetentionNeverDeletesFromAPartialListing(t *testing.T) {
	ctx := context.Background()
	images := []string{"hyperkube"}
	setup := func(t *testing.T) (*registry.Repository, *ocitest.Faults, *ocitest.Recorder) {
		var faults ocitest.Faults
		var rec ocitest.Recorder
		// Four tags a page, as a registry that paginates on its own.
		host := ocitest.StartRegistryWith(t, chain(rec.Wrap, faults.Wrap, ocitest.Paginate(4)))
		r := open(t, registry.Options{Ref: host + "/hyperkube"})
		for n := range 6 {
			publish(t, r, images, testBranch("release-1.34", n))
		}
		rec.Reset()
		return r, &faults, &rec
	}

	t.Run("paginated", func(t *testing.T) {
		r, _, rec := setup(t)
		plan, err := r.Plan(ctx, policy("release-1.34", images, 3))
		if err != nil {
			t.Fatal(err)
		}
		if plan.Tags != 13 || len(writes(rec.Requests(), http.MethodGet, "/tags/list")) != 4 {
			t.Fatalf("%d tags from %v, want 13 over 4 pages", plan.Tags, writes(rec.Requests(), http.MethodGet, "/tags/list"))
		}
	})

	// The second page of the listing: "last=" is in its query.
	const page2 = `/tags/list\?.*last=`
	for _, tc := range []struct {
		name  string
		fault ocitest.Fault
	}{
		{"connection dropped", ocitest.Fault{URL: page2, Drop: true}},
		{"body cut short", ocitest.Fault{URL: page2, Truncate: true}},
		{"server error", ocitest.Fault{URL: page2, Status: http.StatusInternalServerError}},
		{"rate limited beyond Retry-After", ocitest.RateLimited(page2, 0, time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, faults, rec := setup(t)
			faults.Add(t, tc.fault)
			plan, err := r.Plan(ctx, policy("release-1.34", images, 3))
			t.Log(err)
			if err == nil || plan != nil {
				t.Fatalf("a plan from a partial listing: %v", plan)
			}
			if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), "nothing will be deleted") {
				t.Errorf("err = %v, want ErrUnreachable saying nothing will be deleted", err)
			}
			if d := writes(rec.Requests(), http.MethodDelete, "/"); len(d) != 0 {
				t.Errorf("deleted %v", d)
			}
		})
	}

	t.Run("check before apply fails half-way", func(t *testing.T) {
		r, faults, rec := setup(t)
		plan, err := r.Plan(ctx, policy("release-1.34", images, 3))
		if err != nil || len(plan.Remove) == 0 {
			t.Fatalf("plan: %v, %v", plan, err)
		}
		rec.Reset()
		faults.Add(t, ocitest.Fault{URL: page2, Drop: true})
		err = r.Apply(ctx, plan)
		t.Log(err)
		if err == nil {
			t.Fatal("Apply deleted on a listing cut short")
		}
		if d := writes(rec.Requests(), http.MethodDelete, "/"); len(d) != 0 {
			t.Errorf("deleted %v", d)
		}
		faults.Clear()
		if tags := tagsOf(t, r.ImageRef("hyperkube")); len(tags) != 13 {
			t.Errorf("%d tags left, want all 13", len(tags))
		}
	})
}

func TestRetentionWaitsAsRetryAfterAsks(t *testing.T) {
	var faults ocitest.Faults
	host := ocitest.StartRegistryWith(t, faults.Wrap)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	for n := range 4 {
		publish(t, r, []string{"hyperkube"}, testBranch("release-1.34", n))
	}
	faults.Add(t, ocitest.RateLimited(`/tags/list`, 1, time.Second))
	plan, err := r.Plan(context.Background(), policy("release-1.34", []string{"hyperkube"}, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(faults.Injected()) != 1 || plan.Took < time.Second || plan.Tags != 9 {
		t.Errorf("injected %v, took %v, %d tags: want one 429, a wait of 1 s, then the whole listing", faults.Injected(), plan.Took, plan.Tags)
	}
}

func TestRetentionWithoutTagDelete(t *testing.T) {
	var faults ocitest.Faults
	var rec ocitest.Recorder
	host := ocitest.Proxy(t, ocitest.StartDistribution(t, ocitest.DistributionOptions{}), chain(rec.Wrap, faults.Wrap))
	faults.Add(t, ocitest.TagDeleteRefused())
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	ctx := context.Background()
	images := []string{"hyperkube"}
	bs := make([]testBuild, 5)
	refs := make([]string, 5)
	for n := range bs {
		bs[n] = testBranch("release-1.34", n)
		refs[n] = publish(t, r, images, bs[n])["hyperkube"]
	}
	// Someone pinned v1.34.1 under a tag of their own.
	if err := r.Tag(ctx, refs[1], "pinned"); err != nil {
		t.Fatal(err)
	}
	plan, err := r.Plan(ctx, policy("release-1.34", images, 2))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(plan)
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "does not delete tags") {
		t.Errorf("Notes = %v", plan.Notes)
	}
	if got, want := removedTags(plan), []string{candidateOf(bs[0]), versionOf(bs[0]), candidateOf(bs[2]), versionOf(bs[2])}; !slices.Equal(got, want) {
		t.Errorf("Remove = %v, want %v", got, want)
	}
	if got, want := groupTags(plan.Blocked), []string{candidateOf(bs[1]), versionOf(bs[1]), candidateOf(bs[3])}; !slices.Equal(got, want) {
		t.Errorf("Blocked = %v, want %v", got, want)
	}
	for _, g := range plan.Blocked {
		if !strings.Contains(g.Reason, "does not delete tags") {
			t.Errorf("blocked %s: %s", g.Tag, g.Reason)
		}
	}
	if !strings.Contains(plan.String(), "tagged pinned") {
		t.Error("the plan does not say that pinned holds v1.34.1")
	}
	rec.Reset()
	if err := r.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if d := writes(rec.Requests(), http.MethodDelete, "/manifests/sha256:"); len(d) != 2 {
		t.Errorf("deleted by digest %v, want v1.34.0 and v1.34.2", d)
	}
	tags := tagsOf(t, r.ImageRef("hyperkube"))
	for _, b := range []testBuild{bs[0], bs[2]} {
		if tags[versionOf(b)] || tags[candidateOf(b)] {
			t.Errorf("%s survived the deletion of its manifest", versionOf(b))
		}
	}
	for _, tag := range []string{"pinned", versionOf(bs[1]), candidateOf(bs[1]), candidateOf(bs[3]), versionOf(bs[3]), versionOf(bs[4])} {
		if !tags[tag] {
			t.Errorf("lost %s", tag)
		}
	}
	complete(t, refs[1])

	t.Run("deletes off", func(t *testing.T) {
		host := ocitest.StartDistribution(t, ocitest.DistributionOptions{NoDelete: true})
		r := open(t, registry.Options{Ref: host + "/hyperkube"})
		for n := range 4 {
			publish(t, r, images, testBranch("release-1.34", n))
		}
		plan, err := r.Plan(ctx, policy("release-1.34", images, 2))
		if err != nil {
			t.Fatal(err)
		}
		err = r.Apply(ctx, plan)
		t.Log(err)
		var ae *registry.ApplyError
		if !errors.As(err, &ae) || !errors.Is(err, registry.ErrDenied) || len(ae.Done) != 0 {
			t.Fatalf("err = %v, want an *ApplyError with nothing done, wrapping ErrDenied", err)
		}
	})
}

func TestRetentionStalePlan(t *testing.T) {
	var rec ocitest.Recorder
	host := ocitest.StartRegistryWith(t, rec.Wrap)
	r := open(t, registry.Options{Ref: host + "/hyperkube"})
	ctx := context.Background()
	var refs []string
	for n := range 5 {
		refs = append(refs, publish(t, r, []string{"hyperkube"}, testBranch("release-1.34", n))["hyperkube"])
	}
	plan, err := r.Plan(ctx, policy("release-1.34", []string{"hyperkube"}, 3))
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile, someone pins the oldest release.
	if err := r.Tag(ctx, refs[0], "pinned"); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	err = r.Apply(ctx, plan)
	t.Log(err)
	if !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	for _, d := range writes(rec.Requests(), http.MethodDelete, "/") {
		if !strings.Contains(d, "hyperfork-probe-") {
			t.Errorf("a stale plan deleted %s", d)
		}
	}
}
