package registry

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"Wed, 01 Oct 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 01 Oct 2025 11:00:00 GMT", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNextPage(t *testing.T) {
	const cur = "http://127.0.0.1:5000/v2/team/hyperkube/tags/list"
	for _, tc := range []struct {
		link, want string
		err        bool
	}{
		{"", "", false},
		{`</v2/team/hyperkube/tags/list?last=b&n=2>; rel="next"`, "http://127.0.0.1:5000/v2/team/hyperkube/tags/list?last=b&n=2", false},
		{`<http://127.0.0.1:5000/v2/x/tags/list?last=b>; rel="next"`, "http://127.0.0.1:5000/v2/x/tags/list?last=b", false},
		{`</first>; rel="first", </v2/x/tags/list?last=c>; rel="next"`, "http://127.0.0.1:5000/v2/x/tags/list?last=c", false},
		{`</v2/x/tags/list?last=c>; rel="prev"`, "", false},
		{`<https://evil.example.com/v2/x/tags/list>; rel="next"`, "", true},
		{`/v2/x/tags/list; rel="next"`, "", true},
	} {
		got, err := nextPage(cur, tc.link)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("nextPage(%q) = %q, %v; want %q, error %v", tc.link, got, err, tc.want, tc.err)
		}
	}
}

func TestBranchTag(t *testing.T) {
	if got := BranchTag("release/1.34"); got != "release-1.34" {
		t.Errorf("BranchTag = %q", got)
	}
	if got := PromotionTags("v1.37.2-12+0123abcd4567ef", "main"); !slices.Equal(got, []string{"v1.37.2-12_0123abcd4567ef", "main"}) {
		t.Errorf("PromotionTags = %v", got)
	}
	if err := validStableTags([]string{"v1", CandidateTag("main", "abc")}); err == nil {
		t.Error("a candidate tag passed as a stable one")
	}
}

// fakeView builds an image view from a compact description.
type fakeManifest struct {
	digest   string
	tags     []string
	branch   string
	version  string
	rev      string
	created  string // RFC 3339, "" for none
	children []string
}

func fakeHash(s string) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064s", s)}
}

func fakeView(image string, ms ...fakeManifest) *imageView {
	v := &imageView{image: image, tags: map[string]v1.Hash{}, manifests: map[v1.Hash]*viewEntry{}, held: map[v1.Hash][]string{}}
	for _, m := range ms {
		ann := map[string]string{AnnotationBranch: m.branch, AnnotationVersion: m.version, AnnotationRevision: m.rev}
		if m.created != "" {
			ann[AnnotationCreated] = m.created
		}
		e := &viewEntry{ann: ann, tags: m.tags}
		for _, c := range m.children {
			e.children = append(e.children, v1.Descriptor{Digest: fakeHash(c), MediaType: types.OCIManifestSchema1})
			v.held[fakeHash(c)] = append(v.held[fakeHash(c)], "listed by index "+fakeHash(m.digest).String())
		}
		v.manifests[fakeHash(m.digest)] = e
		for _, t := range m.tags {
			v.tags[t] = fakeHash(m.digest)
		}
	}
	return v
}

func planOf(t *testing.T, pol RetentionPolicy, deletes bool, views ...*imageView) *RetentionPlan {
	t.Helper()
	p := &RetentionPlan{Policy: pol}
	kept, eligible := classifyGroups(pol, views, func(im string) string { return "reg/" + im })
	p.Kept = kept
	caps := map[string]bool{}
	for _, v := range views {
		caps[v.image] = deletes
	}
	decide(p, views, eligible, caps)
	return p
}

func tagsOfGroups(gs []Group) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Tag)
	}
	return out
}

func TestDecide(t *testing.T) {
	pol := RetentionPolicy{Branch: "main", Images: []string{"hyperkube"}, Keep: 1, MaxDeletes: 10, KeepCandidates: time.Hour,
		Now: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)}
	rel := func(d, version, created string, extra ...string) fakeManifest {
		return fakeManifest{digest: d, branch: "main", version: version, rev: d + strings.Repeat("0", 11), created: created,
			tags: append([]string{StableTag(version)}, extra...)}
	}

	t.Run("moving tag and unordered images are kept", func(t *testing.T) {
		p := planOf(t, pol, true, fakeView("hyperkube",
			rel("a", "v1.0.0", "2025-09-01T00:00:00Z", "main"), // rolled back to: the moving tag names it
			rel("b", "v1.1.0", "2025-09-02T00:00:00Z"),
			rel("c", "v1.2.0", "2025-09-03T00:00:00Z"),
			rel("d", "v0.9.0", ""), // no created annotation
		))
		if got := tagsOfGroups(p.Remove); !slices.Equal(got, []string{"v1.1.0"}) {
			t.Errorf("Remove = %v, want v1.1.0 only", got)
		}
		if got := tagsOfGroups(p.Kept); !slices.Equal(got, []string{"v1.2.0", "v1.0.0", "v0.9.0"}) {
			t.Errorf("Kept = %v", got)
		}
	})

	t.Run("a manifest an index lists is not deleted", func(t *testing.T) {
		// b, a single-platform release, is also listed by c's index.
		cIdx := rel("c", "v1.2.0", "2025-09-03T00:00:00Z")
		cIdx.children = []string{"b"}
		p := planOf(t, pol, true, fakeView("hyperkube", rel("b", "v1.1.0", "2025-09-02T00:00:00Z"), cIdx))
		if len(p.Remove) != 1 || p.Remove[0].Images[0].DeleteManifest || !p.Remove[0].Images[0].DeleteTag {
			t.Fatalf("Remove = %+v, want v1.1.0's tag only", p.Remove)
		}
		if h := p.Remove[0].Images[0].Holds; len(h) != 1 || !strings.Contains(h[0], "listed by index") {
			t.Errorf("Holds = %v", h)
		}
		// Without tag deletion it cannot be removed at all.
		p = planOf(t, pol, false, fakeView("hyperkube", rel("b", "v1.1.0", "2025-09-02T00:00:00Z"), cIdx))
		if len(p.Remove) != 0 || len(p.Blocked) != 1 || !strings.Contains(p.Blocked[0].Reason, "listed by index") {
			t.Errorf("without tag delete: Remove %v, Blocked %+v", tagsOfGroups(p.Remove), p.Blocked)
		}
	})

	t.Run("another branch's image is never touched", func(t *testing.T) {
		foreign := rel("x", "v9.0.0", "2020-01-01T00:00:00Z")
		foreign.branch = "release-9"
		p := planOf(t, pol, true, fakeView("hyperkube", foreign, rel("c", "v1.2.0", "2025-09-03T00:00:00Z")))
		if len(p.Remove) != 0 || len(p.Kept) != 1 {
			t.Errorf("Remove %v, Kept %v", tagsOfGroups(p.Remove), tagsOfGroups(p.Kept))
		}
	})

	t.Run("a release is removed from all its images or none", func(t *testing.T) {
		// kube-proxy's v1.1.0 is also tagged by hand; without tag deletion
		// hyperkube's v1.1.0 must stay too.
		pol := pol
		pol.Images = []string{"hyperkube", "kube-proxy"}
		hk := fakeView("hyperkube", rel("b", "v1.1.0", "2025-09-02T00:00:00Z"), rel("c", "v1.2.0", "2025-09-03T00:00:00Z"))
		kp := fakeView("kube-proxy", rel("e", "v1.1.0", "2025-09-02T00:00:00Z", "pinned"), rel("f", "v1.2.0", "2025-09-03T00:00:00Z"))
		p := planOf(t, pol, false, hk, kp)
		if len(p.Remove) != 0 || len(p.Blocked) != 1 || len(p.Blocked[0].Images) != 2 {
			t.Errorf("Remove %v, Blocked %+v", tagsOfGroups(p.Remove), p.Blocked)
		}
		p = planOf(t, pol, true, hk, kp)
		if len(p.Remove) != 1 || !p.Remove[0].Images[0].DeleteManifest || p.Remove[0].Images[1].DeleteManifest {
			t.Errorf("with tag delete: %+v", p.Remove)
		}
	})
}
