package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// adminBackend is what promotion and retention need of a destination beyond
// backend: a series of calls on one image with one authentication.
type adminBackend interface {
	// session opens image for the calls of one promotion or one retention
	// plan. write asks for the right to put and delete manifests.
	session(ctx context.Context, image string, write bool) (imageSession, error)
}

// imageSession is one image of a destination, opened by adminBackend.
type imageSession interface {
	// manifest reads the manifest or index d; ErrNotFound when absent.
	manifest(ctx context.Context, d v1.Hash) (rawManifest, error)
	// tagged reads the manifest tag names; nil and no error when no such
	// tag exists.
	tagged(ctx context.Context, tag string) (*rawManifest, error)
	// blob checks that blob desc is present in full: nil, or ErrNotFound.
	blob(ctx context.Context, desc v1.Descriptor) error
	// tags lists every tag of the image, from a complete listing or not at
	// all: a listing that fails or is cut short is an error, never a
	// shorter list. An image never pushed has no tags.
	tags(ctx context.Context) ([]string, error)
	// holds returns the digests the image keeps although no tag names
	// them (a local layout's untagged entries); a registry lists none.
	holds(ctx context.Context) ([]v1.Hash, error)
	// putTag points tag at m by writing m's own bytes under the tag.
	putTag(ctx context.Context, tag string, m rawManifest) error
	// deleteTag removes tag only (DELETE /v2/<name>/manifests/<tag>).
	// A tag already gone is not an error.
	deleteTag(ctx context.Context, tag string) error
	// deleteManifest removes the manifest d (DELETE by digest); a
	// registry may remove the tags that name it with it. A manifest
	// already gone is not an error.
	deleteManifest(ctx context.Context, d v1.Hash) error
	// deletesTags reports whether the destination deletes a tag on its
	// own: nil if it does, errTagDeleteRefused if it refuses, another
	// error if that cannot be told. It changes nothing.
	deletesTags(ctx context.Context) error
}

// batchBackend is implemented by a destination that applies a set of tag
// writes or removals in one step, all or nothing (the local layout rewrites
// index.json once). Promotion and retention use it when present.
type batchBackend interface {
	putTags(ctx context.Context, ws []tagWrite) error
	removeAll(ctx context.Context, rs []imageRemoval) error
}

var (
	_ adminBackend = (*remoteBackend)(nil)
	_ adminBackend = (*layoutBackend)(nil)
	_ batchBackend = (*layoutBackend)(nil)
)

// tagWrite is one tag Promote writes, with what the tag named before so that
// it can be put back.
type tagWrite struct {
	image string
	tag   string
	m     rawManifest
	prev  *rawManifest
}

func (w tagWrite) String() string { return w.image + ":" + w.tag }

// imageRemoval is what retention removes from one image: tags, then, when
// nothing else names it, the manifest.
type imageRemoval struct {
	image          string
	digest         v1.Hash
	tags           []string
	deleteTags     bool
	deleteManifest bool
}

// errTagDeleteRefused is what a registry that deletes manifests by digest
// only answers to a tag deletion (400 or 405, or UNSUPPORTED).
var errTagDeleteRefused = errors.New("the registry does not delete tags, only manifests by digest")

// refusesTagDelete reports whether err is a registry's refusal to delete by
// tag, as opposed to a missing right or a failure.
func refusesTagDelete(err error) bool {
	if errors.Is(err, errTagDeleteRefused) {
		return true
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusBadRequest || te.StatusCode == http.StatusMethodNotAllowed {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.UnsupportedErrorCode {
			return true
		}
	}
	return false
}

// rawManifest is a manifest or index as stored: its bytes, media type and
// digest. It is a remote.Taggable, so a tag write sends exactly these bytes.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
	digest    v1.Hash
}

// RawManifest returns the stored bytes.
func (m rawManifest) RawManifest() ([]byte, error) { return m.raw, nil }

// MediaType returns the stored media type.
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// manifestParts are the fields of a manifest or index that name other
// objects, read as plain JSON so that every media type is followed.
type manifestParts struct {
	MediaType   types.MediaType   `json:"mediaType"`
	Manifests   []v1.Descriptor   `json:"manifests"`
	Config      *v1.Descriptor    `json:"config"`
	Layers      []v1.Descriptor   `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

func parseManifest(m rawManifest) (manifestParts, error) {
	var p manifestParts
	if err := json.Unmarshal(m.raw, &p); err != nil {
		return p, fmt.Errorf("manifest %s is not JSON: %w", m.digest, err)
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	if p.MediaType == "" {
		p.MediaType = m.mediaType
	}
	return p, nil
}

// isIndex reports whether the manifest lists manifests rather than layers.
func (p manifestParts) isIndex() bool {
	return p.MediaType.IsIndex() || (p.Config == nil && len(p.Manifests) > 0)
}

// blobs returns the config and layers a manifest names that a registry
// serves: foreign (non-distributable) layers live elsewhere.
func (p manifestParts) blobs() []v1.Descriptor {
	var out []v1.Descriptor
	if p.Config != nil {
		out = append(out, *p.Config)
	}
	for _, l := range p.Layers {
		if l.MediaType.IsDistributable() {
			out = append(out, l)
		}
	}
	return out
}
