package registry

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is a single-platform image. It is an alias so that callers can
// hold one without importing go-containerregistry.
type Image = v1.Image

// ServerRegistry is the registry Kubernetes' build/lib/release.sh names the
// images of the server tarball with, whoever built them: kubeadm expects
// its images there, and kind matches the archives' tags against kubeadm's
// list to decide what it need not pull.
const ServerRegistry = "registry.k8s.io"

// tarballGzipLevel is fixed so that the same inputs give the same bytes.
// BestSpeed: most of the tarball is binaries, which compress poorly, and
// image layers, which are compressed already.
const tarballGzipLevel = gzip.BestSpeed

// ServerImages returns the components whose images the server tarball must
// hold: the ones `kind build node-image --type file` loads.
func ServerImages() []string {
	return []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}
}

// ServerBinaries returns the binaries the server tarball holds when
// ServerTarball.Binaries is nil: the server commands, and kubeadm, kubelet
// and kubectl, which kind installs on its nodes.
func ServerBinaries() []string {
	return []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
		"kubeadm", "kubelet", "kubectl"}
}

// ServerTarballName returns the file name of the server tarball of a
// linux architecture, as Kubernetes releases it:
// kubernetes-server-linux-amd64.tar.gz.
func ServerTarballName(arch string) string { return "kubernetes-server-linux-" + arch + ".tar.gz" }

// ServerImageTag returns the tag of a component's image inside the server
// tarball, as build/lib/release.sh writes it:
// registry.k8s.io/<component>-<arch>:<version with + written as _>.
func ServerImageTag(component, arch, version string) string {
	return ServerRegistry + "/" + component + "-" + arch + ":" + StableTag(version)
}

// ServerTarball is what WriteServerTarball packs: the binaries and images
// of one linux architecture, in the layout of Kubernetes' own
// kubernetes-server-linux-<arch>.tar.gz:
//
//	kubernetes/version                              the version string
//	kubernetes/server/bin/<binary>                  each of Binaries
//	kubernetes/server/bin/<component>.tar           each of Images, a docker archive
//	kubernetes/server/bin/<component>.docker_tag    its tag, as release.sh writes it
//
// Kubernetes' own tarball also holds its licenses and source tarball; this
// one does not.
type ServerTarball struct {
	// Version is the Kubernetes version string the binaries are stamped
	// with, such as v1.37.2-2+0123456789ab.
	Version string
	// Arch is the GOARCH of the binaries and images, such as amd64.
	Arch string
	// BinDir holds the build's binaries, as PackSpec.BinDir does: its
	// folder linux_<arch>, or BinDir itself for a single-platform build.
	BinDir string
	// Binaries are the files copied from BinDir; nil: ServerBinaries().
	Binaries []string
	// Images are the component images by component name (kube-apiserver),
	// each for linux/Arch (see PlatformImage). They must include
	// ServerImages(); Kubernetes' release adds kubectl.
	Images map[string]Image
	// Created dates every entry; use the commit time. Zero means the Unix
	// epoch, never the clock.
	Created time.Time
}

var archRE = regexp.MustCompile(`^[a-z0-9]+$`)

// componentRE is one element of a repository name: the component names
// the image's repository and its file.
var componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// tarEntry is one entry of the server tarball; write writes exactly size
// bytes.
type tarEntry struct {
	name  string
	dir   bool
	mode  int64
	size  int64
	write func(io.Writer) error
}

// WriteServerTarball writes the gzipped server tarball of in to w. Equal
// inputs give equal bytes: entries are sorted, owned by root, dated
// in.Created, and the gzip header holds no name or time. The images'
// layers are read (from BinDir's layer caches, or their registry) while
// writing; nothing is kept in memory or on disk.
func WriteServerTarball(w io.Writer, in ServerTarball) error {
	entries, err := serverEntries(in)
	if err != nil {
		return fmt.Errorf("server tarball %s: %w", ServerTarballName(in.Arch), err)
	}
	modTime := in.Created
	if modTime.IsZero() {
		modTime = time.Unix(0, 0)
	}
	modTime = modTime.UTC().Truncate(time.Second)
	gz, err := gzip.NewWriterLevel(w, tarballGzipLevel)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: e.size, ModTime: modTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("server tarball %s: %s: %w", ServerTarballName(in.Arch), e.name, err)
		}
		if e.write != nil {
			if err := e.write(tw); err != nil {
				return fmt.Errorf("server tarball %s: write %s: %w", ServerTarballName(in.Arch), e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("server tarball %s: %w", ServerTarballName(in.Arch), err)
	}
	return gz.Close()
}

// serverEntries checks in and lists the tarball's entries, sorted.
func serverEntries(in ServerTarball) ([]tarEntry, error) {
	if in.Version == "" {
		return nil, fmt.Errorf("no version: the binaries' version string is kubernetes/version: %w", ErrInvalid)
	}
	tag := StableTag(in.Version)
	if err := validTag(tag); err != nil {
		return nil, fmt.Errorf("version %q makes no image tag: %v: %w", in.Version, err, ErrInvalid)
	}
	if !archRE.MatchString(in.Arch) {
		return nil, fmt.Errorf("architecture %q is not a GOARCH such as amd64: %w", in.Arch, ErrInvalid)
	}
	for _, c := range ServerImages() {
		if in.Images[c] == nil {
			return nil, fmt.Errorf("no %s image for linux/%s: kind loads %s; add images/%s.yaml to build.images: %w",
				c, in.Arch, strings.Join(ServerImages(), ", "), c, ErrInvalid)
		}
	}
	bins := in.Binaries
	if bins == nil {
		bins = ServerBinaries()
	}
	for i, b := range bins {
		if b == "" || b == "." || b == ".." || strings.ContainsAny(b, `/\`) || slices.Contains(bins[:i], b) {
			return nil, fmt.Errorf("binary %q is not a file name, or is listed twice: %w", b, ErrInvalid)
		}
	}
	const bin = "kubernetes/server/bin/"
	entries := []tarEntry{
		{name: "kubernetes/", dir: true, mode: 0o755},
		{name: "kubernetes/server/", dir: true, mode: 0o755},
		{name: bin, dir: true, mode: 0o755},
		bytesEntry("kubernetes/version", in.Version+"\n"),
	}
	dir, err := platformDir(in.BinDir, v1.Platform{OS: "linux", Architecture: in.Arch}, true, bins)
	if err != nil {
		return nil, err
	}
	for _, b := range bins {
		e, err := fileEntry(bin+b, filepath.Join(dir, b))
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	for _, c := range slices.Sorted(maps.Keys(in.Images)) {
		e, err := imageEntry(bin+c+".tar", c, in.Arch, in.Version, in.Images[c])
		if err != nil {
			return nil, err
		}
		// release.sh: echo "${docker_tag}" > "${binary_file_path}.docker_tag"
		entries = append(entries, e, bytesEntry(bin+c+".docker_tag", tag+"\n"))
	}
	slices.SortFunc(entries, func(a, b tarEntry) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(entries); i++ {
		if entries[i].name == entries[i-1].name {
			return nil, fmt.Errorf("%s is both a binary and an image's file: rename one: %w", entries[i].name, ErrInvalid)
		}
	}
	return entries, nil
}

func bytesEntry(file, data string) tarEntry {
	return tarEntry{name: file, mode: 0o644, size: int64(len(data)), write: func(w io.Writer) error {
		_, err := io.WriteString(w, data)
		return err
	}}
}

// fileEntry is a binary, mode 0755, of the size it has now: a file that
// changes meanwhile fails the write instead of giving a broken tarball.
func fileEntry(file, src string) (tarEntry, error) {
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return tarEntry{}, fmt.Errorf("binary %s is not in %s: add its command to build.targets: %w", filepath.Base(src), filepath.Dir(src), ErrNotFound)
	}
	if err != nil {
		return tarEntry{}, err
	}
	if !fi.Mode().IsRegular() {
		return tarEntry{}, fmt.Errorf("binary %s is not a regular file: %w", src, ErrInvalid)
	}
	f := binFile{name: filepath.Base(src), src: src, size: fi.Size()}
	return tarEntry{name: file, mode: 0o755, size: f.size, write: func(w io.Writer) error { return copyFile(w, f) }}, nil
}

// imageEntry is the docker archive of a component's image, as `docker
// save` (and buildx's docker exporter, which release.sh uses) writes it:
// manifest.json naming the tag in RepoTags, the config and the layers.
// kind reads the tag from manifest.json; it refuses an OCI layout.
func imageEntry(file, component, arch, version string, img Image) (tarEntry, error) {
	if !componentRE.MatchString(component) {
		return tarEntry{}, fmt.Errorf("component %q is not an image name such as kube-apiserver: %w", component, ErrInvalid)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return tarEntry{}, fmt.Errorf("read the %s image: %w", component, err)
	}
	if cf.OS != "linux" || cf.Architecture != arch {
		return tarEntry{}, fmt.Errorf("the %s image is %s/%s, not linux/%s: pass the image of linux/%s (PlatformImage): %w",
			component, cf.OS, cf.Architecture, arch, arch, ErrInvalid)
	}
	tag, err := name.NewTag(ServerImageTag(component, arch, version))
	if err != nil {
		return tarEntry{}, fmt.Errorf("tag the %s image: %w: %v", component, ErrInvalid, err)
	}
	refs := map[name.Reference]v1.Image{tag: img}
	size, err := tarball.CalculateSize(refs)
	if err != nil {
		return tarEntry{}, fmt.Errorf("size the %s image: %w", component, err)
	}
	return tarEntry{name: file, mode: 0o644, size: size, write: func(w io.Writer) error {
		return tarball.MultiRefWrite(refs, w)
	}}, nil
}

// PlatformImage returns the image of platform ("linux/arm64") in idx, as
// ServerTarball.Images wants them. A platform without a variant matches a
// manifest with one (linux/arm64 is linux/arm64/v8).
func PlatformImage(idx Index, platform string) (Image, error) {
	want, err := parsePlatform(platform)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	var found []string
	for _, d := range im.Manifests {
		p := d.Platform
		if p == nil {
			continue
		}
		found = append(found, p.String())
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || p.Variant == "" || p.Variant == want.Variant) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read %s image %s: %w", platform, d.Digest, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("index has no image for %s (it has %s): %w", platform, orNone(found), ErrNotFound)
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
