package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RetentionPolicy says what retention keeps of one branch's images.
type RetentionPolicy struct {
	// Branch is the fork branch whose images are considered. Images of
	// other branches are never touched.
	Branch string
	// Images are the image names (name: in images/*.yaml) to consider.
	// An image not listed is never touched.
	Images []string
	// Keep is how many published images (releases: the images promoted
	// under one version tag) are kept, newest first by their created
	// annotation; at least 1 (publish.keep).
	Keep int
	// MaxDeletes caps the changes of one run, counted per image of each
	// release or candidate removed; 0 removes nothing (publish.maxDeletes).
	MaxDeletes int
	// KeepCandidates is how old, by its created annotation, a candidate
	// must be for its candidate tag to be removed (publish.keepCandidates).
	KeepCandidates time.Duration
	// Now is the time candidates' age is measured at.
	Now time.Time
}

func (p RetentionPolicy) validate() error {
	var problems []string
	if p.Branch == "" {
		problems = append(problems, "no branch")
	}
	if len(p.Images) == 0 {
		problems = append(problems, "no images")
	}
	for i, im := range p.Images {
		if err := validImage(im); err != nil {
			problems = append(problems, err.Error())
		}
		if slices.Contains(p.Images[:i], im) {
			problems = append(problems, fmt.Sprintf("image %s is named twice", im))
		}
	}
	if p.Keep < 1 {
		problems = append(problems, fmt.Sprintf("keep is %d: at least the newest published image is kept (publish.keep ≥ 1)", p.Keep))
	}
	if p.MaxDeletes < 0 {
		problems = append(problems, fmt.Sprintf("maxDeletes is %d, below 0", p.MaxDeletes))
	}
	if p.KeepCandidates < 0 {
		problems = append(problems, fmt.Sprintf("keepCandidates is %s, below 0", p.KeepCandidates))
	}
	if p.Now.IsZero() {
		problems = append(problems, "now is not set")
	}
	if len(problems) > 0 {
		return fmt.Errorf("retention policy: %s: %w", strings.Join(problems, "; "), ErrInvalid)
	}
	return nil
}

// RetentionPlan is what Apply removes and why, decided from one complete
// listing of every tag of every image of the policy. Making it changes
// nothing.
type RetentionPlan struct {
	Policy RetentionPolicy
	// Destination is the repository or layout, for messages.
	Destination string
	// Tags counts the tags listed, in every image.
	Tags int
	// Kept are the releases and candidates of the branch that stay, newest
	// first, each with why.
	Kept []Group
	// Remove are the releases and candidates Apply removes, oldest first.
	Remove []Group
	// Deferred would be removed but for MaxDeletes: the next run's.
	Deferred []Group
	// Blocked would be removed but cannot be, each with why (a registry
	// that refuses tag deletion, and a manifest something else names).
	Blocked []Group
	// Notes are what the plan could not tell, such as whether the
	// registry deletes tags.
	Notes []string
	// Took is how long the plan took.
	Took time.Duration
}

// Group is one release (the images promoted under one version tag) or one
// candidate (the images pushed under one candidate tag) of the branch.
type Group struct {
	// Tag is the version tag or the candidate tag.
	Tag string
	// Candidate says which of the two.
	Candidate bool
	// Created is the newest created annotation of its images; zero when
	// one has none (such a group is never removed).
	Created time.Time
	// Reason says why the group is kept, removed, deferred or blocked.
	Reason string
	// Images are what the group is made of, in image name order.
	Images []GroupImage
}

// GroupImage is one image of a group, and what removing the group does to
// it.
type GroupImage struct {
	// Image is the image name, Ref its digest reference.
	Image, Ref string
	// Digest is the manifest or index the group's tag names.
	Digest string
	// DeleteTag: the tag is deleted by tag (DELETE /v2/<name>/manifests/<tag>).
	DeleteTag bool
	// DeleteManifest: then the manifest is deleted by digest, nothing else
	// naming it. The registry's garbage collection frees its children and
	// blobs; they are never deleted one by one.
	DeleteManifest bool
	// Holds say what keeps the manifest when DeleteManifest is false:
	// other tags, an index that lists it, or a later group that removes it.
	Holds []string
}

// Deleted returns what Apply removes, one "<image ref>:<tag>@<digest>" per
// image of every group removed.
func (p *RetentionPlan) Deleted() []string {
	out := []string{}
	for _, g := range p.Remove {
		for _, m := range g.Images {
			ref, _, _ := strings.Cut(m.Ref, "@")
			out = append(out, ref+":"+g.Tag+"@"+m.Digest)
		}
	}
	return out
}

// KeptTags returns the version tags of the releases kept, newest first.
func (p *RetentionPlan) KeptTags() []string {
	out := []string{}
	for _, g := range p.Kept {
		if !g.Candidate {
			out = append(out, g.Tag)
		}
	}
	return out
}

// Plan decides what retention removes for one branch, changing nothing
// (the one request that is not a read is a deletion of a tag that cannot
// exist, which tells whether the registry deletes tags). It lists every tag
// of every image; a listing that fails or is cut short, whatever the cause
// (an error, a rate limit that outlasts its Retry-After, a dropped
// connection, a page that does not parse), is an error and there is no
// plan.
//
// Of the branch's images (those whose branch annotation is Branch), a
// release is the set of images carrying one version tag (StableTag of their
// version annotation), a candidate the set carrying one candidate tag.
// Releases are ordered by their created annotation, never by push time; the
// Keep newest stay, and so does the release the branch's moving tag names.
// Candidates older than KeepCandidates go, except the newest. Removing a
// group removes its tag from each of its images; a manifest is deleted too
// only when no other tag names it (a moving tag, another branch's tag, any
// tag a person added) and no index lists it (the children of a multi-arch
// index are never deleted on their own). Where the registry refuses tag
// deletion, a manifest is deleted by digest when nothing else names it, and
// a group that would need a tag deleted is blocked, with why. A group is
// removed from all its images or not at all; groups are taken oldest first
// while MaxDeletes allows.
func (r *Repository) Plan(ctx context.Context, pol RetentionPolicy) (*RetentionPlan, error) {
	start := time.Now()
	if err := pol.validate(); err != nil {
		return nil, err
	}
	pol.Images = slices.Clone(pol.Images)
	fail := func(err error) (*RetentionPlan, error) {
		return nil, fmt.Errorf("plan retention of %s in %s: %w: nothing will be deleted from a partial view", pol.Branch, r, err)
	}
	ab, ok := r.b.(adminBackend)
	if !ok {
		return fail(fmt.Errorf("the destination cannot delete: %w", ErrInvalid))
	}
	views := make([]*imageView, len(pol.Images))
	for i, image := range pol.Images {
		s, err := ab.session(ctx, image, false)
		if err != nil {
			return fail(err)
		}
		if views[i], err = snapshot(ctx, s, image); err != nil {
			return fail(err)
		}
	}
	p := &RetentionPlan{Policy: pol, Destination: r.String()}
	kept, eligible := classifyGroups(pol, views, r.ImageRef)
	p.Kept = kept
	// Only images with something to remove are asked whether they delete
	// tags.
	deletes := map[string]bool{}
	for _, g := range eligible {
		for _, m := range g.Images {
			if _, asked := deletes[m.Image]; asked {
				continue
			}
			// The probe is a DELETE: it needs the right to delete, as a
			// deletion would, to be answered as one would be.
			ws, err := ab.session(ctx, m.Image, true)
			if err == nil {
				err = ws.deletesTags(ctx)
			}
			switch {
			case err == nil:
				deletes[m.Image] = true
			case errors.Is(err, errTagDeleteRefused):
				deletes[m.Image] = false
				p.Notes = append(p.Notes, fmt.Sprintf("%s does not delete tags: manifests are deleted by digest, and only when no tag "+
					"that stays names them", r.ImageRef(m.Image)))
			case ctx.Err() != nil:
				return fail(ctx.Err())
			default:
				deletes[m.Image] = true
				p.Notes = append(p.Notes, fmt.Sprintf("could not tell whether %s deletes tags (%v): Apply will find out", r.ImageRef(m.Image), err))
			}
		}
	}
	decide(p, views, eligible, deletes)
	for _, v := range views {
		p.Tags += len(v.tags)
	}
	p.Took = time.Since(start)
	r.log.Info("retention plan", "branch", pol.Branch, "images", len(pol.Images), "tags", p.Tags, "kept", len(p.Kept),
		"remove", len(p.Remove), "deferred", len(p.Deferred), "blocked", len(p.Blocked), "took", p.Took.Round(time.Millisecond))
	return p, nil
}

// String returns the plan for people: one line per group, then what each
// removal does to each image.
func (p *RetentionPlan) String() string {
	var b strings.Builder
	pol := p.Policy
	fmt.Fprintf(&b, "retention plan for branch %s in %s: %d tags in %d images; keep %d published, candidates for %s, at most %d deletions\n",
		pol.Branch, p.Destination, p.Tags, len(pol.Images), pol.Keep, pol.KeepCandidates, pol.MaxDeletes)
	line := func(verb string, g Group) {
		created := "no created annotation"
		if !g.Created.IsZero() {
			created = g.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "  %-7s %-40s %-20s %s\n", verb, g.Tag, created, g.Reason)
	}
	for _, g := range p.Kept {
		line("keep", g)
	}
	for _, g := range p.Remove {
		line("delete", g)
		for _, m := range g.Images {
			var what []string
			if m.DeleteTag {
				what = append(what, "delete tag")
			}
			if m.DeleteManifest {
				what = append(what, "delete manifest by digest")
			} else {
				what = append(what, "manifest stays: "+strings.Join(m.Holds, ", "))
			}
			fmt.Fprintf(&b, "          %s@%s: %s\n", m.Image, shortDigest(m.Digest), strings.Join(what, ", then "))
		}
	}
	for _, g := range p.Deferred {
		line("defer", g)
	}
	for _, g := range p.Blocked {
		line("blocked", g)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	if len(p.Remove) == 0 {
		b.WriteString("  nothing to delete\n")
	}
	return b.String()
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
