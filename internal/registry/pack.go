// Package registry makes images from built binaries and moves them to and
// within their destination: a registry, or a local OCI image layout. It is the
// only package that imports go-containerregistry.
//
// Naming. publish.registry (Options.Ref) names a repository. An image whose
// name equals the last element of that repository is stored in it; any other
// image is stored in a repository under it: with Ref
// "registry.example.com/team/hyperkube", the image "hyperkube" goes to
// registry.example.com/team/hyperkube and the image "kube-proxy" to
// registry.example.com/team/hyperkube/kube-proxy. See Repository.ImageRef.
//
// Candidates. A freshly built image is pushed under CandidateTag only; stable
// tags (StableTag of the version, and the branch name) are added by Tag after
// the tests passed.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"golang.org/x/sync/errgroup"

	"github.com/hyperfork/hyperfork/internal/config"
	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// Index is a multi-platform image. It is an alias so that callers can hold
// one without importing go-containerregistry.
type Index = v1.ImageIndex

// Scratch is the base that means "no base": the image holds the binaries only.
const Scratch = "scratch"

// HyperkubeBinary is the multi-call dispatcher the build stage produces for an
// image with hyperkube: true; Pack adds it to such an image.
const HyperkubeBinary = "hyperkube"

// defaultPath is PATH for an image whose base sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// PackSpec is everything Pack needs; equal specs over equal files give
// byte-identical indexes.
type PackSpec struct {
	// Image is the images/*.yaml definition.
	Image config.Image
	// Platforms are "os/arch[/variant]", such as "linux/arm64".
	Platforms []string
	// BinDir is the BuildKit local exporter's folder: one sub-folder per
	// platform named os_arch[_variant] holding the binaries.
	BinDir string
	// Created dates the config and its history; use the commit time. Zero
	// means the Unix epoch, never the clock. The layers' files have a
	// fixed date (see Pack).
	Created time.Time
	// Annotations are set on the index and on every manifest (see the
	// Annotation* keys). AnnotationCreated defaults to Created.
	Annotations map[string]string
	// Labels are added to Image.Labels and override them.
	Labels map[string]string
	// Auth holds credentials for registries the base is pulled from; others
	// use the Docker config.
	Auth []Credentials
	// Insecure pulls the base over plain HTTP (always so on loopback).
	Insecure bool
	// Logger receives one line per platform; nil discards.
	Logger *slog.Logger
}

// Pack makes a multi-platform image from the binaries in spec.BinDir: for each
// platform, the base image for that platform plus one layer per binary, in
// name order, holding it at /usr/local/bin/<name> (mode 0755, dated
// 2000-01-01 whatever the commit, so that an unchanged binary gives the same
// layer in every build). Nothing is pushed.
//
// Each binary's compressed layer is kept in <platform folder>/.layers/, so
// that another image holding the same binary, or the next build where it did
// not change, reuses it instead of compressing it again; only a binary that
// changed is compressed, and a push uploads only its layer.
//
// The layers are not held in memory: the returned index reads the binaries
// (or their kept layers) from spec.BinDir whenever it is pushed, so keep that
// folder, unchanged, until the push returns.
func Pack(ctx context.Context, spec PackSpec) (Index, error) {
	img := spec.Image
	if img.Name == "" {
		return nil, fmt.Errorf("pack: image has no name (%s): %w", img.File, ErrInvalid)
	}
	if len(spec.Platforms) == 0 {
		return nil, fmt.Errorf("pack image %s: no platforms: set build.platforms: %w", img.Name, ErrInvalid)
	}
	bins, err := binaries(img)
	if err != nil {
		return nil, err
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	ann := maps.Clone(spec.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	if _, ok := ann[AnnotationCreated]; !ok {
		ann[AnnotationCreated] = created.Format(time.RFC3339)
	}
	log := spec.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	plats := make([]*v1.Platform, len(spec.Platforms))
	dirs := make([]string, len(spec.Platforms))
	seen := map[string]bool{}
	for i, ps := range spec.Platforms {
		p, err := parsePlatform(ps)
		if err != nil {
			return nil, fmt.Errorf("pack image %s: %w", img.Name, err)
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("pack image %s: platform %s is listed twice: %w", img.Name, ps, ErrInvalid)
		}
		seen[p.String()] = true
		if dirs[i], err = platformDir(spec.BinDir, *p, len(spec.Platforms) == 1, bins); err != nil {
			return nil, fmt.Errorf("pack image %s for %s: %w", img.Name, p, err)
		}
		plats[i] = p
	}
	// Platforms pack in parallel, and within each the binaries: hashing
	// and compressing them is the cost, bounded by the CPUs. The index
	// keeps the given order.
	manifests := make([]v1.Image, len(plats))
	errs := make([]error, len(plats))
	cpus := make(chan struct{}, runtime.GOMAXPROCS(0))
	var g errgroup.Group
	for i, p := range plats {
		g.Go(func() error {
			m, err := packPlatform(ctx, spec, *p, dirs[i], bins, created, ann, cpus)
			if err != nil {
				errs[i] = err
				return nil
			}
			d, _ := m.Digest()
			log.Info("packed image", "image", img.Name, "platform", p.String(), "digest", d.String())
			manifests[i] = m
			return nil
		})
	}
	_ = g.Wait()
	// The first platform's error in the given order, so the message does
	// not depend on which goroutine lost the race.
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, m := range manifests {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        m,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: plats[i]},
		})
	}
	out := mutate.Annotations(idx, ann).(v1.ImageIndex)
	// Compute now so that a malformed index fails here, not in the push.
	if _, err := out.Digest(); err != nil {
		return nil, fmt.Errorf("pack image %s: %w", img.Name, err)
	}
	return out, nil
}

// binaries returns the file names the image holds, sorted and checked.
func binaries(img config.Image) ([]string, error) {
	names := slices.Clone(img.Binaries)
	if img.Hyperkube && !slices.Contains(names, HyperkubeBinary) {
		names = append(names, HyperkubeBinary)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("pack image %s: no binaries: list them under binaries: in %s: %w", img.Name, img.File, ErrInvalid)
	}
	slices.Sort(names)
	for i, n := range names {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
			return nil, fmt.Errorf("pack image %s: %q is not a file name: %w", img.Name, n, ErrInvalid)
		}
		if i > 0 && names[i-1] == n {
			return nil, fmt.Errorf("pack image %s: binary %s is listed twice: %w", img.Name, n, ErrInvalid)
		}
	}
	return names, nil
}

func parsePlatform(s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" || p.OSVersion != "" {
		return nil, fmt.Errorf("platform %q is not os/arch[/variant]: %w", s, ErrInvalid)
	}
	return p, nil
}

// platformDir finds the folder BuildKit's local exporter wrote the platform's
// binaries to: os_arch[_variant]. arm64/v8 is also looked up without its
// variant, which BuildKit drops when it normalises the platform. A
// single-platform build is exported without the platform folder.
func platformDir(binDir string, p v1.Platform, single bool, bins []string) (string, error) {
	cands := []string{p.OS + "_" + p.Architecture}
	if p.Variant != "" {
		cands = append([]string{cands[0] + "_" + p.Variant}, cands...)
		if p.Variant != "v8" || p.Architecture != "arm64" {
			cands = cands[:1]
		}
	}
	for _, c := range cands {
		dir := filepath.Join(binDir, c)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir, nil
		}
	}
	if single {
		if _, err := os.Stat(filepath.Join(binDir, bins[0])); err == nil {
			return binDir, nil
		}
	}
	return "", fmt.Errorf("no folder %s in %s: the build did not export binaries for this platform: %w",
		cands[0], binDir, ErrNotFound)
}

// packPlatform makes the image of one platform. Each binary's layer is made
// while holding one of cpus.
func packPlatform(ctx context.Context, spec PackSpec, p v1.Platform, dir string, bins []string,
	created time.Time, ann map[string]string, cpus chan struct{}) (v1.Image, error) {
	img := spec.Image
	base, baseAnn, err := pullBase(ctx, spec, p)
	if err != nil {
		return nil, err
	}
	layers := make([]*binLayer, len(bins))
	lerrs := make([]error, len(bins))
	var g errgroup.Group
	for i, b := range bins {
		g.Go(func() error {
			cpus <- struct{}{}
			defer func() { <-cpus }()
			if ctx.Err() == nil {
				layers[i], lerrs[i] = newBinLayer(dir, b)
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pack image %s for %s: %w", img.Name, p.String(), err)
	}
	for _, err := range lerrs {
		if err != nil {
			return nil, fmt.Errorf("pack image %s for %s: %w; was it built? check build.targets and binaries: in %s",
				img.Name, p.String(), err, img.File)
		}
	}
	cfg, adds, err := baseParts(base)
	if err != nil {
		return nil, fmt.Errorf("pack image %s for %s: read base %s: %w", img.Name, p.String(), img.Base, err)
	}
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: created}
	cfg.RootFS.Type = "layers"
	for _, l := range layers {
		diffID, _ := l.DiffID()
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hyperfork pack: COPY " + l.file.name + " /" + binDir + "/",
		})
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	}
	if len(img.Entrypoint) > 0 {
		// As in a Dockerfile, a new entrypoint drops the base's arguments.
		cfg.Config.Entrypoint, cfg.Config.Cmd = slices.Clone(img.Entrypoint), nil
	}
	cfg.Config.Env = withPath(cfg.Config.Env)
	labels := maps.Clone(cfg.Config.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, img.Labels)
	maps.Copy(labels, spec.Labels)
	cfg.Config.Labels = labels

	m, err := mutate.Append(ociScratch(), adds...)
	if err != nil {
		return nil, fmt.Errorf("pack image %s for %s: %w", img.Name, p.String(), err)
	}
	if m, err = mutate.ConfigFile(m, cfg); err != nil {
		return nil, fmt.Errorf("pack image %s for %s: %w", img.Name, p.String(), err)
	}
	all := maps.Clone(ann)
	maps.Copy(all, baseAnn)
	return mutate.Annotations(m, all).(v1.Image), nil
}

// ociScratch is the empty image with OCI media types: the index is OCI, so
// its manifests are too.
func ociScratch() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// baseParts returns a copy of base's config and its layers as addenda with
// OCI media types. The image is rebuilt on an empty OCI image rather than
// mutated, so that a Docker-typed base gives a consistent OCI manifest; the
// layer bytes, and so their digests, are unchanged.
func baseParts(base v1.Image) (*v1.ConfigFile, []mutate.Addendum, error) {
	if base == nil {
		return &v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}}, nil, nil
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	layers, err := base.Layers()
	if err != nil {
		return nil, nil, err
	}
	var adds []mutate.Addendum
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, nil, err
		}
		switch mt {
		case types.DockerLayer:
			mt = types.OCILayer
		case types.DockerUncompressedLayer:
			mt = types.OCIUncompressedLayer
		}
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: mt})
	}
	return cf.DeepCopy(), adds, nil
}

// pullBase returns the base image for p (nil for scratch) and the annotations
// that record it.
func pullBase(ctx context.Context, spec PackSpec, p v1.Platform) (v1.Image, map[string]string, error) {
	img := spec.Image
	if img.Base == "" || img.Base == Scratch {
		return nil, nil, nil
	}
	host := hostOf(img.Base)
	red := hfexec.NewRedactor(secrets(spec.Auth)...)
	object := fmt.Sprintf("base image %s for %s (image %s)", img.Base, p.String(), img.Name)
	ref, err := name.ParseReference(img.Base, nameOptions(host, spec.Insecure)...)
	if err != nil {
		return nil, nil, fmt.Errorf("pack image %s: base %q is not an image reference (fix base: in %s): %w: %v",
			img.Name, img.Base, img.File, ErrInvalid, err)
	}
	opts := append(remoteOptions(keychain(spec.Auth)), remote.WithContext(ctx), remote.WithPlatform(p))
	base, err := remote.Image(ref, opts...)
	if err != nil {
		err = classify("pull", object, host, false, err, red)
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrNotFound {
			e.Hint = fmt.Sprintf("no such image: push %s to %s, or change base: in %s (use %q for none)",
				img.Base, host, img.File, Scratch)
		}
		return nil, nil, err
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, nil, classify("read config of", object, host, false, err, red)
	}
	// A single-platform base is returned whatever platform was asked for.
	if cf.OS != p.OS || cf.Architecture != p.Architecture || (p.Variant != "" && cf.Variant != "" && cf.Variant != p.Variant) {
		return nil, nil, fmt.Errorf("pack image %s: %s is %s/%s, not %s: use a multi-platform base: %w",
			img.Name, object, cf.OS, cf.Architecture, p.String(), ErrNotFound)
	}
	d, err := base.Digest()
	if err != nil {
		return nil, nil, classify("read", object, host, false, err, red)
	}
	return base, map[string]string{AnnotationBaseName: ref.Name(), AnnotationBaseDigest: d.String()}, nil
}

// withPath returns env with /usr/local/bin on PATH, keeping the base's PATH.
func withPath(env []string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			if !slices.Contains(filepath.SplitList(v), "/"+binDir) {
				out[i] = "PATH=/" + binDir + ":" + v
			}
			return out
		}
	}
	return append(out, "PATH="+defaultPath)
}
