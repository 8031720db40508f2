package registry

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// snapshotJobs bounds the manifest reads of a snapshot in flight.
const snapshotJobs = 8

// imageView is one image as retention sees it: every tag, what each names,
// and what holds each manifest besides its tags. It is made from one
// complete listing or not at all.
type imageView struct {
	image     string
	tags      map[string]v1.Hash
	manifests map[v1.Hash]*viewEntry
	// held says, per digest, what besides tags keeps it: an index that
	// lists it, or an untagged entry of a layout's index.json.
	held map[v1.Hash][]string
}

// viewEntry is one tagged manifest or index, or an index below one.
type viewEntry struct {
	ann      map[string]string
	tags     []string
	children []v1.Descriptor
}

// snapshot lists every tag of the image and reads the manifest each names.
// Any failure is returned: retention never decides on part of a listing.
func snapshot(ctx context.Context, s imageSession, image string) (*imageView, error) {
	tags, err := s.tags(ctx)
	if err != nil {
		return nil, err
	}
	got := make([]*rawManifest, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(snapshotJobs)
	for i, t := range tags {
		g.Go(func() error {
			m, err := s.tagged(gctx, t)
			if err != nil {
				return err
			}
			if m == nil {
				return fmt.Errorf("tag %s of %s was listed, then was gone: the repository changed while it was read; run again: %w",
					t, image, ErrConflict)
			}
			got[i] = m
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	v := &imageView{image: image, tags: map[string]v1.Hash{}, manifests: map[v1.Hash]*viewEntry{}, held: map[v1.Hash][]string{}}
	for i, t := range tags {
		m := got[i]
		v.tags[t] = m.digest
		e := v.manifests[m.digest]
		if e == nil {
			if e, err = entryOf(*m); err != nil {
				return nil, fmt.Errorf("read %s:%s: %w", image, t, err)
			}
			v.manifests[m.digest] = e
		}
		e.tags = append(e.tags, t)
	}
	// What an index lists is held by it. Indexes below indexes are read
	// too, so that a tagged manifest listed two levels down is held.
	queue := make([]v1.Hash, 0, len(v.manifests))
	for d := range v.manifests {
		queue = append(queue, d)
	}
	slices.SortFunc(queue, func(a, b v1.Hash) int { return compareHash(a, b) })
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, c := range v.manifests[d].children {
			v.held[c.Digest] = append(v.held[c.Digest], "listed by index "+d.String())
			if !c.MediaType.IsIndex() || v.manifests[c.Digest] != nil {
				continue
			}
			m, err := s.manifest(ctx, c.Digest)
			if err != nil {
				// A child gone is not ours to judge here; what matters
				// is that nothing is deleted because of it.
				v.manifests[c.Digest] = &viewEntry{}
				continue
			}
			e, err := entryOf(m)
			if err != nil {
				return nil, fmt.Errorf("read %s@%s: %w", image, c.Digest, err)
			}
			v.manifests[c.Digest] = e
			queue = append(queue, c.Digest)
		}
	}
	holds, err := s.holds(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range holds {
		v.held[d] = append(v.held[d], "an untagged entry of index.json")
	}
	for _, e := range v.manifests {
		slices.Sort(e.tags)
	}
	return v, nil
}

func entryOf(m rawManifest) (*viewEntry, error) {
	p, err := parseManifest(m)
	if err != nil {
		return nil, err
	}
	e := &viewEntry{ann: p.Annotations}
	for _, c := range p.Manifests {
		if c.MediaType.IsDistributable() {
			e.children = append(e.children, c)
		}
	}
	return e, nil
}

func compareHash(a, b v1.Hash) int {
	if a.String() < b.String() {
		return -1
	}
	if a.String() > b.String() {
		return 1
	}
	return 0
}
