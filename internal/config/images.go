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
	known := &knownBinaries{
		targets: p.Build.Binaries(), tests: p.Build.TestBinaries(),
		platforms: p.Build.Platforms, testPlatform: p.Test.Platform,
	}
	if d.badUnder("build.targets") || d.badUnder("build.testTargets") || d.badUnder("build.testCommands") {
		known = nil // the targets could not be read: do not guess which binaries exist
	}
	if len(p.Build.Images) == 0 && !d.has("build.images") {
		var binaries []string
		if known != nil {
			binaries = known.targets
		}
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
		validateImage(id, &img, known)
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

// knownBinaries is what the build makes, for checking the binaries an
// image names.
type knownBinaries struct {
	targets      []string // of build.targets, compiled for build.platforms
	tests        []string // of build.testTargets and build.testCommands, compiled for test.platform
	platforms    []string // build.platforms
	testPlatform string   // test.platform
}

// validateImage checks one image definition; known nil skips the check of
// binaries against the build targets.
func validateImage(d *doc, img *Image, known *knownBinaries) {
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
	var names []string // every binary the image may name
	if known != nil {
		names = append(slices.Clone(known.targets), known.tests...)
	}
	if img.Hyperkube {
		names = append(names, HyperkubeBinary)
	}
	if len(img.Binaries) == 0 && !img.Hyperkube && d.has("binaries") {
		d.at("binaries", "binaries is empty: list at least one of %s", strings.Join(names, ", "))
	}
	if len(img.Binaries) == 0 && !img.Hyperkube && !d.has("binaries") {
		d.at("binaries", "binaries is missing: list the binaries to put in the image, e.g. binaries: [%s]", strings.Join(names, ", "))
	}
	seen := map[string]bool{}
	for i, b := range img.Binaries {
		path := indexPath("binaries", i)
		switch {
		case seen[b]:
			d.at(path, "binaries lists %q twice: remove this one", b)
		case b == HyperkubeBinary && !img.Hyperkube:
			d.at(path, "%q is the multi-call dispatcher, not a build target: write hyperkube: true instead of listing it", b)
		case known != nil && !slices.Contains(names, b) && strings.HasSuffix(b, testSuffix):
			d.at(path, "test binary %q is not built by build.testTargets%s: write one of %s, or add its test package to build.testTargets (go test -c names the binary of ./test/e2e e2e.test)",
				b, didYouMean(b, names), strings.Join(names, ", "))
		case known != nil && !slices.Contains(names, b):
			d.at(path, "binary %q is not built by build.targets%s: write one of %s, or add its command to build.targets (a command that runs beside the test binaries, such as ginkgo, to build.testCommands)",
				b, didYouMean(b, names), strings.Join(names, ", "))
		}
		seen[b] = true
	}
	if known != nil {
		validateMixedPlatforms(d, img, known)
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

// validateMixedPlatforms rejects an image that holds test binaries, which
// are compiled for test.platform only, beside binaries compiled for
// build.platforms, when test.platform is not one of them: its image for
// test.platform would lack those binaries.
func validateMixedPlatforms(d *doc, img *Image, known *knownBinaries) {
	var tests, others []string
	first := -1
	for i, b := range img.Binaries {
		switch {
		case slices.Contains(known.tests, b):
			if first < 0 {
				first = i
			}
			tests = append(tests, b)
		case slices.Contains(known.targets, b):
			others = append(others, b)
		}
	}
	if img.Hyperkube {
		others = append(others, HyperkubeBinary)
	}
	if len(tests) == 0 || len(others) == 0 || checkPlatform("test.platform", known.testPlatform) != "" ||
		containsPlatform(known.platforms, known.testPlatform) {
		return
	}
	d.at(indexPath("binaries", first), "image %s holds %s, compiled for test.platform %s only, and %s, compiled for build.platforms (%s): add %s to build.platforms, or put the test binaries in an image of their own",
		img.Name, strings.Join(tests, ", "), known.testPlatform, strings.Join(others, ", "), strings.Join(known.platforms, ", "), known.testPlatform)
}

// testSuffix ends the name go test -c gives a test binary.
const testSuffix = ".test"

// TestBinaryName is the name of the binary `go test -c` makes of a test
// target: the last element of its package path and ".test"
// (./test/e2e: e2e.test).
func TestBinaryName(target string) string { return BinaryName(target) + testSuffix }

// TestBinaries returns the names of what is compiled for test.platform, in
// order: TestBinaryName of each test target, then BinaryName of each test
// command (e2e.test, ginkgo).
func (b Build) TestBinaries() []string {
	var out []string
	for _, t := range b.TestTargets {
		if n := TestBinaryName(t); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, c := range b.TestCommands {
		if n := BinaryName(c); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// IsTestBinary reports whether name is one of TestBinaries: compiled for
// test.platform only.
func (b Build) IsTestBinary(name string) bool { return slices.Contains(b.TestBinaries(), name) }

// ImagePlatforms returns the platforms img is packed for: test.platform
// alone when it holds a test binary, which is compiled for that platform
// only (the conformance image), else build.platforms. Validation made sure
// that such an image's other binaries are built for test.platform too.
func (p *Pipeline) ImagePlatforms(img Image) []string {
	for _, b := range img.Binaries {
		if p.Build.IsTestBinary(b) {
			return []string{p.Test.Platform}
		}
	}
	return slices.Clone(p.Build.Platforms)
}
