package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// layoutBackend stores every image in one local OCI image layout. index.json
// holds one descriptor per (image, tag): AnnotationImage says which image,
// AnnotationRefName which tag, as the OCI layout spec names tags.
type layoutBackend struct {
	dir string
	red *hfexec.Redactor
	// mu serialises read-modify-write cycles of index.json, which
	// go-containerregistry does not lock.
	mu sync.Mutex
}

// open returns the layout, creating it when the folder holds none.
func (b *layoutBackend) open() (layout.Path, error) {
	p, err := layout.FromPath(b.dir)
	if err == nil {
		return p, nil
	}
	if _, serr := os.Stat(filepath.Join(b.dir, "index.json")); !errors.Is(serr, fs.ErrNotExist) {
		return "", fmt.Errorf("open OCI layout %s: %w", b.dir, err)
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return "", fmt.Errorf("create OCI layout %s: %w", b.dir, err)
	}
	p, err = layout.Write(b.dir, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	if err != nil {
		return "", fmt.Errorf("create OCI layout %s: %w", b.dir, err)
	}
	return p, nil
}

// descriptors returns index.json's descriptors of image.
func (b *layoutBackend) descriptors(p layout.Path, image string) ([]v1.Descriptor, error) {
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", b.dir, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", b.dir, err)
	}
	var out []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations[AnnotationImage] == image {
			out = append(out, d)
		}
	}
	return out, nil
}

func tagged(image, tag string) match.Matcher {
	return func(d v1.Descriptor) bool {
		return d.Annotations[AnnotationImage] == image && d.Annotations[AnnotationRefName] == tag
	}
}

func (b *layoutBackend) push(_ context.Context, idx Index, image, tag string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.open()
	if err != nil {
		return err
	}
	// ReplaceIndex writes only the blobs the layout lacks, then swaps the
	// descriptor carrying this tag, so a repeated push leaves one entry.
	err = p.ReplaceIndex(idx, tagged(image, tag),
		layout.WithAnnotations(map[string]string{AnnotationImage: image, AnnotationRefName: tag}))
	if err != nil {
		return fmt.Errorf("push %s:%s to OCI layout %s: %w", image, tag, b.dir, err)
	}
	return nil
}

func (b *layoutBackend) resolve(_ context.Context, image, id string) (v1.Hash, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.open()
	if err != nil {
		return v1.Hash{}, err
	}
	ds, err := b.descriptors(p, image)
	if err != nil {
		return v1.Hash{}, err
	}
	for _, d := range ds {
		if d.Annotations[AnnotationRefName] == id {
			return d.Digest, nil
		}
	}
	return v1.Hash{}, b.notFound(image + ":" + id)
}

func (b *layoutBackend) notFound(what string) error {
	return &Error{Op: "find", Object: what + " in OCI layout " + b.dir, Kind: ErrNotFound,
		Hint: "it was never pushed there, or was deleted", redactor: b.red}
}

// find returns a descriptor of image with digest d.
func (b *layoutBackend) find(p layout.Path, image string, d v1.Hash) (v1.Descriptor, error) {
	ds, err := b.descriptors(p, image)
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, desc := range ds {
		if desc.Digest == d {
			return desc, nil
		}
	}
	return v1.Descriptor{}, b.notFound(image + "@" + d.String())
}

func (b *layoutBackend) tag(_ context.Context, image string, d v1.Hash, tags []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.open()
	if err != nil {
		return err
	}
	desc, err := b.find(p, image, d)
	if err != nil {
		return err
	}
	for _, t := range tags {
		nd := desc
		nd.Annotations = map[string]string{AnnotationImage: image, AnnotationRefName: t}
		if err := p.RemoveDescriptors(tagged(image, t)); err != nil {
			return fmt.Errorf("tag %s@%s as %s in OCI layout %s: %w", image, d, t, b.dir, err)
		}
		if err := p.AppendDescriptor(nd); err != nil {
			return fmt.Errorf("tag %s@%s as %s in OCI layout %s: %w", image, d, t, b.dir, err)
		}
	}
	return nil
}

func (b *layoutBackend) list(_ context.Context, image string) ([]Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.open()
	if err != nil {
		return nil, err
	}
	ds, err := b.descriptors(p, image)
	if err != nil {
		return nil, err
	}
	byDigest := map[v1.Hash]*Entry{}
	var es []*Entry
	for _, d := range ds {
		e := byDigest[d.Digest]
		if e == nil {
			raw, err := p.Bytes(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read %s@%s in OCI layout %s: %w", image, d.Digest, b.dir, err)
			}
			ann, err := annotationsOf(raw)
			if err != nil {
				return nil, fmt.Errorf("read %s@%s in OCI layout %s: %w", image, d.Digest, b.dir, err)
			}
			e = &Entry{Digest: d.Digest.String(), Annotations: ann}
			byDigest[d.Digest] = e
			es = append(es, e)
		}
		if t := d.Annotations[AnnotationRefName]; t != "" {
			e.Tags = append(e.Tags, t)
		}
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = *e
	}
	return out, nil
}

// remove drops every descriptor of the image with digest d, then deletes the
// blobs nothing else refers to: retention exists to free the disk.
func (b *layoutBackend) remove(_ context.Context, image string, d v1.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.open()
	if err != nil {
		return err
	}
	if _, err := b.find(p, image, d); err != nil {
		return err
	}
	err = p.RemoveDescriptors(func(desc v1.Descriptor) bool {
		return desc.Digest == d && desc.Annotations[AnnotationImage] == image
	})
	if err != nil {
		return fmt.Errorf("delete %s@%s from OCI layout %s: %w", image, d, b.dir, err)
	}
	if err := b.collect(p); err != nil {
		return fmt.Errorf("delete %s@%s from OCI layout %s: free blobs: %w", image, d, b.dir, err)
	}
	return nil
}

func (b *layoutBackend) get(_ context.Context, image string, d v1.Hash) (Index, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.open()
	if err != nil {
		return nil, err
	}
	if _, err := b.find(p, image, d); err != nil {
		return nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout %s: %w", b.dir, err)
	}
	idx, err := ii.ImageIndex(d)
	if err != nil {
		return nil, fmt.Errorf("read %s@%s in OCI layout %s: %w", image, d, b.dir, err)
	}
	return idx, nil
}

// collect deletes every blob not reachable from index.json. It reads
// manifests as plain JSON so that any media type is followed.
func (b *layoutBackend) collect(p layout.Path) error {
	keep := map[string]bool{}
	raw, err := os.ReadFile(filepath.Join(b.dir, "index.json"))
	if err != nil {
		return err
	}
	if err := b.mark(p, raw, keep); err != nil {
		return err
	}
	root := filepath.Join(b.dir, "blobs")
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if keep[strings.Replace(filepath.ToSlash(rel), "/", ":", 1)] {
			return nil
		}
		return os.Remove(path)
	})
}

// mark records the blobs the manifest or index raw refers to, recursively.
func (b *layoutBackend) mark(p layout.Path, raw []byte, keep map[string]bool) error {
	var m struct {
		Manifests []v1.Descriptor `json:"manifests"`
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Subject   *v1.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	refs := append(append([]v1.Descriptor{}, m.Manifests...), m.Layers...)
	for _, d := range []*v1.Descriptor{m.Config, m.Subject} {
		if d != nil {
			refs = append(refs, *d)
		}
	}
	for _, d := range refs {
		if keep[d.Digest.String()] {
			continue
		}
		keep[d.Digest.String()] = true
		if d.MediaType.IsIndex() || d.MediaType.IsImage() {
			child, err := p.Bytes(d.Digest)
			if errors.Is(err, fs.ErrNotExist) {
				// A platform the layout never held, such as one a foreign
				// index lists; nothing below it to keep.
				continue
			}
			if err != nil {
				return err
			}
			if err := b.mark(p, child, keep); err != nil {
				return err
			}
		}
	}
	return nil
}
