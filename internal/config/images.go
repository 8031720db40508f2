package config

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// HyperkubeBinary is the multi-call dispatcher an image gets with hyperkube: true.
const HyperkubeBinary = "hyperkube"

// BuiltinImageFile is what Image.File and messages say for the image
// definition built into hyperfork, used when build.images is left out and
// there is no images/hyperkube.yaml beside the config.
const BuiltinImageFile = "(built-in)"

// builtinImage is the same file as images/hyperkube.yaml of hyperfork's
// repository (a test keeps them equal). It ships inside the binary so that
// a config that only syncs, in a folder with no images/, is still whole.
//
//go:embed builtin/hyperkube.yaml
var builtinImage string

var imageNameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// loadImages reads and validates every file named by build.images, in order,
// into p.Images. Problems inside an image file are reported at its own lines.
func (p *Pipeline) loadImages(d *doc) {
	if d.bad["build.images"] {
		return
	}
	binaries := p.Build.Binaries()
	if d.badUnder("build.targets") {
		binaries = nil // the targets could not be read: do not guess which binaries exist
	}
	if len(p.Build.Images) == 0 && !d.has("build.images") {
		p.loadBuiltinImage(d, binaries)
		return
	}
	names := map[string]string{} // image name -> "file:line" of its first definition
	seen := map[string]bool{}
	for i, rel := range p.Build.Images {
		path := indexPath("build.images", i)
		if seen[rel] || strings.Contains(rel, "://") {
			continue // reported by validateBuild
		}
		seen[rel] = true
		abs := p.resolve(rel)
		display := p.displayPath(d, rel)
		data, err := os.ReadFile(abs)
		switch {
		case err != nil && !d.has("build.images"):
			d.probs.add(d.file, 0, "build.images (default) is %s, which is there but cannot be read (%v): make it a readable image definition, remove it to use the built-in one, or write build.images",
				display, unwrapPathError(err))
			continue
		case err != nil:
			d.at(path, "%s: cannot read image definition %s (%v): create it, or fix the path (relative to %s)",
				path, display, unwrapPathError(err), filepath.Base(d.file))
			continue
		}
		img, id, ok := decodeImage(display, data, d.probs)
		if !ok {
			continue
		}
		img.File = abs
		validateImage(id, &img, binaries)
		if img.Name != "" && imageNameRE.MatchString(img.Name) {
			at := fmt.Sprintf("%s:%d", id.file, id.line("name"))
			if prev, dup := names[img.Name]; dup {
				id.at("name", "image name %q is already used by %s: give each image its own name", img.Name, prev)
			} else {
				names[img.Name] = at
			}
		}
		p.Images = append(p.Images, img)
	}
}

// decodeImage reads one image definition strictly, as every images/*.yaml
// is read; ok is false when its YAML could not be read at all.
func decodeImage(display string, data []byte, probs *problems) (Image, *doc, bool) {
	root := parseYAML(display, data, probs)
	if root == nil {
		return Image{}, nil, false
	}
	id := newDoc(display, probs)
	var img Image
	decodeInto(id, root, reflect.TypeFor[Image](), &img)
	return img, id, true
}

// loadBuiltinImage decodes the built-in definition by the same strict path
// as a user's file. Its binaries are checked against build.targets here,
// at the line of build.targets, because the user cannot edit the built-in
// file: they can only build what it packs, or name their own definition.
func (p *Pipeline) loadBuiltinImage(d *doc, binaries []string) {
	img, id, ok := decodeImage(BuiltinImageFile, []byte(builtinImage), d.probs)
	if !ok {
		return
	}
	img.File = BuiltinImageFile
	validateImage(id, &img, nil)
	var missing, add []string
	for _, b := range img.Binaries {
		if binaries != nil && !slices.Contains(binaries, b) {
			missing = append(missing, b)
			add = append(add, defaultTarget(b))
		}
	}
	if len(missing) > 0 {
		d.at("build.targets", "build.images (default) is the %s image definition %s, which packs %s; build.targets does not build %s: add %s to build.targets, or write build.images: [images/NAME.yaml] with a definition of the binaries you build",
			img.Name, BuiltinImageFile, strings.Join(img.Binaries, ", "), strings.Join(missing, ", "), strings.Join(add, ", "))
	}
	p.Images = append(p.Images, img)
}

// defaultTarget is the build target of a binary the built-in image packs.
func defaultTarget(binary string) string {
	for _, t := range DefaultTargets() {
		if BinaryName(t) == binary {
			return t
		}
	}
	return "./cmd/" + binary
}

// validateImage checks one image definition; binaries nil skips the check
// of binaries against the build targets.
func validateImage(d *doc, img *Image, binaries []string) {
	switch {
	case img.Name == "":
		d.at("name", "name is required: write the image's repository name, e.g. name: hyperkube")
	case !imageNameRE.MatchString(img.Name):
		d.at("name", "name %q is not a valid repository name: use lower case letters, digits, '.', '_', '-' and '/', e.g. hyperkube", img.Name)
	}
	if img.Base == "" {
		d.at("base", "base is required: write base: scratch, or an image reference such as gcr.io/distroless/static:nonroot")
	} else if msg := checkImageRef("base", img.Base, true); msg != "" {
		d.at("base", "%s", msg)
	}
	known := slices.Clone(binaries)
	if img.Hyperkube {
		known = append(known, HyperkubeBinary)
	}
	if len(img.Binaries) == 0 && !img.Hyperkube && d.has("binaries") {
		d.at("binaries", "binaries is empty: list at least one of %s", strings.Join(known, ", "))
	}
	if len(img.Binaries) == 0 && !img.Hyperkube && !d.has("binaries") {
		d.at("binaries", "binaries is missing: list the binaries to put in the image, e.g. binaries: [%s]", strings.Join(known, ", "))
	}
	seen := map[string]bool{}
	for i, b := range img.Binaries {
		path := indexPath("binaries", i)
		switch {
		case seen[b]:
			d.at(path, "binaries lists %q twice: remove this one", b)
		case b == HyperkubeBinary && !img.Hyperkube:
			d.at(path, "%q is the multi-call dispatcher, not a build target: write hyperkube: true instead of listing it", b)
		case binaries != nil && !slices.Contains(known, b):
			d.at(path, "binary %q is not built by build.targets%s: write one of %s, or add its command to build.targets",
				b, didYouMean(b, known), strings.Join(known, ", "))
		}
		seen[b] = true
	}
	if len(img.Entrypoint) > 0 && img.Entrypoint[0] == "" {
		d.at(indexPath("entrypoint", 0), "entrypoint starts with an empty string: write the program to run, e.g. [/usr/local/bin/kubelet]")
	}
	for k := range img.Labels {
		if strings.TrimSpace(k) == "" {
			d.at("labels", "labels has an empty key: write a key such as org.example.team")
		}
	}
}

// Binaries returns the binary names the build targets produce, in order.
func (b Build) Binaries() []string {
	out := make([]string, 0, len(b.Targets))
	for _, t := range b.Targets {
		if n := BinaryName(t); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
