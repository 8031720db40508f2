// Package build cross-compiles Go targets with BuildKit. The LLB graph is
// built by pure functions (Graph, Marshal) so it can be inspected without a
// daemon; Compile solves it on a BuildKit daemon reached with Connect or
// started with StartDaemon. This is the only package that imports BuildKit.
package build

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/containerd/platforms"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Stamp is the version information rendered into the ldflags templates, the
// same fields Kubernetes stamps into its binaries.
type Stamp struct {
	Version   string
	Commit    string
	TreeState string
	BuildDate time.Time
}

// Spec says what to compile and how. The zero value is not valid: Targets,
// Platforms and BuilderImage are required.
type Spec struct {
	// SourceDir holds the exact source tree to compile, without .git. Only
	// Compile reads it; Graph names it as the local source "source".
	SourceDir string
	// Targets are Go main packages such as ./cmd/kubelet. The binary is
	// named after the last element, as `go build -o dir/` names it.
	Targets []string
	// Platforms are target platforms such as linux/amd64 or linux/arm/v7.
	Platforms []string
	// LDFlags are Go text/templates over .Version .Commit .TreeState
	// .BuildDate (a string, UTC, 2006-01-02T15:04:05Z as Kubernetes writes it).
	LDFlags []string
	// Stamp fills the LDFlags templates; Stamp.BuildDate is also
	// SOURCE_DATE_EPOCH inside the build.
	Stamp Stamp
	// BuilderImage is an image with the Go toolchain, run on BuildPlatform.
	BuilderImage string
	// Env is extra environment for the compiler. Variables the graph owns
	// (GOOS, GOARCH, CGO_ENABLED, GOCACHE, ...) are rejected.
	Env map[string]string
	// GoProxy becomes GOPROXY in the build; empty leaves the image's default.
	GoProxy string
	// Hyperkube adds the multi-call dispatcher /hyperkube to every platform.
	Hyperkube bool
	// KeepSymbols keeps the symbol table and DWARF. By default binaries are
	// linked with -s -w, as Kubernetes' release builds are: images get
	// about 30% smaller and stack traces keep their function names anyway.
	KeepSymbols bool
	// Vendor adds -mod=vendor. Compile sets it when SourceDir has
	// vendor/modules.txt; Go also does so by itself for go >= 1.14 modules.
	Vendor bool
	// BuildPlatform is where the compiler runs: the BuildKit worker's
	// platform. Empty: Compile asks the worker; Graph assumes linux on the
	// host's architecture.
	BuildPlatform string

	// TestTargets are Go test packages such as ./test/e2e, compiled in the
	// same solve with `go test -c` for TestPlatform only, each into
	// <last element>.test (e2e.test) in TestPlatform's folder, beside that
	// platform's binaries.
	TestTargets []string
	// TestCommands are Go commands compiled for TestPlatform only, beside
	// the test binaries, each named by its last element; a dependency's
	// command, such as GinkgoCommand, builds from the vendor folder or the
	// module cache. nil with TestTargets: Compile adds GinkgoCommand when
	// the tree has it (vendor/github.com/onsi/ginkgo/v2/ginkgo, or a
	// go.mod that requires github.com/onsi/ginkgo/v2); empty, not nil:
	// none.
	TestCommands []string
	// TestPlatform is where the tests run, os/arch[/variant]; it need not
	// be one of Platforms. Default DefaultTestPlatform when there are test
	// binaries.
	TestPlatform string
}

// GinkgoCommand is ginkgo's command, which runs ginkgo test binaries such as
// Kubernetes' e2e.test.
const GinkgoCommand = "github.com/onsi/ginkgo/v2/ginkgo"

// DefaultTestPlatform is Spec.TestPlatform when it is left empty.
const DefaultTestPlatform = "linux/amd64"

// hasTests reports whether the spec compiles test binaries.
func (s Spec) hasTests() bool { return len(s.TestTargets) > 0 || len(s.TestCommands) > 0 }

// testPlatform is TestPlatform or its default.
func (s Spec) testPlatform() string {
	if s.TestPlatform == "" {
		return DefaultTestPlatform
	}
	return s.TestPlatform
}

// target is one platform to build, already parsed and mapped to Go's
// environment.
type target struct {
	id       string // normalized os/arch[/variant], the key of every map
	platform ocispecs.Platform
	goEnv    [][2]string // GOOS, GOARCH and the variant variable, in that order
}

// dirName is the folder the platform's binaries land in: linux_arm_v7.
func (t target) dirName() string { return PlatformDir(t.id) }

// PlatformDir returns the folder name Compile uses for a platform:
// "linux/arm/v7" becomes "linux_arm_v7".
func PlatformDir(platform string) string {
	return strings.NewReplacer("/", "_", `\`, "_", ":", "_").Replace(platform)
}

// goOS and goArch list what the Go toolchain can target. Checking here turns a
// typo into an error before any daemon work instead of a failed exec.
var (
	goOS   = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	goArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
)

// parsePlatform validates one os/arch[/variant] and maps it to Go's
// environment. No default architecture is filled in: "linux" alone is an
// error, because guessing the host's would make the graph host-dependent.
func parsePlatform(s string) (target, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return target{}, fmt.Errorf("platform %q: want os/arch[/variant] such as linux/amd64 or linux/arm/v7", s)
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return target{}, fmt.Errorf("platform %q: %w (want os/arch[/variant] such as linux/amd64)", s, err)
	}
	p = platforms.Normalize(p)
	if !slices.Contains(goOS, p.OS) {
		return target{}, fmt.Errorf("platform %q: Go cannot target OS %q (known: %s)", s, p.OS, strings.Join(goOS, ", "))
	}
	if !slices.Contains(goArch, p.Architecture) {
		return target{}, fmt.Errorf("platform %q: Go cannot target architecture %q (known: %s)", s, p.Architecture, strings.Join(goArch, ", "))
	}
	env := [][2]string{{"GOOS", p.OS}, {"GOARCH", p.Architecture}}
	if p.Variant != "" {
		kv, err := variantEnv(p.Architecture, p.Variant)
		if err != nil {
			return target{}, fmt.Errorf("platform %q: %w", s, err)
		}
		env = append(env, kv)
	}
	return target{id: platforms.Format(p), platform: p, goEnv: env}, nil
}

// variantEnv maps an OCI platform variant to the Go variable that selects it.
func variantEnv(arch, variant string) ([2]string, error) {
	switch arch {
	case "arm":
		if v := strings.TrimPrefix(variant, "v"); v == "5" || v == "6" || v == "7" {
			return [2]string{"GOARM", v}, nil
		}
	case "amd64":
		if variant == "v1" || variant == "v2" || variant == "v3" || variant == "v4" {
			return [2]string{"GOAMD64", variant}, nil
		}
	case "arm64":
		if arm64VariantRE.MatchString(variant) {
			return [2]string{"GOARM64", variant}, nil
		}
	}
	return [2]string{}, fmt.Errorf("variant %q of %s has no Go equivalent (use e.g. linux/arm/v7 or linux/amd64/v3)", variant, arch)
}

var (
	arm64VariantRE = regexp.MustCompile(`^v[89]\.[0-9]$`)
	majorVersionRE = regexp.MustCompile(`^v[2-9][0-9]*$`)
)

// ownedEnv are variables the graph sets itself; letting Spec.Env override them
// would silently break cross-compilation or the cache mounts.
var ownedEnv = []string{"GOOS", "GOARCH", "GOARM", "GOAMD64", "GOARM64", "CGO_ENABLED", "GOCACHE", "GOMODCACHE", "SOURCE_DATE_EPOCH"}

// binaryName is the file `go build -o dir/` writes for a package path: its
// last element, skipping a major-version suffix such as /v2.
func binaryName(pkg string) string {
	pkg = path.Clean(strings.TrimRight(pkg, "/"))
	base := path.Base(pkg)
	if majorVersionRE.MatchString(base) && strings.Contains(pkg, "/") && path.Dir(pkg) != "." {
		base = path.Base(path.Dir(pkg))
	}
	return base
}

// testBinaryName is the file `go test -c` writes for a test package, as
// Kubernetes names e2e.test.
func testBinaryName(pkg string) string { return binaryName(pkg) + ".test" }

// hyperkubeName is the dispatcher's file name; no target may use it.
const hyperkubeName = "hyperkube"

// validate checks the parts of the spec the graph depends on and reports every
// problem at once. It returns the parsed platforms in the order given, and
// the test platform when there are test binaries.
func (s Spec) validate() ([]target, *target, error) {
	var errs []error
	if strings.TrimSpace(s.BuilderImage) == "" {
		errs = append(errs, errors.New("builder image is empty: set build.builderImage to an image with the Go toolchain, e.g. golang:1.26"))
	}
	if len(s.Targets) == 0 {
		errs = append(errs, errors.New("no targets: set build.targets to Go main packages such as ./cmd/kubelet"))
	}
	names := map[string]string{}
	for _, t := range s.Targets {
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "-") {
			errs = append(errs, fmt.Errorf("target %q is not a Go package path such as ./cmd/kubelet", t))
			continue
		}
		n := binaryName(t)
		if prev, ok := names[n]; ok {
			errs = append(errs, fmt.Errorf("targets %q and %q both produce binary %q: keep one", prev, t, n))
		}
		if s.Hyperkube && n == hyperkubeName {
			errs = append(errs, fmt.Errorf("target %q is named %q, which the hyperkube dispatcher uses: rename it or turn the dispatcher off", t, n))
		}
		names[n] = t
	}
	if len(s.Platforms) == 0 {
		errs = append(errs, errors.New("no platforms: set build.platforms, e.g. [linux/amd64, linux/arm64]"))
	}
	var testTarget *target
	if s.hasTests() {
		t, err := parsePlatform(s.testPlatform())
		if err != nil {
			errs = append(errs, fmt.Errorf("test platform: %w", err))
		} else {
			testTarget = &t
		}
		// The test platform's folder holds its binaries too when it is
		// also a build platform: one namespace then.
		tests := map[string]string{}
		same := testTarget != nil && slices.ContainsFunc(s.Platforms, func(p string) bool {
			t, err := parsePlatform(p)
			return err == nil && t.id == testTarget.id
		})
		if same {
			for n, t := range names {
				tests[n] = t
			}
			if s.Hyperkube {
				tests[hyperkubeName] = "the hyperkube dispatcher"
			}
		}
		claim := func(kind, pkg, n string) {
			if strings.TrimSpace(pkg) == "" || strings.HasPrefix(pkg, "-") {
				errs = append(errs, fmt.Errorf("%s %q is not a Go package path such as ./test/e2e", kind, pkg))
				return
			}
			if prev, ok := tests[n]; ok {
				errs = append(errs, fmt.Errorf("%s %q and %q both produce binary %q for the test platform: keep one", kind, prev, pkg, n))
				return
			}
			tests[n] = pkg
		}
		for _, t := range s.TestTargets {
			claim("test target", t, testBinaryName(t))
		}
		for _, c := range s.TestCommands {
			claim("test command", c, binaryName(c))
		}
	}
	var targets []target
	seen := map[string]bool{}
	for _, p := range s.Platforms {
		t, err := parsePlatform(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[t.id] {
			errs = append(errs, fmt.Errorf("platform %q is listed twice", p))
			continue
		}
		seen[t.id] = true
		targets = append(targets, t)
	}
	if s.BuildPlatform != "" {
		if _, err := parsePlatform(s.BuildPlatform); err != nil {
			errs = append(errs, fmt.Errorf("build platform: %w", err))
		}
	}
	for k := range s.Env {
		if slices.Contains(ownedEnv, k) {
			errs = append(errs, fmt.Errorf("build env %s is set by hyperfork itself: remove it from build.env", k))
		}
	}
	if _, err := s.ldflags(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("invalid build spec:\n%w", err)
	}
	return targets, testTarget, nil
}

// buildPlatform returns where the compiler runs.
func (s Spec) buildPlatform() ocispecs.Platform {
	if s.BuildPlatform != "" {
		if t, err := parsePlatform(s.BuildPlatform); err == nil {
			return t.platform
		}
	}
	return ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// BuildDateFormat is how .BuildDate is rendered, as Kubernetes' hack/lib/version.sh does.
const BuildDateFormat = "2006-01-02T15:04:05Z"

// ldflags renders the templates and appends -s -w unless symbols are kept.
func (s Spec) ldflags() (string, error) {
	data := struct{ Version, Commit, TreeState, BuildDate string }{
		s.Stamp.Version, s.Stamp.Commit, s.Stamp.TreeState, s.Stamp.BuildDate.UTC().Format(BuildDateFormat),
	}
	var parts []string
	for i, src := range s.LDFlags {
		tmpl, err := template.New(fmt.Sprintf("ldflags[%d]", i)).Option("missingkey=error").Parse(src)
		if err != nil {
			return "", fmt.Errorf("build.ldflags[%d] %q: %w", i, src, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			return "", fmt.Errorf("build.ldflags[%d] %q: %w (fields: .Version .Commit .TreeState .BuildDate)", i, src, err)
		}
		if f := strings.TrimSpace(b.String()); f != "" {
			parts = append(parts, f)
		}
	}
	if !s.KeepSymbols {
		parts = append(parts, "-s", "-w")
	}
	return strings.Join(parts, " "), nil
}

// sortedEnv returns Spec.Env as key/value pairs in key order, so that the
// marshalled graph, and with it the cache key, does not depend on map order.
func (s Spec) sortedEnv() [][2]string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, s.Env[k]})
	}
	return out
}
