package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/hyperfork/hyperfork/internal/killpoint"
)

// checkJobs bounds the HEAD requests of a completeness check in flight per
// image, and promoteJobs the images checked at once.
const (
	checkJobs   = 8
	promoteJobs = 4
)

// rollbackTimeout bounds the rollback of a failed promotion, which runs even
// when the promotion's context was cancelled.
const rollbackTimeout = time.Minute

// Promoted is what a promotion did.
type Promoted struct {
	// Images maps each image name to its digest reference, as given.
	Images map[string]string
	// Tags are the tags every image now carries, in the order written:
	// the moving tag last.
	Tags []string
	// Written lists the tag writes this call made, as "<image>:<tag>", in
	// order. A tag that already named the digest is not written again, so
	// repeating a promotion writes nothing.
	Written []string
	// Manifests and Blobs count what the completeness check found present.
	Manifests, Blobs int
	// Took is how long the promotion took, check included.
	Took time.Duration
}

// PromoteError is a promotion that failed after it wrote tags. Every tag it
// wrote was rolled back (pointed back at what it named before, or deleted)
// except those in Left, which still name the candidate.
type PromoteError struct {
	// Written are the tag writes made before the failure, "<image>:<tag>".
	Written []string
	// RolledBack are the writes undone again.
	RolledBack []string
	// Left are the writes that could not be undone, each with why.
	Left []string
	// Err is the failure.
	Err error
}

// Error says what failed, what was undone and what is left.
func (e *PromoteError) Error() string {
	msg := fmt.Sprintf("promote: %v; wrote %s before the failure", e.Err, orNone(e.Written))
	if len(e.Left) == 0 {
		return msg + ", all rolled back: no image was promoted; run again"
	}
	return msg + fmt.Sprintf("; rolled back %s; left %s: promote the same candidate again to complete it",
		orNone(e.RolledBack), strings.Join(e.Left, ", "))
}

// Unwrap returns the failure.
func (e *PromoteError) Unwrap() error { return e.Err }

// candidate is one image of a promotion, as checked.
type candidate struct {
	name    string
	digest  v1.Hash
	s       imageSession
	index   rawManifest
	ann     map[string]string
	missing []string
	prev    map[string]*rawManifest
	// manifests and blobs count what the check found.
	manifests, blobs int
}

// Promote gives tested candidates their stable tags: all the images, or none.
// images maps each image name to the digest reference of its candidate (as
// PushCandidate returned it); tags are the stable tags, normally
// PromotionTags(version, branch). No candidate tag can be given, and no tag
// reference: a digest is what was tested.
//
// Nothing is written until every image passed the check: its index, every
// manifest that index names and every blob those name are in the
// destination in full (by digest, with the size recorded); every image
// carries the created annotation retention orders by, and all are of one
// build (the same revision and branch annotations); and no tag other than
// the moving one (BranchTag of the images' branch) names another digest
// already, since a published version never moves. A failed check names
// everything missing at once.
//
// A tag is written by putting the index's own bytes under it: no rebuild, no
// upload. The moving tag of every image is written after every other tag of
// every image, so that the branch's tag never names a release that is not
// complete. If a write fails, every tag this call wrote is rolled back, last
// first: pointed back at the digest it named before, or deleted. A registry
// that refuses tag deletion cannot take a new version tag back: the
// *PromoteError names it in Left, while the moving tags, which are put back
// rather than deleted, name the previous release again. Repeating the same
// promotion completes it, since a tag that already names the candidate is
// not written again. The local OCI layout writes every tag in one
// replacement of index.json, all or nothing.
//
// Retention later removes the version tag (StableTag of the version
// annotation) and the candidate tag only; any other tag given here holds
// the image it names for as long as it names it.
func (r *Repository) Promote(ctx context.Context, images map[string]string, tags []string) (Promoted, error) {
	start := time.Now()
	if err := validStableTags(tags); err != nil {
		return Promoted{}, fmt.Errorf("promote: %w", err)
	}
	if len(images) == 0 {
		return Promoted{}, fmt.Errorf("promote: no images given: %w", ErrInvalid)
	}
	ab, ok := r.b.(adminBackend)
	if !ok {
		return Promoted{}, fmt.Errorf("promote to %s: the destination cannot promote: %w", r, ErrInvalid)
	}
	names := slices.Sorted(maps.Keys(images))
	cands := make([]*candidate, len(names))
	for i, n := range names {
		image, id, err := r.parseRef(images[n])
		if err != nil {
			return Promoted{}, fmt.Errorf("promote %s: %w", n, err)
		}
		if image != n {
			return Promoted{}, fmt.Errorf("promote %s: %s is a reference to image %s: %w", n, images[n], image, ErrInvalid)
		}
		d, err := v1.NewHash(id)
		if err != nil {
			return Promoted{}, fmt.Errorf("promote %s: %s is not a digest reference (ref@sha256:…): only the digest that was tested is promoted: %w",
				n, images[n], ErrInvalid)
		}
		cands[i] = &candidate{name: n, digest: d}
	}

	// Check every image before writing anything.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(promoteJobs)
	for _, c := range cands {
		g.Go(func() error { return r.checkCandidate(gctx, ab, c, tags) })
	}
	if err := g.Wait(); err != nil {
		return Promoted{}, fmt.Errorf("promote: %w: nothing was tagged", err)
	}
	var missing []string
	for _, c := range cands {
		missing = append(missing, c.missing...)
	}
	if len(missing) > 0 {
		return Promoted{}, &Error{Op: "promote", Object: "the candidate in " + r.String(), Kind: ErrNotFound, redactor: r.red,
			Hint: fmt.Sprintf("%d objects are missing: %s; nothing was tagged: push the candidate again (build with HYPERFORK_FORCE=1)",
				len(missing), strings.Join(missing, "; "))}
	}
	moving, err := r.agree(cands)
	if err != nil {
		return Promoted{}, fmt.Errorf("promote: %w: nothing was tagged", err)
	}

	// The order of writes: every fixed tag of every image, then the moving
	// tags. What already names the candidate is not written again.
	var writes []tagWrite
	var conflicts []string
	for _, pass := range []bool{false, true} {
		for _, c := range cands {
			for _, t := range tags {
				if (t == moving) != pass {
					continue
				}
				prev := c.prev[t]
				if prev != nil && prev.digest == c.digest {
					continue
				}
				if prev != nil && t != moving {
					conflicts = append(conflicts, fmt.Sprintf("%s:%s names %s", r.ImageRef(c.name), t, prev.digest))
					continue
				}
				writes = append(writes, tagWrite{image: c.name, tag: t, m: c.index, prev: prev})
			}
		}
	}
	if len(conflicts) > 0 {
		return Promoted{}, fmt.Errorf("promote: %s already: a published tag never moves to another digest; nothing was tagged "+
			"(the version was published from another build: give it a new version, or delete the old tag by hand): %w",
			strings.Join(conflicts, ", "), ErrConflict)
	}
	sessions := map[string]imageSession{}
	for _, c := range cands {
		sessions[c.name] = c.s
	}
	written, err := r.writeTags(ctx, sessions, writes)
	if err != nil {
		return Promoted{}, r.rollback(ctx, sessions, written, err)
	}
	out := Promoted{Images: map[string]string{}, Tags: slices.Clone(tags), Took: time.Since(start)}
	slices.SortStableFunc(out.Tags, func(a, b string) int {
		return boolCmp(a == moving, b == moving)
	})
	for _, c := range cands {
		out.Images[c.name] = r.ImageRef(c.name) + "@" + c.digest.String()
		out.Manifests += c.manifests
		out.Blobs += c.blobs
	}
	for _, w := range writes {
		out.Written = append(out.Written, w.String())
	}
	r.log.Info("promoted", "images", len(cands), "tags", out.Tags, "written", len(out.Written),
		"manifests", out.Manifests, "blobs", out.Blobs, "took", out.Took.Round(time.Millisecond))
	return out, nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// checkCandidate reads c's index, checks that everything below it is
// present, and reads what each tag names now.
func (r *Repository) checkCandidate(ctx context.Context, ab adminBackend, c *candidate, tags []string) error {
	s, err := ab.session(ctx, c.name, true)
	if err != nil {
		return err
	}
	c.s = s
	ref := r.ImageRef(c.name) + "@" + c.digest.String()
	idx, err := s.manifest(ctx, c.digest)
	if errors.Is(err, ErrNotFound) {
		c.missing = append(c.missing, ref+" itself")
		return nil
	}
	if err != nil {
		return err
	}
	parts, err := parseManifest(idx)
	if err != nil {
		return fmt.Errorf("read %s: %w", ref, err)
	}
	c.index, c.ann = idx, parts.Annotations
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(checkJobs)
	seen := map[v1.Hash]bool{c.digest: true}
	miss := func(what string) {
		mu.Lock()
		c.missing = append(c.missing, what)
		mu.Unlock()
	}
	// walk checks what parts names; it runs in the caller's goroutine for
	// manifests (few) and fans blob HEADs (many) out.
	var walk func(parts manifestParts, where string) error
	walk = func(parts manifestParts, where string) error {
		c.manifests++
		for _, b := range parts.blobs() {
			if seen[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			g.Go(func() error {
				err := s.blob(gctx, b)
				switch {
				case errors.Is(err, ErrNotFound):
					miss(fmt.Sprintf("blob %s (%s of %s)", b.Digest, b.MediaType, where))
				case err != nil:
					return err
				default:
					mu.Lock()
					c.blobs++
					mu.Unlock()
				}
				return nil
			})
		}
		for _, m := range parts.Manifests {
			if !m.MediaType.IsDistributable() || seen[m.Digest] {
				continue
			}
			seen[m.Digest] = true
			child := fmt.Sprintf("manifest %s", m.Digest)
			if m.Platform != nil {
				child += " (" + m.Platform.String() + ")"
			}
			raw, err := s.manifest(gctx, m.Digest)
			if errors.Is(err, ErrNotFound) {
				miss(child + " of " + ref)
				continue
			}
			if err != nil {
				return err
			}
			cp, err := parseManifest(raw)
			if err != nil {
				return fmt.Errorf("read %s of %s: %w", child, ref, err)
			}
			if err := walk(cp, child+" of "+ref); err != nil {
				return err
			}
		}
		return nil
	}
	werr := walk(parts, ref)
	if err := g.Wait(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	c.prev = map[string]*rawManifest{}
	for _, t := range tags {
		m, err := s.tagged(ctx, t)
		if err != nil {
			return err
		}
		c.prev[t] = m
	}
	return nil
}

// agree checks that the images are of one build and returns their moving
// tag ("" when they name no branch).
func (r *Repository) agree(cands []*candidate) (string, error) {
	first := cands[0]
	for _, c := range cands {
		if _, ok := (Entry{Annotations: c.ann}).Created(); !ok {
			return "", fmt.Errorf("%s@%s has no valid %s annotation (RFC 3339), which retention orders by: pack it with Created set: %w",
				r.ImageRef(c.name), c.digest, AnnotationCreated, ErrInvalid)
		}
		for _, k := range []string{AnnotationRevision, AnnotationBranch} {
			if c.ann[k] != first.ann[k] {
				return "", fmt.Errorf("the images are not of one build: %s has %s=%q, %s has %q: %w",
					first.name, k, first.ann[k], c.name, c.ann[k], ErrInvalid)
			}
		}
	}
	if b := first.ann[AnnotationBranch]; b != "" {
		return BranchTag(b), nil
	}
	return "", nil
}

// writeTags makes the writes in order and returns those that succeeded.
func (r *Repository) writeTags(ctx context.Context, sessions map[string]imageSession, writes []tagWrite) ([]tagWrite, error) {
	if bb, ok := r.b.(batchBackend); ok {
		if err := bb.putTags(ctx, writes); err != nil {
			return nil, err
		}
		return writes, nil
	}
	for i, w := range writes {
		if err := sessions[w.image].putTag(ctx, w.tag, w.m); err != nil {
			return writes[:i], err
		}
		// Crash tests: some of the promotion's tags are written.
		killpoint.Reach("registry.tagged")
	}
	return writes, nil
}

// rollback undoes written, last first, and returns the *PromoteError.
func (r *Repository) rollback(ctx context.Context, sessions map[string]imageSession, written []tagWrite, cause error) error {
	e := &PromoteError{Err: cause}
	if len(written) == 0 {
		return fmt.Errorf("promote: %w: nothing was tagged", cause)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	for i := len(written) - 1; i >= 0; i-- {
		w := written[i]
		e.Written = append([]string{w.String()}, e.Written...)
		s := sessions[w.image]
		var err error
		if w.prev != nil {
			err = s.putTag(ctx, w.tag, *w.prev)
		} else {
			err = s.deleteTag(ctx, w.tag)
		}
		if err != nil {
			why := err.Error()
			if refusesTagDelete(err) {
				why = "the registry refuses tag deletion"
			}
			e.Left = append(e.Left, fmt.Sprintf("%s (%s)", w, why))
			continue
		}
		e.RolledBack = append(e.RolledBack, w.String())
	}
	r.log.Warn("promotion failed and was rolled back", "written", e.Written, "rolledBack", e.RolledBack, "left", e.Left, "err", cause)
	return e
}
