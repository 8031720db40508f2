package build

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
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

	srcDir       = "/src"
	outDir       = "/out"
	hyperkubeDir = "/hyperkube"
	goCacheDir   = "/root/.cache/go-build"
	goModDir     = "/go/pkg/mod"
)

// sourceExcludes keeps VCS metadata out of the build context: it is not
// needed (-buildvcs=false) and would change the context digest on every fetch.
var sourceExcludes = []string{".git", "**/.git"}

// fallbackPath is PATH when the builder image's config is not resolved (Graph
// without a daemon): where the official golang images keep the toolchain.
const fallbackPath = "/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

//go:embed hyperkube/main.go.tmpl
var hyperkubeMain []byte

// hyperkubeGoMod makes the dispatcher its own module, independent of the
// compiled project's go.mod, vendor folder and workspace.
const hyperkubeGoMod = "module hyperkube\n\ngo 1.22\n"

// Graph returns, for every platform in spec, the state whose root holds that
// platform's binaries (and /hyperkube if asked). It is pure: the same Spec
// always gives the same graph, and nothing is contacted.
func Graph(spec Spec) (map[string]llb.State, error) {
	return graph(spec)
}

// graph builds the states; imageOpts lets Compile resolve the builder image's
// config (PATH, GOPATH) through the daemon while Graph stays pure.
func graph(spec Spec, imageOpts ...llb.ImageOption) (map[string]llb.State, error) {
	targets, err := spec.validate()
	if err != nil {
		return nil, err
	}
	ldflags, _ := spec.ldflags() // validated above
	bp := spec.buildPlatform()

	opts := append([]llb.ImageOption{llb.Platform(bp), llb.WithCustomNamef("builder image %s", spec.BuilderImage)}, imageOpts...)
	builder := llb.Image(spec.BuilderImage, opts...)
	if len(imageOpts) == 0 {
		builder = builder.AddEnv("PATH", fallbackPath)
	}
	builder = withBaseEnv(builder, spec)

	source := llb.Local(LocalSourceName,
		llb.ExcludePatterns(sourceExcludes),
		llb.SharedKeyHint("hyperfork-source"),
		// BuildKit merges identical ops of concurrent builds, so the ID
		// must tell source folders apart; a random one (the default)
		// would change the graph on every call.
		llb.LocalUniqueID("hyperfork-"+digest.FromString(spec.SourceDir).Encoded()[:16]),
		llb.WithCustomName("source tree"),
	)

	var dispatcher llb.State
	if spec.Hyperkube {
		dispatcher = llb.Scratch().File(
			llb.Mkfile("/go.mod", 0o644, []byte(hyperkubeGoMod)).
				Mkfile("/main.go", 0o644, hyperkubeMain),
			llb.WithCustomName("hyperkube dispatcher source"),
		)
	}

	states := make(map[string]llb.State, len(targets))
	for _, t := range targets {
		env := withTargetEnv(builder, t)
		args := []string{"go", "build", "-trimpath", "-buildvcs=false"}
		if spec.Vendor {
			args = append(args, "-mod=vendor")
		}
		args = append(args, "-ldflags="+ldflags, "-o", outDir+"/")
		args = append(args, spec.Targets...)
		run := env.Dir(srcDir).Run(
			llb.Args(args),
			llb.AddMount(srcDir, source, llb.Readonly),
			withGoCaches(),
			llb.WithCustomNamef("[%s] go build %s", t.id, strings.Join(spec.Targets, " ")),
		)
		bins := run.AddMount(outDir, llb.Scratch())

		if spec.Hyperkube {
			hk := env.Dir(hyperkubeDir).Run(
				llb.Args([]string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", outDir + "/" + hyperkubeName, "."}),
				llb.AddMount(hyperkubeDir, dispatcher, llb.Readonly),
				withGoCaches(),
				llb.WithCustomNamef("[%s] go build hyperkube dispatcher", t.id),
			).AddMount(outDir, llb.Scratch())
			bins = llb.Merge([]llb.State{bins, hk}, llb.WithCustomNamef("[%s] collect binaries", t.id))
		}
		// Ops without an image of their own (local source, mkfile, merge)
		// would otherwise take the marshalling client's platform.
		states[t.id] = bins.SetMarshalDefaults(llb.Platform(bp))
	}
	return states, nil
}

// withBaseEnv sets the environment shared by every platform. GOTOOLCHAIN=local
// keeps the image's toolchain (a download would make the output depend on the
// network); Spec.Env can override it.
func withBaseEnv(s llb.State, spec Spec) llb.State {
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
// It needs no daemon; tests use it to inspect the ops.
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

// marshalConcurrently is Marshal for states whose builder image is resolved
// through the daemon: each resolution is a round trip, so platforms go in
// parallel.
func marshalConcurrently(ctx context.Context, states map[string]llb.State) (map[string]*llb.Definition, error) {
	defs := make(map[string]*llb.Definition, len(states))
	results := make(chan struct {
		id  string
		def *llb.Definition
	}, len(states))
	g, gctx := errgroup.WithContext(ctx)
	for id, st := range states {
		g.Go(func() error {
			def, err := st.Marshal(gctx)
			if err != nil {
				return fmt.Errorf("marshal build graph for %s: %w", id, err)
			}
			results <- struct {
				id  string
				def *llb.Definition
			}{id, def}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	close(results)
	for r := range results {
		defs[r.id] = r.def
	}
	return defs, nil
}

// platformOf returns the OCI platform for a normalized ID made by graph.
func platformOf(id string) ocispecs.Platform {
	t, _ := parsePlatform(id)
	return t.platform
}
