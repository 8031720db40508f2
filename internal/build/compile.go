package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// Result lists what Compile wrote.
type Result struct {
	// Platforms are the normalized platforms built, in the order of Spec.Platforms.
	Platforms []string
	// Binaries maps each platform to the absolute paths of its binaries
	// (the targets' and the hyperkube dispatcher), sorted:
	// <outDir>/<os>_<arch>[_<variant>]/<binary>.
	Binaries map[string][]string
	// TestPlatform is the normalized platform the test binaries were
	// compiled for; empty without any.
	TestPlatform string
	// TestBinaries are the absolute paths of the test binaries and test
	// commands, sorted, all in TestPlatform's folder:
	// <outDir>/<os>_<arch>/<name>.test and <outDir>/<os>_<arch>/ginkgo.
	TestBinaries []string
	// Exported maps each platform to the names of the binaries that came
	// out of BuildKit, sorted; the others had not changed and were kept
	// from the output folder.
	Exported map[string][]string
}

// Compile builds spec on the BuildKit daemon behind c and writes the binaries
// to outDir/<os>_<arch>[_<variant>]/, and the test binaries to the test
// platform's folder. Platforms are solved concurrently in one BuildKit
// session. Progress is rendered into progress (interactive if it is a
// terminal; nil for none). A failed compile returns a *CompileError that
// quotes the compiler.
//
// The output folder is kept between builds, as a developer's is: go, inside
// BuildKit, relinks only the binaries whose inputs changed, and only the
// binaries that differ from those in the folder are exported and replaced.
// Each folder ends holding exactly this build's binaries; files whose name
// starts with a dot (such as registry.Pack's layer cache) are left alone. A
// failed build leaves the previous binaries in place.
//
// Each progress writer gets its own display, so a terminal can show the
// interactive one while a log file gets plain lines.
func Compile(ctx context.Context, c *client.Client, spec Spec, outDir string, progress ...io.Writer) (*Result, error) {
	if c == nil {
		return nil, errors.New("compile: no BuildKit client: call Connect or StartDaemon first")
	}
	spec, err := prepare(ctx, c, spec)
	if err != nil {
		return nil, err
	}
	targets, testTarget, err := spec.validate()
	if err != nil {
		return nil, err
	}
	src, err := newSourceFS(spec.SourceDir)
	if err != nil {
		return nil, fmt.Errorf("compile: source %s: %w", spec.SourceDir, err)
	}
	outDir, err = filepath.Abs(outDir)
	if err != nil {
		return nil, fmt.Errorf("compile: output folder %s: %w", outDir, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("compile: create output folder: %w", err)
	}
	// Export into a fresh folder first, so a failed build leaves the
	// previous binaries intact; collect then moves in what changed.
	staging, err := os.MkdirTemp(outDir, ".export-")
	if err != nil {
		return nil, fmt.Errorf("compile: create staging folder in %s: %w", outDir, err)
	}
	defer os.RemoveAll(staging)

	all := allTargets(targets, testTarget)
	ids := make([]string, len(all))
	have := held{}
	for i, t := range all {
		ids[i] = t.id
		have[t.id] = readHeld(filepath.Join(outDir, t.dirName()))
	}
	opt := client.SolveOpt{
		// The platforms asked for, as a frontend would be asked: BuildKit
		// checks the result against them and warns on a mismatch.
		FrontendAttrs: map[string]string{"platform": strings.Join(ids, ",")},
		LocalMounts:   map[string]fsutil.FS{LocalSourceName: src},
		// The same key for the same folder lets BuildKit send only the
		// files that changed since the last build.
		SharedKey: digest.FromString(spec.SourceDir).Encoded()[:32],
		Exports: []client.ExportEntry{{
			Type:      client.ExporterLocal,
			OutputDir: staging,
			// One folder per platform even for a single platform.
			Attrs: map[string]string{"platform-split": "true"},
		}},
	}

	tap := newStatusTap()
	status := make(chan *client.SolveStatus)
	var writers []io.Writer
	for _, w := range progress {
		if w != nil {
			writers = append(writers, w)
		}
	}
	if len(writers) == 0 {
		writers = []io.Writer{nil} // one quiet display drains the stream
	}
	shown := make([]chan *client.SolveStatus, len(writers))
	for i := range shown {
		shown[i] = make(chan *client.SolveStatus, 16)
	}
	go tap.run(status, shown)

	var eg errgroup.Group
	for i, w := range writers {
		eg.Go(func() error { return display(ctx, w, shown[i]) })
	}
	var solveErr error
	eg.Go(func() error {
		_, solveErr = c.Build(ctx, opt, "hyperfork", buildFunc(spec, have), status)
		return nil
	})
	displayErr := eg.Wait()
	if solveErr != nil {
		err := tap.explain(solveErr)
		if ce := (*CompileError)(nil); errors.As(err, &ce) && strings.HasPrefix(ce.Step, "resolve image config") {
			err = fmt.Errorf("resolve builder image %s (%s): %w", spec.BuilderImage, imageHint, err)
		}
		return nil, fmt.Errorf("compile %s for %s: %w", spec.SourceDir, joinIDs(all), err)
	}
	if displayErr != nil && writers[0] != nil {
		fmt.Fprintf(writers[0], "warning: progress display: %v\n", displayErr)
	}
	return collect(staging, outDir, spec, targets, testTarget, have)
}

// allTargets lists the build platforms, then the test platform if it is not
// one of them.
func allTargets(targets []target, test *target) []target {
	all := slices.Clone(targets)
	if test != nil && !slices.ContainsFunc(all, func(t target) bool { return t.id == test.id }) {
		all = append(all, *test)
	}
	return all
}

// imageHint says what to check when the builder image cannot be fetched.
const imageHint = "check build.builderImage and that BuildKit can reach its registry; a plain-HTTP registry must be listed as insecure"

// prepare fills what Compile learns from the machine: the absolute source
// folder, whether it vendors, whether it has ginkgo, and the worker's
// platform to run the compiler on.
func prepare(ctx context.Context, c *client.Client, spec Spec) (Spec, error) {
	if spec.SourceDir == "" {
		return spec, errors.New("compile: source folder is empty: set Spec.SourceDir to the checked-out tree")
	}
	abs, err := filepath.Abs(spec.SourceDir)
	if err != nil {
		return spec, fmt.Errorf("compile: source folder %s: %w", spec.SourceDir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return spec, fmt.Errorf("compile: source folder %s is not a readable folder (check the path): %v", abs, err)
	}
	spec.SourceDir = abs
	if _, err := os.Stat(filepath.Join(abs, "vendor", "modules.txt")); err == nil {
		spec.Vendor = true
	}
	if spec.TestCommands == nil && len(spec.TestTargets) > 0 && hasGinkgo(abs) {
		spec.TestCommands = []string{GinkgoCommand}
	}
	avail, err := WorkerPlatforms(ctx, c)
	if err != nil {
		return spec, fmt.Errorf("compile: %w", err)
	}
	if spec.BuildPlatform == "" {
		spec.BuildPlatform = avail[0]
	} else if t, err := parsePlatform(spec.BuildPlatform); err == nil && !slices.Contains(avail, t.id) {
		return spec, fmt.Errorf("compile: build platform %s is not one the BuildKit workers run (%v): leave it empty to use the worker's", t.id, avail)
	}
	return spec, nil
}

// hasGinkgo reports whether the tree at dir can build ginkgo's command: it
// vendors it, or a go.mod requires ginkgo v2.
func hasGinkgo(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "vendor", filepath.FromSlash(GinkgoCommand))); err == nil && fi.IsDir() {
		return true
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	module := strings.TrimSuffix(GinkgoCommand, "/ginkgo")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == module {
			return true
		}
	}
	return false
}

// buildFunc solves every platform's graph concurrently inside the gateway and
// returns them as one multi-platform result for the local exporter.
func buildFunc(spec Spec, have held) gateway.BuildFunc {
	return func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		// Resolving the image config gives the toolchain's real PATH and
		// pins the builder image by digest for the whole build.
		states, err := graph(spec, have, llb.WithMetaResolver(gw))
		if err != nil {
			return nil, err
		}
		defs, err := Marshal(ctx, states)
		if err != nil {
			// Marshalling fails here only when the builder image's
			// config cannot be fetched.
			return nil, fmt.Errorf("resolve builder image %s (%s): %w", spec.BuilderImage, imageHint, err)
		}
		ids := make([]string, 0, len(defs))
		for id := range defs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		refs := make([]gateway.Reference, len(ids))
		g, gctx := errgroup.WithContext(ctx)
		for i, id := range ids {
			g.Go(func() error {
				res, err := gw.Solve(gctx, gateway.SolveRequest{Definition: defs[id].ToPB(), Evaluate: true})
				if err != nil {
					return fmt.Errorf("build %s: %w", id, err)
				}
				ref, err := res.SingleRef()
				if err != nil {
					return fmt.Errorf("build %s: %w", id, err)
				}
				refs[i] = ref
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		out := gateway.NewResult()
		var meta exptypes.Platforms
		for i, id := range ids {
			out.AddRef(id, refs[i])
			meta.Platforms = append(meta.Platforms, exptypes.Platform{ID: id, Platform: platformOf(id)})
		}
		dt, err := json.Marshal(meta)
		if err != nil {
			return nil, err
		}
		out.AddMeta(exptypes.ExporterPlatformsKey, dt)
		return out, nil
	}
}

// collect moves the exported binaries of each platform from staging into
// its folder of outDir, checks that the binaries not exported are there as
// the build made them, removes the binaries of targets no longer built, and
// records what the folder holds for the next build. A single-platform
// export that came out flat (older daemons ignore platform-split) is moved
// into its platform folder first, so the layout is always the same.
func collect(staging, outDir string, spec Spec, targets []target, test *target, have held) (*Result, error) {
	res := &Result{Binaries: map[string][]string{}, Exported: map[string][]string{}}
	all := allTargets(targets, test)
	for _, t := range all {
		from := filepath.Join(staging, t.dirName())
		if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) && len(all) == 1 {
			if err := flatToDir(staging, from); err != nil {
				return nil, err
			}
		}
		built := slices.ContainsFunc(targets, func(b target) bool { return b.id == t.id })
		var names, tests []string
		if built {
			for _, tg := range spec.Targets {
				names = append(names, binaryName(tg))
			}
			if spec.Hyperkube {
				names = append(names, hyperkubeName)
			}
		}
		if test != nil && t.id == test.id {
			for _, tt := range spec.TestTargets {
				tests = append(tests, testBinaryName(tt))
			}
			for _, c := range spec.TestCommands {
				tests = append(tests, binaryName(c))
			}
		}
		exported, err := mergeExport(from, filepath.Join(outDir, t.dirName()), append(slices.Clone(names), tests...), have[t.id])
		if err != nil {
			return nil, fmt.Errorf("compile: %s: %w", t.id, err)
		}
		res.Exported[t.id] = exported
		to := filepath.Join(outDir, t.dirName())
		for _, n := range names {
			res.Binaries[t.id] = append(res.Binaries[t.id], filepath.Join(to, n))
		}
		slices.Sort(res.Binaries[t.id])
		for _, n := range tests {
			res.TestBinaries = append(res.TestBinaries, filepath.Join(to, n))
		}
		if built {
			res.Platforms = append(res.Platforms, t.id)
		}
	}
	if test != nil {
		res.TestPlatform = test.id
		slices.Sort(res.TestBinaries)
	}
	return res, nil
}

// mergeExport makes the folder to hold exactly the binaries named, from the
// export in from: exported files replace those in to; a binary not exported
// must be in to already with the digest its step's manifest gives.
func mergeExport(from, to string, names []string, have map[string]string) ([]string, error) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return nil, err
	}
	want, err := readManifests(filepath.Join(from, manifestDir))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return nil, fmt.Errorf("BuildKit exported no folder: %w", err)
	}
	var exported []string
	for _, e := range entries {
		if e.Name() == manifestDir {
			continue
		}
		if !slices.Contains(names, e.Name()) {
			return nil, fmt.Errorf("BuildKit exported %s, which the build does not make", e.Name())
		}
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return nil, err
		}
		exported = append(exported, e.Name())
	}
	for _, n := range names {
		if slices.Contains(exported, n) {
			continue
		}
		d, ok := want[n]
		if !ok {
			return nil, fmt.Errorf("BuildKit exported neither %s nor a manifest naming it", n)
		}
		if have[n] != d {
			return nil, fmt.Errorf("%s was not exported because the output folder held it, but %s is not the build's (%s): remove %s and build again", n, filepath.Join(to, n), d, to)
		}
	}
	// The binaries of targets no longer built go, as they would from a
	// fresh folder; dot files (caches) stay.
	if entries, err := os.ReadDir(to); err == nil {
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") && !slices.Contains(names, e.Name()) {
				os.Remove(filepath.Join(to, e.Name()))
			}
		}
	}
	slices.Sort(exported)
	return exported, writeHeld(to, want)
}

// readManifests merges the manifests the build's steps wrote.
func readManifests(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("BuildKit exported no manifest of the binaries: %w", err)
	}
	all := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", e.Name(), err)
		}
		for k, v := range m {
			all[k] = v
		}
	}
	return all, nil
}

// flatToDir moves every entry of dir into the new folder sub.
func flatToDir(dir, sub string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("compile: read export %s: %w", dir, err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(sub, e.Name())); err != nil {
			return fmt.Errorf("compile: %w", err)
		}
	}
	return nil
}

// joinIDs lists the platforms for messages.
func joinIDs(ts []target) string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.id
	}
	return fmt.Sprint(ids)
}
