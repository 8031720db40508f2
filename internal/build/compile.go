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
	// Binaries maps each platform to the absolute paths of its binaries,
	// sorted: <outDir>/<os>_<arch>[_<variant>]/<binary>.
	Binaries map[string][]string
}

// Compile builds spec on the BuildKit daemon behind c and writes the binaries
// to outDir/<os>_<arch>[_<variant>]/, replacing those folders if they exist.
// Platforms are solved concurrently in one BuildKit session. Progress is
// rendered into progress (interactive if it is a terminal; nil for none).
// A failed compile returns a *CompileError that quotes the compiler.
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
	targets, err := spec.validate()
	if err != nil {
		return nil, err
	}
	src, err := fsutil.NewFS(spec.SourceDir)
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
	// previous binaries intact and stale files never mix with new ones.
	staging, err := os.MkdirTemp(outDir, ".export-")
	if err != nil {
		return nil, fmt.Errorf("compile: create staging folder in %s: %w", outDir, err)
	}
	defer os.RemoveAll(staging)

	ids := make([]string, len(targets))
	for i, t := range targets {
		ids[i] = t.id
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
		_, solveErr = c.Build(ctx, opt, "hyperfork", buildFunc(spec), status)
		return nil
	})
	displayErr := eg.Wait()
	if solveErr != nil {
		err := tap.explain(solveErr)
		if ce := (*CompileError)(nil); errors.As(err, &ce) && strings.HasPrefix(ce.Step, "resolve image config") {
			err = fmt.Errorf("resolve builder image %s (%s): %w", spec.BuilderImage, imageHint, err)
		}
		return nil, fmt.Errorf("compile %s for %s: %w", spec.SourceDir, joinIDs(targets), err)
	}
	if displayErr != nil && writers[0] != nil {
		fmt.Fprintf(writers[0], "warning: progress display: %v\n", displayErr)
	}
	return collect(staging, outDir, targets)
}

// imageHint says what to check when the builder image cannot be fetched.
const imageHint = "check build.builderImage and that BuildKit can reach its registry; a plain-HTTP registry must be listed as insecure"

// prepare fills what Compile learns from the machine: the absolute source
// folder, whether it vendors, and the worker's platform to run the compiler on.
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

// buildFunc solves every platform's graph concurrently inside the gateway and
// returns them as one multi-platform result for the local exporter.
func buildFunc(spec Spec) gateway.BuildFunc {
	return func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		// Resolving the image config gives the toolchain's real PATH and
		// pins the builder image by digest for the whole build.
		states, err := graph(spec, llb.WithMetaResolver(gw))
		if err != nil {
			return nil, err
		}
		defs, err := marshalConcurrently(ctx, states)
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

// collect moves each platform's folder from staging into outDir and lists the
// binaries. A single-platform export that came out flat (older daemons ignore
// platform-split) is moved into its platform folder, so the layout is always
// the same.
func collect(staging, outDir string, targets []target) (*Result, error) {
	res := &Result{Binaries: map[string][]string{}}
	for _, t := range targets {
		from := filepath.Join(staging, t.dirName())
		if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) && len(targets) == 1 {
			if err := flatToDir(staging, from); err != nil {
				return nil, err
			}
		}
		to := filepath.Join(outDir, t.dirName())
		if err := os.RemoveAll(to); err != nil {
			return nil, fmt.Errorf("compile: replace %s: %w", to, err)
		}
		if err := os.Rename(from, to); err != nil {
			return nil, fmt.Errorf("compile: BuildKit exported no folder for %s: %w", t.id, err)
		}
		entries, err := os.ReadDir(to)
		if err != nil {
			return nil, fmt.Errorf("compile: list %s: %w", to, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				res.Binaries[t.id] = append(res.Binaries[t.id], filepath.Join(to, e.Name()))
			}
		}
		res.Platforms = append(res.Platforms, t.id)
	}
	return res, nil
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
