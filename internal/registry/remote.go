package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// remoteBackend stores images in a registry, one repository per image.
type remoteBackend struct {
	r    *Repository
	repo name.Repository
	kc   authn.Keychain
}

// imageRepo is the repository of image.
func (b *remoteBackend) imageRepo(image string) (name.Repository, error) {
	repo, err := name.NewRepository(b.r.ImageRef(image), nameOptions(b.repo.RegistryStr(), b.r.opts.Insecure)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("image %s: %s is not a repository: %w: %v", image, b.r.ImageRef(image), ErrInvalid, err)
	}
	return repo, nil
}

func (b *remoteBackend) options(ctx context.Context) []remote.Option {
	return append(remoteOptions(b.kc), remote.WithContext(ctx))
}

func (b *remoteBackend) fail(op, object string, write bool, err error) error {
	return classify(op, object, b.repo.RegistryStr(), write, err, b.r.red)
}

// push writes the index under the candidate tag. remote.WriteIndex asks the
// registry (HEAD) for every blob and manifest first and uploads only what is
// missing, so pushing an unchanged layer again sends nothing.
func (b *remoteBackend) push(ctx context.Context, idx Index, image, tag string) error {
	repo, err := b.imageRepo(image)
	if err != nil {
		return err
	}
	ref := repo.Tag(tag)
	if err := remote.WriteIndex(ref, idx, b.options(ctx)...); err != nil {
		return b.fail("push", ref.String(), true, err)
	}
	return nil
}

func (b *remoteBackend) resolve(ctx context.Context, image, id string) (v1.Hash, error) {
	repo, err := b.imageRepo(image)
	if err != nil {
		return v1.Hash{}, err
	}
	ref := repo.Tag(id)
	desc, err := remote.Head(ref, b.options(ctx)...)
	if err != nil {
		return v1.Hash{}, b.fail("resolve", ref.String(), false, err)
	}
	return desc.Digest, nil
}

func (b *remoteBackend) tag(ctx context.Context, image string, d v1.Hash, tags []string) error {
	repo, err := b.imageRepo(image)
	if err != nil {
		return err
	}
	ref := repo.Digest(d.String())
	desc, err := remote.Get(ref, b.options(ctx)...)
	if err != nil {
		return b.fail("read", ref.String(), false, err)
	}
	for _, t := range tags {
		if err := remote.Tag(repo.Tag(t), desc, b.options(ctx)...); err != nil {
			return b.fail("tag "+ref.String()+" as", t, true, err)
		}
	}
	return nil
}

// tagsByDigest lists the repository's tags grouped by the digest they point
// at. A registry has no listing of untagged manifests, so those are absent.
func (b *remoteBackend) tagsByDigest(ctx context.Context, repo name.Repository) (map[v1.Hash][]string, error) {
	tags, err := remote.List(repo, b.options(ctx)...)
	if err != nil {
		err = b.fail("list tags of", repo.String(), false, err)
		if errors.Is(err, ErrNotFound) {
			// Nothing pushed yet: an empty repository, not a fault.
			return nil, nil
		}
		return nil, err
	}
	out := map[v1.Hash][]string{}
	for _, t := range tags {
		desc, err := remote.Head(repo.Tag(t), b.options(ctx)...)
		if err != nil {
			err = b.fail("resolve", repo.Tag(t).String(), false, err)
			if errors.Is(err, ErrNotFound) {
				// A tag deleted between listing and reading is simply gone.
				continue
			}
			return nil, err
		}
		out[desc.Digest] = append(out[desc.Digest], t)
	}
	return out, nil
}

func (b *remoteBackend) list(ctx context.Context, image string) ([]Entry, error) {
	repo, err := b.imageRepo(image)
	if err != nil {
		return nil, err
	}
	byDigest, err := b.tagsByDigest(ctx, repo)
	if err != nil {
		return nil, err
	}
	var es []Entry
	for d, tags := range byDigest {
		ref := repo.Digest(d.String())
		desc, err := remote.Get(ref, b.options(ctx)...)
		if err != nil {
			return nil, b.fail("read", ref.String(), false, err)
		}
		ann, err := annotationsOf(desc.Manifest)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ref, err)
		}
		es = append(es, Entry{Digest: d.String(), Tags: tags, Annotations: ann})
	}
	return es, nil
}

// remove deletes the tags first: some registries keep a tag whose manifest
// was deleted by digest (go-containerregistry's does), others refuse to
// delete a tag (distribution answers 405 or UNSUPPORTED) but drop it with the
// manifest. Tag deletion faults are therefore left to the digest deletion to
// report.
func (b *remoteBackend) remove(ctx context.Context, image string, d v1.Hash) error {
	repo, err := b.imageRepo(image)
	if err != nil {
		return err
	}
	byDigest, err := b.tagsByDigest(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range byDigest[d] {
		_ = remote.Delete(repo.Tag(t), b.options(ctx)...)
	}
	ref := repo.Digest(d.String())
	if err := remote.Delete(ref, b.options(ctx)...); err != nil {
		return b.fail("delete", ref.String(), true, err)
	}
	return nil
}

func (b *remoteBackend) get(ctx context.Context, image string, d v1.Hash) (Index, error) {
	repo, err := b.imageRepo(image)
	if err != nil {
		return nil, err
	}
	ref := repo.Digest(d.String())
	idx, err := remote.Index(ref, b.options(ctx)...)
	if err != nil {
		return nil, b.fail("read", ref.String(), false, err)
	}
	return idx, nil
}

// annotationsOf reads the annotations of a raw manifest or index.
func annotationsOf(raw []byte) (map[string]string, error) {
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	return m.Annotations, nil
}
