package build

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Names and paths inside the build. The cache IDs are stable so that every
// build on a daemon, of any branch, shares one Go build cache: Go keys its
// cache by content and toolchain, so sharing is safe and a one-line change
// recompiles one package.
const (
	// LocalSourceName is the llb.Local name Compile serves SourceDir under.
	LocalSourceName = "source"
	// GoBuildCacheID is the cache mount ID of GOCACHE.
	GoBuildCacheID = "hyperfork-gocache"
	// GoModCacheID is the cache mount ID of GOMODCACHE.
	GoModCacheID = "hyperfork-gomodcache"
	// OutputCachePrefix starts the cache mount IDs that keep each build
	// step's previous binaries (see outputCacheID).
	OutputCachePrefix = "hyperfork-out-"

	srcDir       = "/src"
	outDir       = "/out"
	keptDir      = "/kept"
	helperDir    = "/hyperfork"
	planDir      = "/plan"
	hyperkubeDir = "/hyperkube"
	goCacheDir   = "/root/.cache/go-build"
	goModDir     = "/go/pkg/mod"

	// manifestDir is the folder, in every exported platform folder, where
	// each step says which binaries it made (see helperPlan).
	manifestDir = ".hyperfork"
)

// sourceExcludes keeps VCS metadata out of the build context: it is not
// needed (-buildvcs=false) and would change the context digest on every fetch.
var sourceExcludes = []string{".git", "**/.git"}

// fallbackPath is PATH when the builder image's config is not resolved (Graph
// without a daemon): where the official golang images keep the toolchain.
const fallbackPath = "/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var (
	//go:embed hyperkube/main.go.tmpl
	hyperkubeMain []byte
	//go:embed buildhelper/main.go.tmpl
	helperMain []byte
)

// hyperkubeGoMod makes the dispatcher its own module, independent of the
// compiled project's go.mod, vendor folder and workspace; helperGoMod the
// same for the build helper.
const (
	hyperkubeGoMod = "module hyperkube\n\ngo 1.22\n"
	helperGoMod    = "module buildhelper\n\ngo 1.22\n"
	helperName     = "buildhelper"
)

// helperPlan is what the build helper (buildhelper/main.go.tmpl) runs: the
// go commands of one step, which write into Cache, a persistent cache mount
// that keeps the previous build's binaries so that go relinks only what
// changed; then every binary of Binaries whose SHA-256 is not the one in
// Have is copied to Out, the exported folder, and Manifest (relative to
// Out) lists every binary with its SHA-256.
type helperPlan struct {
	Cache    string            `json:"cache"`
	Out      string            `json:"out"`
	Manifest string            `json:"manifest"`
	Steps    []helperStep      `json:"steps"`
	Binaries []string          `json:"binaries"`
	Have     map[string]string `json:"have,omitempty"`
}

// helperStep is one command of a plan, run in Dir (empty: the exec's).
type helperStep struct {
	Dir  string   `json:"dir,omitempty"`
	Args []string `json:"args"`
}

// held says, per platform, which binaries the output folder holds already:
// name to "sha256:<hex>". A binary whose digest is listed is not exported
// again when the build gives the same one.
type held map[string]map[string]string

// Graph returns, for every platform in spec and for the test platform, the
// state whose root holds that platform's binaries (and /hyperkube if asked,
// and the test binaries on the test platform), with the manifests of
// .hyperfork/. It is pure: the same Spec always gives the same graph, and
// nothing is contacted.
func Graph(spec Spec) (map[string]llb.State, error) {
	return graph(spec, nil)
}

// graph builds the states; have is what the output folder holds (nil: none),
// and imageOpts lets Compile resolve the builder image's config (PATH,
// GOPATH) through the daemon while Graph stays pure.
func graph(spec Spec, have held, imageOpts ...llb.ImageOption) (map[string]llb.State, error) {
	targets, testTarget, err := spec.validate()
	if err != nil {
		return nil, err
	}
	ldflags, _ := spec.ldflags() // validated above
	bp := spec.buildPlatform()

	opts := append([]llb.ImageOption{llb.Platform(bp), llb.WithCustomNamef("builder image %s", spec.BuilderImage)}, imageOpts...)
	image := llb.Image(spec.BuilderImage, opts...)
	if len(imageOpts) == 0 {
		image = image.AddEnv("PATH", fallbackPath)
	}
	builder := withBaseEnv(image, spec, true)

	source := llb.Local(LocalSourceName,
		llb.ExcludePatterns(sourceExcludes),
		llb.SharedKeyHint("hyperfork-source"),
		// BuildKit merges identical ops of concurrent builds, so the ID
		// must tell source folders apart; a random one (the default)
		// would change the graph on every call.
		llb.LocalUniqueID("hyperfork-"+digest.FromString(spec.SourceDir).Encoded()[:16]),
		llb.WithCustomName("source tree"),
	)

	// The helper runs on the build platform, like the compiler. Its build
	// does not change with the commit, so BuildKit runs it once per builder
	// image and build environment.
	helper := withBaseEnv(image, spec, false).Dir("/helper-src").Run(
		llb.Args([]string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", outDir + "/" + helperName, "."}),
		llb.AddMount("/helper-src", llb.Scratch().File(
			llb.Mkfile("/go.mod", 0o644, []byte(helperGoMod)).Mkfile("/main.go", 0o644, helperMain),
			llb.WithCustomName("build helper source"),
		), llb.Readonly),
		withGoCaches(),
		llb.WithCustomName("build the build helper"),
	).AddMount(outDir, llb.Scratch())

	var dispatcher llb.State
	if spec.Hyperkube {
		dispatcher = llb.Scratch().File(
			llb.Mkfile("/go.mod", 0o644, []byte(hyperkubeGoMod)).
				Mkfile("/main.go", 0o644, hyperkubeMain),
			llb.WithCustomName("hyperkube dispatcher source"),
		)
	}

	goFlags := []string{"-trimpath", "-buildvcs=false"}
	if spec.Vendor {
		goFlags = append(goFlags, "-mod=vendor")
	}
	goFlags = append(goFlags, "-ldflags="+ldflags)

	// step runs one helper plan for a platform and returns its output.
	step := func(t target, kind string, steps []helperStep, bins []string, name string, extra ...llb.RunOption) llb.State {
		plan, _ := json.Marshal(helperPlan{
			Cache: keptDir, Out: outDir, Manifest: manifestDir + "/" + kind + ".json",
			Steps: steps, Binaries: bins, Have: pick(have[t.id], bins),
		})
		// The plan goes in a file: an error names the process by its
		// arguments, and a path reads better than the plan's JSON.
		planFile := llb.Scratch().File(llb.Mkfile("/"+kind+".json", 0o644, plan), llb.WithCustomNamef("[%s] %s plan", t.id, kind))
		opts := append([]llb.RunOption{
			llb.Args([]string{helperDir + "/" + helperName, planDir + "/" + kind + ".json"}),
			llb.AddMount(planDir, planFile, llb.Readonly),
			llb.AddMount(srcDir, source, llb.Readonly),
			llb.AddMount(helperDir, helper, llb.Readonly),
			withGoCaches(),
			// Locked: two builds of one source folder must not link
			// into the same files at once; other folders and steps have
			// their own.
			llb.AddMount(keptDir, llb.Scratch(), llb.AsPersistentCacheDir(outputCacheID(spec.SourceDir, kind, t.id), llb.CacheMountLocked)),
			llb.WithCustomName(name),
		}, extra...)
		return withTargetEnv(builder, t).Dir(srcDir).Run(opts...).AddMount(outDir, llb.Scratch())
	}
	goCmd := func(verb ...string) []string {
		return append(append([]string{"go"}, verb...), goFlags...)
	}

	ids := make([]string, 0, len(targets)+1)
	byID := map[string]target{}
	for _, t := range targets {
		ids, byID[t.id] = append(ids, t.id), t
	}
	if testTarget != nil {
		if _, ok := byID[testTarget.id]; !ok {
			ids = append(ids, testTarget.id)
		}
		byID[testTarget.id] = *testTarget
	}
	built := map[string]bool{}
	for _, t := range targets {
		built[t.id] = true
	}

	states := make(map[string]llb.State, len(ids))
	for _, id := range ids {
		t := byID[id]
		var outs []llb.State
		if built[id] {
			var names []string
			for _, tg := range spec.Targets {
				names = append(names, binaryName(tg))
			}
			steps := []helperStep{{Args: append(append(goCmd("build"), "-o", keptDir+"/"), spec.Targets...)}}
			var extra []llb.RunOption
			if spec.Hyperkube {
				// After the targets, so that the standard library it
				// needs is in GOCACHE already instead of compiled twice
				// at once.
				steps = append(steps, helperStep{Dir: hyperkubeDir, Args: []string{"go", "build", "-trimpath", "-buildvcs=false",
					"-ldflags=-s -w", "-o", keptDir + "/" + hyperkubeName, "."}})
				names = append(names, hyperkubeName)
				extra = append(extra, llb.AddMount(hyperkubeDir, dispatcher, llb.Readonly))
			}
			what := "go build " + strings.Join(spec.Targets, " ")
			if spec.Hyperkube {
				what += " and the hyperkube dispatcher"
			}
			outs = append(outs, step(t, "build", steps, names, fmt.Sprintf("[%s] %s", t.id, what), extra...))
		}
		if testTarget != nil && id == testTarget.id {
			var steps []helperStep
			var names, what []string
			for _, tt := range spec.TestTargets {
				n := testBinaryName(tt)
				steps = append(steps, helperStep{Args: append(goCmd("test", "-c"), "-o", keptDir+"/"+n, tt)})
				names = append(names, n)
			}
			if len(spec.TestTargets) > 0 {
				what = append(what, "go test -c "+strings.Join(spec.TestTargets, " "))
			}
			if len(spec.TestCommands) > 0 {
				steps = append(steps, helperStep{Args: append(append(goCmd("build"), "-o", keptDir+"/"), spec.TestCommands...)})
				for _, c := range spec.TestCommands {
					names = append(names, binaryName(c))
				}
				what = append(what, "go build "+strings.Join(spec.TestCommands, " "))
			}
			outs = append(outs, step(t, "test", steps, names, fmt.Sprintf("[%s] %s", t.id, strings.Join(what, "; "))))
		}
		bins := outs[0]
		if len(outs) > 1 {
			bins = llb.Merge(outs, llb.WithCustomNamef("[%s] collect binaries", t.id))
		}
		// Ops without an image of their own (local source, mkfile, merge)
		// would otherwise take the marshalling client's platform.
		states[id] = bins.SetMarshalDefaults(llb.Platform(bp))
	}
	return states, nil
}

// outputCacheID names the cache mount that keeps one step's binaries (kind:
// build or test) for one platform of one source folder: branches built from
// their own folders never wait for each other.
func outputCacheID(sourceDir, kind, platform string) string {
	return OutputCachePrefix + kind + "-" + digest.FromString(sourceDir + "\x00" + platform).Encoded()[:16]
}

// pick returns the entries of m for names, nil if there are none.
func pick(m map[string]string, names []string) map[string]string {
	var out map[string]string
	for _, n := range names {
		if d, ok := m[n]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[n] = d
		}
	}
	return out
}

// withBaseEnv sets the environment shared by every platform. GOTOOLCHAIN=local
// keeps the image's toolchain (a download would make the output depend on the
// network); Spec.Env can override it. Only the project's steps (project)
// get SOURCE_DATE_EPOCH, the proxy and Spec.Env: the commit time changes
// with every commit, and with it a step's cache key, and the build helper
// needs none of them.
func withBaseEnv(s llb.State, spec Spec, project bool) llb.State {
	base := [][2]string{
		{"HOME", "/tmp"},
		{"GOENV", "off"},
		{"GOTOOLCHAIN", "local"},
		{"GOFLAGS", ""},
		{"GOCACHE", goCacheDir},
		{"GOMODCACHE", goModDir},
		{"CGO_ENABLED", "0"},
		{"SOURCE_DATE_EPOCH", strconv.FormatInt(spec.Stamp.BuildDate.Unix(), 10)},
	}
	if spec.Stamp.BuildDate.IsZero() {
		base[len(base)-1][1] = "0"
	}
	if !project {
		for _, kv := range base[:len(base)-1] {
			s = s.AddEnv(kv[0], kv[1])
		}
		return s
	}
	if spec.GoProxy != "" {
		base = append(base, [2]string{"GOPROXY", spec.GoProxy})
	}
	for _, kv := range append(base, spec.sortedEnv()...) {
		s = s.AddEnv(kv[0], kv[1])
	}
	return s
}

// withTargetEnv selects the target platform: pure cross-compilation, the
// compiler itself always runs on the build platform.
func withTargetEnv(s llb.State, t target) llb.State {
	for _, kv := range t.goEnv {
		s = s.AddEnv(kv[0], kv[1])
	}
	return s
}

// withGoCaches mounts GOCACHE and GOMODCACHE as persistent cache mounts, plus a
// tmpfs /tmp for the compiler's work files. Both caches are shared, not
// locked: Go guards them with its own file locks, and locking would serialize
// the platforms that are meant to build in parallel.
func withGoCaches() llb.RunOption {
	return runOptions{
		llb.AddMount(goCacheDir, llb.Scratch(), llb.AsPersistentCacheDir(GoBuildCacheID, llb.CacheMountShared)),
		llb.AddMount(goModDir, llb.Scratch(), llb.AsPersistentCacheDir(GoModCacheID, llb.CacheMountShared)),
		llb.AddMount("/tmp", llb.Scratch(), llb.Tmpfs()),
	}
}

// runOptions groups several run options into one.
type runOptions []llb.RunOption

func (r runOptions) SetRunOption(ei *llb.ExecInfo) {
	for _, o := range r {
		o.SetRunOption(ei)
	}
}

// Marshal turns each platform's state into a definition BuildKit can solve.
// One after the other: the platforms' states share ops (the builder image,
// the source, the helper), and llb sorts an exec op's mounts in place while
// marshalling, so marshalling them at once races. The builder image is one
// for all platforms (cross-compiled), resolved once and memoized.
func Marshal(ctx context.Context, states map[string]llb.State) (map[string]*llb.Definition, error) {
	defs := make(map[string]*llb.Definition, len(states))
	for id, st := range states {
		def, err := st.Marshal(ctx)
		if err != nil {
			return nil, fmt.Errorf("marshal build graph for %s: %w", id, err)
		}
		defs[id] = def
	}
	return defs, nil
}

// platformOf returns the OCI platform for a normalized ID made by graph.
func platformOf(id string) ocispecs.Platform {
	t, _ := parsePlatform(id)
	return t.platform
}
