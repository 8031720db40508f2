package registry

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// LayoutScheme starts the references of images in a local OCI layout:
// "oci-layout://<absolute folder>/<image>@sha256:…".
const LayoutScheme = "oci-layout://"

// Options says where images go.
type Options struct {
	// Ref is the repository images are pushed to, such as
	// "registry.example.com/team/hyperkube" (see the package doc for how an
	// image name maps to a repository). Empty: the local OCI layout.
	Ref string
	// LayoutDir is the local OCI image layout's folder, used when Ref is
	// empty; it is created if missing.
	LayoutDir string
	// Insecure speaks plain HTTP to the registry. A registry on loopback
	// always gets plain HTTP.
	Insecure bool
	// Username and Password authenticate to Ref's registry. Empty: the
	// user's Docker config and credential helpers.
	Username string
	Password string
	// Logger receives one line per change; nil discards.
	Logger *slog.Logger
}

// Entry is one image in a repository.
type Entry struct {
	// Digest is the index digest, "sha256:…".
	Digest string
	// Ref is the digest reference, usable with Get, Tag and Delete.
	Ref string
	// Tags are the tags that point at Digest, sorted.
	Tags []string
	// Annotations are the index's annotations (see the Annotation* keys).
	Annotations map[string]string
}

// Created returns the org.opencontainers.image.created annotation, the time
// retention orders by, and whether it was present and valid.
func (e Entry) Created() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, e.Annotations[AnnotationCreated])
	return t, err == nil
}

// backend is one kind of destination: a registry or a local OCI layout. Images
// are addressed by their name and a tag or digest; references are the
// Repository's business.
type backend interface {
	push(ctx context.Context, idx Index, image, tag string) error
	resolve(ctx context.Context, image, id string) (v1.Hash, error)
	tag(ctx context.Context, image string, d v1.Hash, tags []string) error
	list(ctx context.Context, image string) ([]Entry, error)
	remove(ctx context.Context, image string, d v1.Hash) error
	get(ctx context.Context, image string, d v1.Hash) (Index, error)
}

var (
	_ backend = (*remoteBackend)(nil)
	_ backend = (*layoutBackend)(nil)
)

// Repository is where a pipeline's images go. It is safe for concurrent use;
// use one Repository per destination so that changes to a local layout's
// index.json are serialised.
type Repository struct {
	opts Options
	// prefix is Ref in canonical form, or LayoutScheme plus the folder.
	prefix string
	b      backend
	log    *slog.Logger
	red    *hfexec.Redactor
}

// Open checks opts and returns the destination. It does not contact the
// registry: the first operation does, and reports a fault there.
func Open(opts Options) (*Repository, error) {
	r := &Repository{opts: opts, log: opts.Logger, red: hfexec.NewRedactor(opts.Password)}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if opts.Ref == "" {
		if opts.LayoutDir == "" {
			return nil, fmt.Errorf("open image destination: neither a registry nor a layout folder is set: %w", ErrInvalid)
		}
		dir, err := filepath.Abs(opts.LayoutDir)
		if err != nil {
			return nil, fmt.Errorf("open OCI layout %s: %w", opts.LayoutDir, err)
		}
		r.prefix = LayoutScheme + filepath.ToSlash(dir)
		r.b = &layoutBackend{dir: dir, red: r.red}
		return r, nil
	}
	host := hostOf(opts.Ref)
	repo, err := name.NewRepository(opts.Ref, nameOptions(host, opts.Insecure)...)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: not a repository such as registry.example.com/team/hyperkube: %w: %v",
			opts.Ref, ErrInvalid, err)
	}
	r.prefix = repo.Name()
	creds := []Credentials{{Registry: repo.RegistryStr(), Username: opts.Username, Password: opts.Password}}
	r.b = &remoteBackend{r: r, repo: repo, kc: keychain(creds)}
	return r, nil
}

// String returns the destination, for messages.
func (r *Repository) String() string { return r.prefix }

// ImageRef returns where image is stored, without tag or digest: Ref itself
// when its last path element is image, else Ref + "/" + image; for a layout,
// LayoutScheme + folder + "/" + image.
func (r *Repository) ImageRef(image string) string {
	if r.opts.Ref != "" && (r.prefix == image || strings.HasSuffix(r.prefix, "/"+image)) {
		return r.prefix
	}
	return r.prefix + "/" + image
}

// PushCandidate stores idx as a candidate of image built from commit on
// branch, reachable only by CandidateTag(branch, commit) and never by a stable
// tag, and returns its digest reference. Blobs the destination already holds
// are not sent again.
func (r *Repository) PushCandidate(ctx context.Context, idx Index, image, branch, commit string) (string, error) {
	if branch == "" || commit == "" {
		return "", fmt.Errorf("push candidate of %s: branch %q and commit %q must both be set: %w", image, branch, commit, ErrInvalid)
	}
	tag := CandidateTag(branch, commit)
	if err := validImage(image); err != nil {
		return "", err
	}
	if err := validTag(tag); err != nil {
		return "", fmt.Errorf("push candidate of %s: %w: %w", image, ErrInvalid, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("push candidate of %s: %w", image, err)
	}
	start := time.Now()
	if err := r.b.push(ctx, idx, image, tag); err != nil {
		return "", err
	}
	ref := r.ImageRef(image) + "@" + d.String()
	r.log.Info("pushed candidate", "image", ref, "tag", tag, "took", time.Since(start).Round(time.Millisecond))
	return ref, nil
}

// Tag points tags at the image ref names (a digest or tag reference as
// returned by PushCandidate or List). A tag that pointed elsewhere moves.
func (r *Repository) Tag(ctx context.Context, ref string, tags ...string) error {
	for _, t := range tags {
		if err := validTag(t); err != nil {
			return fmt.Errorf("tag %s: %w: %w", ref, ErrInvalid, err)
		}
	}
	image, d, err := r.lookup(ctx, ref)
	if err != nil {
		return err
	}
	if err := r.b.tag(ctx, image, d, tags); err != nil {
		return err
	}
	r.log.Info("tagged image", "image", r.ImageRef(image)+"@"+d.String(), "tags", tags)
	return nil
}

// List returns the tagged images of image, newest first by their
// org.opencontainers.image.created annotation (never by push time), then by
// digest. A repository that does not exist yet holds no images.
func (r *Repository) List(ctx context.Context, image string) ([]Entry, error) {
	if err := validImage(image); err != nil {
		return nil, err
	}
	es, err := r.b.list(ctx, image)
	if err != nil {
		return nil, err
	}
	for i := range es {
		es[i].Ref = r.ImageRef(image) + "@" + es[i].Digest
		slices.Sort(es[i].Tags)
	}
	slices.SortFunc(es, func(a, b Entry) int {
		ta, _ := a.Created()
		tb, _ := b.Created()
		if c := tb.Compare(ta); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	return es, nil
}

// Delete removes the image ref names and every tag that points at it.
func (r *Repository) Delete(ctx context.Context, ref string) error {
	image, d, err := r.lookup(ctx, ref)
	if err != nil {
		return err
	}
	if err := r.b.remove(ctx, image, d); err != nil {
		return err
	}
	r.log.Info("deleted image", "image", r.ImageRef(image)+"@"+d.String())
	return nil
}

// Get reads the image ref names back.
func (r *Repository) Get(ctx context.Context, ref string) (Index, error) {
	image, d, err := r.lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.b.get(ctx, image, d)
}

// lookup parses ref and resolves it to the image name and index digest.
func (r *Repository) lookup(ctx context.Context, ref string) (string, v1.Hash, error) {
	image, id, err := r.parseRef(ref)
	if err != nil {
		return "", v1.Hash{}, err
	}
	if d, err := v1.NewHash(id); err == nil {
		return image, d, nil
	}
	d, err := r.b.resolve(ctx, image, id)
	return image, d, err
}

// parseRef splits a reference into image name and tag or digest. It accepts
// full references (ImageRef plus ":tag" or "@sha256:…") and, as a shorthand,
// "<image>:tag" or "<image>@sha256:…" relative to this destination.
func (r *Repository) parseRef(ref string) (image, id string, err error) {
	rest, ok := strings.CutPrefix(ref, r.prefix+"/")
	switch {
	case ok:
	case r.opts.Ref != "" && strings.Contains(ref, "/"):
		// A full reference may be spelled differently (Docker Hub's short
		// form); compare canonical names.
		pr, perr := name.ParseReference(ref, nameOptions(hostOf(ref), r.opts.Insecure)...)
		if perr != nil {
			return "", "", fmt.Errorf("%s is not an image reference: %w", ref, ErrInvalid)
		}
		repo := pr.Context().Name()
		if repo != r.prefix && !strings.HasPrefix(repo, r.prefix+"/") {
			return "", "", fmt.Errorf("%s is not in %s: %w", ref, r.prefix, ErrInvalid)
		}
		rest = strings.TrimPrefix(strings.TrimPrefix(repo, r.prefix), "/") + sep(pr) + pr.Identifier()
	case !strings.Contains(ref, "/"):
		rest = ref
	default:
		return "", "", fmt.Errorf("%s is not in %s: %w", ref, r.prefix, ErrInvalid)
	}
	// rest is "<image>@<digest>", "<image>:<tag>", or, for the repository
	// named like its image, "@<digest>" / ":<tag>".
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		image, id = rest[:i], rest[i+1:]
	} else if i := strings.LastIndex(rest, ":"); i >= 0 {
		image, id = rest[:i], rest[i+1:]
	} else {
		return "", "", fmt.Errorf("%s names no tag or digest: %w", ref, ErrInvalid)
	}
	if image == "" {
		image = r.prefix[strings.LastIndex(r.prefix, "/")+1:]
	}
	if err := validImage(image); err != nil {
		return "", "", err
	}
	return image, id, nil
}

func sep(r name.Reference) string {
	if _, ok := r.(name.Digest); ok {
		return "@"
	}
	return ":"
}

// validImage checks an image name: one lower-case repository path element.
func validImage(image string) error {
	if image == "" || strings.ContainsAny(image, "/:@ ") || strings.ToLower(image) != image {
		return fmt.Errorf("%q is not an image name (one lower-case path element, as name: in images/*.yaml): %w",
			image, ErrInvalid)
	}
	return nil
}
