package registry

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hyperfork/hyperfork/internal/killpoint"
)

// ApplyError is a retention that stopped part of the way: Done were
// removed, the rest of the plan was not.
type ApplyError struct {
	// Done are the changes made, "<image ref>:<tag>" for a tag deleted and
	// "<image ref>@<digest>" for a manifest.
	Done []string
	// Err is what stopped it.
	Err error
}

// Error says what was done and what stopped the rest.
func (e *ApplyError) Error() string {
	return fmt.Sprintf("retention stopped after %d changes (%s): %v: run prune again to finish; the plan is made anew from the registry",
		len(e.Done), orNone(e.Done), e.Err)
}

// Unwrap returns what stopped it.
func (e *ApplyError) Unwrap() error { return e.Err }

// Apply carries out plan. It first checks it: a new plan is made with the
// same policy (and the same Now), and if what it would remove differs in
// any way from plan, nothing is deleted and the error wraps ErrConflict
// (the registry changed since; print and apply a new plan). A check that
// cannot list everything deletes nothing either.
//
// Then, oldest group first: in each image, the group's tag is deleted by
// tag, then the manifest by digest where the plan says nothing else names
// it. A registry that refuses a tag deletion the plan counted on gets the
// manifest deleted by digest when the plan deletes it anyway, and stops
// the run otherwise. The local layout drops every entry in one replacement
// of index.json, then deletes the blobs nothing refers to. A failure part
// of the way returns an *ApplyError that lists what was done.
func (r *Repository) Apply(ctx context.Context, plan *RetentionPlan) error {
	if plan == nil {
		return fmt.Errorf("apply retention: no plan: %w", ErrInvalid)
	}
	if len(plan.Remove) == 0 {
		return nil
	}
	if plan.Destination != r.String() {
		return fmt.Errorf("apply retention: the plan is for %s, not %s: %w", plan.Destination, r, ErrInvalid)
	}
	fresh, err := r.Plan(ctx, plan.Policy)
	if err != nil {
		return fmt.Errorf("apply retention of %s: check the plan: %w", plan.Policy.Branch, err)
	}
	if diff := diffRemovals(plan.Remove, fresh.Remove); diff != "" {
		return fmt.Errorf("apply retention of %s in %s: the images changed since the plan was made (%s): nothing was deleted; make a new plan: %w",
			plan.Policy.Branch, r, diff, ErrConflict)
	}
	if bb, ok := r.b.(batchBackend); ok {
		var rs []imageRemoval
		var done []string
		for _, g := range plan.Remove {
			for _, m := range g.Images {
				d, _ := v1.NewHash(m.Digest)
				rs = append(rs, imageRemoval{image: m.Image, digest: d, tags: []string{g.Tag}, deleteTags: true, deleteManifest: m.DeleteManifest})
				done = append(done, r.ImageRef(m.Image)+":"+g.Tag)
			}
		}
		if err := bb.removeAll(ctx, rs); err != nil {
			return &ApplyError{Err: err}
		}
		r.log.Info("retention applied", "branch", plan.Policy.Branch, "removed", done)
		return nil
	}
	ab := r.b.(adminBackend)
	sessions := map[string]imageSession{}
	var done []string
	for _, g := range plan.Remove {
		for _, m := range g.Images {
			s := sessions[m.Image]
			if s == nil {
				if s, err = ab.session(ctx, m.Image, true); err != nil {
					return &ApplyError{Done: done, Err: err}
				}
				sessions[m.Image] = s
			}
			ref := r.ImageRef(m.Image)
			if m.DeleteTag {
				err := s.deleteTag(ctx, g.Tag)
				switch {
				case err == nil:
					done = append(done, ref+":"+g.Tag)
					r.log.Info("deleted tag", "image", ref+":"+g.Tag)
					// Crash tests: part of the plan is applied.
					killpoint.Reach("registry.deleted")
				case refusesTagDelete(err) && m.DeleteManifest:
					// The manifest goes anyway, and its tags with it.
					r.log.Info("the registry refuses tag deletion: deleting the manifest by digest", "image", ref+":"+g.Tag)
				default:
					if refusesTagDelete(err) {
						err = fmt.Errorf("%w (it seemed to delete tags when the plan was made)", err)
					}
					return &ApplyError{Done: done, Err: err}
				}
			}
			if !m.DeleteManifest {
				continue
			}
			d, err := v1.NewHash(m.Digest)
			if err == nil {
				err = s.deleteManifest(ctx, d)
			}
			if err != nil {
				return &ApplyError{Done: done, Err: err}
			}
			done = append(done, ref+"@"+m.Digest)
			r.log.Info("deleted manifest", "image", ref+"@"+m.Digest, "tag", g.Tag)
			killpoint.Reach("registry.deleted")
		}
	}
	r.log.Info("retention applied", "branch", plan.Policy.Branch, "changes", len(done))
	return nil
}

// diffRemovals describes how two plans' removals differ, "" when they do
// not.
func diffRemovals(a, b []Group) string {
	al, bl := removalLines(a), removalLines(b)
	in := func(l string, ls []string) bool { return slices.Contains(ls, l) }
	var diffs []string
	for _, l := range al {
		if !in(l, bl) {
			diffs = append(diffs, "no longer: "+l)
		}
	}
	for _, l := range bl {
		if !in(l, al) {
			diffs = append(diffs, "now also: "+l)
		}
	}
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("and %d more", len(diffs)-3))
	}
	return strings.Join(diffs, "; ")
}

// removalLines spells out every change of a plan, one line each.
func removalLines(gs []Group) []string {
	var out []string
	for _, g := range gs {
		for _, m := range g.Images {
			out = append(out, fmt.Sprintf("%s:%s@%s (tag %v, manifest %v)", m.Image, g.Tag, m.Digest, m.DeleteTag, m.DeleteManifest))
		}
	}
	return out
}
