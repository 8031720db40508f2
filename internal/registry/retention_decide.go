package registry

import (
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// building is a group with its members as found in the views.
type building struct {
	Group
	members []member
	known   bool
}

type member struct {
	v *imageView
	d v1.Hash
}

// classifyGroups finds the branch's releases and candidates and sorts them into
// kept and eligible for removal (oldest first).
func classifyGroups(pol RetentionPolicy, views []*imageView, imageRef func(string) string) (kept []Group, eligible []*building) {
	releases := map[string]*building{}
	cands := map[string]*building{}
	for _, v := range views {
		digests := make([]v1.Hash, 0, len(v.manifests))
		for d := range v.manifests {
			digests = append(digests, d)
		}
		slices.SortFunc(digests, compareHash)
		for _, d := range digests {
			e := v.manifests[d]
			ver, cand := ownedTags(e.ann, pol.Branch)
			created, ok := (Entry{Annotations: e.ann}).Created()
			for _, x := range []struct {
				tag       string
				set       map[string]*building
				candidate bool
			}{{ver, releases, false}, {cand, cands, true}} {
				if x.tag == "" || !slices.Contains(e.tags, x.tag) {
					continue
				}
				b := x.set[x.tag]
				if b == nil {
					b = &building{Group: Group{Tag: x.tag, Candidate: x.candidate}, known: true}
					x.set[x.tag] = b
				}
				b.members = append(b.members, member{v: v, d: d})
				b.Images = append(b.Images, GroupImage{Image: v.image, Ref: imageRef(v.image) + "@" + d.String(), Digest: d.String()})
				if !ok {
					b.known = false
				} else if created.After(b.Created) {
					b.Created = created
				}
			}
		}
	}
	newestFirst := func(m map[string]*building) []*building {
		out := make([]*building, 0, len(m))
		for _, b := range m {
			if !b.known {
				b.Created = time.Time{}
			}
			out = append(out, b)
		}
		slices.SortFunc(out, func(a, b *building) int {
			if a.known != b.known {
				return boolCmp(!a.known, !b.known) // unknown last
			}
			if c := b.Created.Compare(a.Created); c != 0 {
				return c
			}
			return strings.Compare(b.Tag, a.Tag)
		})
		return out
	}
	moving := BranchTag(pol.Branch)
	namedByMoving := func(b *building) bool {
		for _, m := range b.members {
			if slices.Contains(m.v.manifests[m.d].tags, moving) {
				return true
			}
		}
		return false
	}
	const unordered = "an image has no valid " + AnnotationCreated + " annotation, so it cannot be ordered"
	for n, b := range newestFirst(releases) {
		// Unknown ones sort last, so n counts ordered releases only.
		switch {
		case !b.known:
			b.Reason = unordered
		case n == 0:
			b.Reason = "the newest published image"
		case n < pol.Keep:
			b.Reason = fmt.Sprintf("one of the %d newest", pol.Keep)
		case namedByMoving(b):
			b.Reason = "named by the moving tag " + moving
		default:
			b.Reason = fmt.Sprintf("older than the %d kept", pol.Keep)
			eligible = append(eligible, b)
			continue
		}
		kept = append(kept, b.Group)
	}
	cutoff := pol.Now.Add(-pol.KeepCandidates)
	for n, b := range newestFirst(cands) {
		switch {
		case !b.known:
			b.Reason = unordered
		case n == 0:
			b.Reason = "the newest candidate"
		case !b.Created.Before(cutoff):
			b.Reason = fmt.Sprintf("younger than %s", pol.KeepCandidates)
		default:
			b.Reason = fmt.Sprintf("a candidate older than %s", pol.KeepCandidates)
			eligible = append(eligible, b)
			continue
		}
		kept = append(kept, b.Group)
	}
	slices.SortStableFunc(eligible, func(a, b *building) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	return kept, eligible
}

// key names one manifest of one image.
type key struct {
	image string
	d     v1.Hash
}

// decide fills p's Remove, Deferred and Blocked from the eligible groups.
// deletes says, per image, whether the destination deletes tags.
func decide(p *RetentionPlan, views []*imageView, eligible []*building, deletes map[string]bool) {
	// A group is feasible when each of its images either loses the tag
	// by tag deletion, or, where tags cannot be deleted, loses the whole
	// manifest because nothing that stays names it.
	removedTags := func(set []*building) map[key][]string {
		out := map[key][]string{}
		for _, g := range set {
			for _, m := range g.members {
				k := key{m.v.image, m.d}
				out[k] = append(out[k], g.Tag)
			}
		}
		return out
	}
	holdsOf := func(m member, removed []string) []string {
		var hs []string
		for _, t := range m.v.manifests[m.d].tags {
			if !slices.Contains(removed, t) {
				hs = append(hs, "tagged "+t)
			}
		}
		return append(hs, m.v.held[m.d]...)
	}
	feasible := func(set []*building) (ok, blocked []*building) {
		for {
			removed := removedTags(set)
			ok = nil
			for _, g := range set {
				why := ""
				for _, m := range g.members {
					if deletes[m.v.image] {
						continue
					}
					if hs := holdsOf(m, removed[key{m.v.image, m.d}]); len(hs) > 0 {
						why = fmt.Sprintf("%s cannot lose tag %s: the registry does not delete tags, and the manifest %s stays (%s)",
							m.v.image, g.Tag, m.d, strings.Join(hs, ", "))
						break
					}
				}
				if why == "" {
					ok = append(ok, g)
				} else {
					g.Reason = why
					blocked = append(blocked, g)
				}
			}
			if len(ok) == len(set) {
				// Blocked in any round, in the order they came.
				slices.SortStableFunc(blocked, func(a, b *building) int {
					return slices.Index(eligible, a) - slices.Index(eligible, b)
				})
				return ok, blocked
			}
			set = ok
		}
	}
	ok, blocked := feasible(eligible)
	var within, over []*building
	budget := p.Policy.MaxDeletes
	for _, g := range ok {
		if len(over) == 0 && len(g.members) <= budget {
			budget -= len(g.members)
			within = append(within, g)
			continue
		}
		g.Reason = fmt.Sprintf("over maxDeletes (%d): %s, left for the next run", p.Policy.MaxDeletes, g.Reason)
		over = append(over, g)
	}
	within, capped := feasible(within)
	for _, g := range capped {
		g.Reason += "; it waits for a group deferred by maxDeletes"
	}
	over = append(capped, over...)
	removed := removedTags(within)
	last := map[key]*building{}
	for _, g := range within {
		for _, m := range g.members {
			last[key{m.v.image, m.d}] = g
		}
	}
	for _, g := range within {
		for i, m := range g.members {
			k := key{m.v.image, m.d}
			gi := &g.Images[i]
			gi.DeleteTag = deletes[m.v.image]
			hs := holdsOf(m, removed[k])
			switch {
			case len(hs) > 0:
				gi.Holds = hs
			case last[k] != g:
				gi.Holds = []string{"removed with " + last[k].Tag}
			default:
				gi.DeleteManifest = true
			}
		}
		p.Remove = append(p.Remove, g.Group)
	}
	for _, g := range over {
		p.Deferred = append(p.Deferred, g.Group)
	}
	for _, g := range blocked {
		p.Blocked = append(p.Blocked, g.Group)
	}
	slices.SortStableFunc(p.Deferred, func(a, b Group) int { return a.Created.Compare(b.Created) })
}
