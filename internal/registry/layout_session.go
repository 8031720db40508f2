package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layoutSession is one image of the local OCI layout. A layout needs no
// authentication; the session only names the image.
type layoutSession struct {
	b     *layoutBackend
	image string
}

func (b *layoutBackend) session(_ context.Context, image string, _ bool) (imageSession, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.open(); err != nil {
		return nil, err
	}
	return &layoutSession{b: b, image: image}, nil
}

func (b *layoutBackend) blobPath(d v1.Hash) string {
	return filepath.Join(b.dir, "blobs", d.Algorithm, d.Hex)
}

// readManifest reads blob d and checks that its bytes are d.
func (b *layoutBackend) readManifest(image string, d v1.Hash) (rawManifest, error) {
	raw, err := os.ReadFile(b.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return rawManifest{}, b.notFound(image + "@" + d.String())
	}
	if err != nil {
		return rawManifest{}, fmt.Errorf("read %s@%s in OCI layout %s: %w", image, d, b.dir, err)
	}
	if sum := sha256.Sum256(raw); d.Algorithm != "sha256" || hex.EncodeToString(sum[:]) != d.Hex {
		return rawManifest{}, &Error{Op: "read", Object: image + "@" + d.String() + " in OCI layout " + b.dir, Kind: ErrNotFound,
			Hint: "the file's bytes do not match its digest: the layout is damaged; push the candidate again", redactor: b.red}
	}
	m := rawManifest{raw: raw, digest: d}
	p, err := parseManifest(m)
	if err != nil {
		return rawManifest{}, fmt.Errorf("read %s@%s in OCI layout %s: %w", image, d, b.dir, err)
	}
	m.mediaType = p.MediaType
	return m, nil
}

// indexManifest reads index.json. The caller holds b.mu.
func (b *layoutBackend) indexManifest() (*v1.IndexManifest, error) {
	if _, err := b.open(); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(b.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", b.dir, err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: index.json: %w", b.dir, err)
	}
	return im, nil
}

// rewriteIndex applies edit to index.json and replaces the file in one
// rename, so that a crash leaves the old index or the new one, never half
// of each. The caller holds b.mu.
func (b *layoutBackend) rewriteIndex(edit func(*v1.IndexManifest)) error {
	im, err := b.indexManifest()
	if err != nil {
		return err
	}
	edit(im)
	raw, err := json.Marshal(im)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", b.dir, err)
	}
	tmp, err := os.CreateTemp(b.dir, ".index.json-*")
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", b.dir, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(b.dir, "index.json"))
	}
	if err != nil {
		return fmt.Errorf("write OCI layout %s: index.json: %w", b.dir, err)
	}
	return nil
}

func (s *layoutSession) manifest(_ context.Context, d v1.Hash) (rawManifest, error) {
	return s.b.readManifest(s.image, d)
}

func (s *layoutSession) tagged(_ context.Context, tag string) (*rawManifest, error) {
	s.b.mu.Lock()
	im, err := s.b.indexManifest()
	s.b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationImage] == s.image && d.Annotations[AnnotationRefName] == tag {
			m, err := s.b.readManifest(s.image, d.Digest)
			if err != nil {
				return nil, err
			}
			return &m, nil
		}
	}
	return nil, nil
}

func (s *layoutSession) blob(_ context.Context, desc v1.Descriptor) error {
	object := s.image + "@" + desc.Digest.String()
	fi, err := os.Stat(s.b.blobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return s.b.notFound("blob " + object)
	}
	if err != nil {
		return fmt.Errorf("check blob %s in OCI layout %s: %w", object, s.b.dir, err)
	}
	if desc.Size > 0 && fi.Size() != desc.Size {
		return &Error{Op: "check blob", Object: object + " in OCI layout " + s.b.dir, Kind: ErrNotFound, redactor: s.b.red,
			Hint: fmt.Sprintf("the file holds %d bytes, the manifest names %d: push the candidate again", fi.Size(), desc.Size)}
	}
	return nil
}

// entries returns the image's descriptors in index.json: tags, and the
// digests of entries without a tag.
func (s *layoutSession) entries() (map[string]v1.Hash, []v1.Hash, error) {
	s.b.mu.Lock()
	im, err := s.b.indexManifest()
	s.b.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	tags := map[string]v1.Hash{}
	var untagged []v1.Hash
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationImage] != s.image {
			continue
		}
		if t := d.Annotations[AnnotationRefName]; t != "" {
			tags[t] = d.Digest
		} else {
			untagged = append(untagged, d.Digest)
		}
	}
	return tags, untagged, nil
}

// tags reads index.json, which is always the whole listing.
func (s *layoutSession) tags(context.Context) ([]string, error) {
	tags, _, err := s.entries()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(tags))
	for t := range tags {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

func (s *layoutSession) holds(context.Context) ([]v1.Hash, error) {
	_, untagged, err := s.entries()
	return untagged, err
}

func (s *layoutSession) putTag(ctx context.Context, tag string, m rawManifest) error {
	return s.b.putTags(ctx, []tagWrite{{image: s.image, tag: tag, m: m}})
}

func (s *layoutSession) deleteTag(ctx context.Context, tag string) error {
	tags, _, err := s.entries()
	if err != nil {
		return err
	}
	d, ok := tags[tag]
	if !ok {
		return nil
	}
	return s.b.removeAll(ctx, []imageRemoval{{image: s.image, digest: d, tags: []string{tag}, deleteTags: true}})
}

func (s *layoutSession) deleteManifest(ctx context.Context, d v1.Hash) error {
	return s.b.removeAll(ctx, []imageRemoval{{image: s.image, digest: d, deleteManifest: true}})
}

// deletesTags: a tag of the layout is an entry of index.json, always
// removable.
func (s *layoutSession) deletesTags(context.Context) error { return nil }

// putTags writes every tag in one replacement of index.json: all or none.
func (b *layoutBackend) putTags(_ context.Context, ws []tagWrite) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rewriteIndex(func(im *v1.IndexManifest) {
		for _, w := range ws {
			im.Manifests = slices.DeleteFunc(im.Manifests, tagged(w.image, w.tag))
			im.Manifests = append(im.Manifests, v1.Descriptor{
				MediaType:   w.m.mediaType,
				Digest:      w.m.digest,
				Size:        int64(len(w.m.raw)),
				Annotations: map[string]string{AnnotationImage: w.image, AnnotationRefName: w.tag},
			})
		}
	})
}

// removeAll drops the entries of every removal from index.json in one
// replacement, then deletes the blobs nothing in it refers to any more:
// children and layers another image still uses stay.
func (b *layoutBackend) removeAll(_ context.Context, rs []imageRemoval) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.rewriteIndex(func(im *v1.IndexManifest) {
		im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool {
			for _, r := range rs {
				if d.Annotations[AnnotationImage] != r.image || d.Digest != r.digest {
					continue
				}
				if r.deleteManifest || slices.Contains(r.tags, d.Annotations[AnnotationRefName]) {
					return true
				}
			}
			return false
		})
	})
	if err != nil {
		return err
	}
	p, err := b.open()
	if err != nil {
		return err
	}
	if err := b.collect(p); err != nil {
		return fmt.Errorf("free blobs of OCI layout %s: %w", b.dir, err)
	}
	return nil
}
