package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// builder is the build stage: what it shares between branches in one run
// is the BuildKit connection (made on first need: a run with nothing to
// build never contacts BuildKit) and the image destination.
type builder struct {
	r  *Runner
	mu sync.Mutex
	// compilers hold the BuildKit connections by address.
	compilers map[string]compileFunc
	closers   []func() error
	daemon    *build.Daemon
	repo      *registry.Repository
}

// compileFunc compiles on one BuildKit daemon.
type compileFunc func(ctx context.Context, spec build.Spec, outDir string, progress ...io.Writer) (*build.Result, error)

func (b *builder) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.closers {
		c()
	}
	b.closers, b.compilers = nil, nil
	if b.daemon != nil {
		b.daemon.Close()
		b.daemon = nil
	}
}

// key is the build stage's input: the fork commit and everything in the
// config that changes what is built.
func (b *builder) key(commit string) string {
	c := b.r.cfg
	type image struct {
		Name, Base string
		Binaries   []string
		Entrypoint []string
		Labels     map[string]string
		Hyperkube  bool
	}
	var imgs []image
	for _, i := range c.Images {
		imgs = append(imgs, image{i.Name, i.Base, i.Binaries, i.Entrypoint, i.Labels, i.Hyperkube})
	}
	return hashKey("build/v1", commit, c.Build.BuilderImage, c.Build.Platforms, c.Build.Targets, c.Build.LDFlags,
		c.Build.Env, c.Build.GoProxy, imgs, c.Publish.Registry, c.Build.TestTargets, c.Build.TestCommands, c.Test.Platform)
}

// decide runs the build when the fork head with this config was not
// processed before (built, or failed to compile), or when forced.
func (b *builder) decide(_ context.Context, f *flow, st store.BranchState) decision {
	switch {
	case f.syncFailed != "":
		return decision{why: f.syncFailed + ": the fork head is unknown"}
	case f.head == nil:
		return decision{why: "no fork head"}
	case f.head.Pending:
		return decision{run: true, why: "the sync will make a new merge commit"}
	}
	key := b.key(f.head.Commit)
	rec, seen := st.Stages[stageBuild]
	switch {
	case b.r.opts.Force:
		return decision{run: true, key: key, why: "HYPERFORK_FORCE=1"}
	case seen && rec.Key == key:
		return decision{key: key, why: fmt.Sprintf("%s was processed with this build config (%s)", short(f.head.Commit), rec.Status)}
	case st.Build.Commit == f.head.Commit:
		return decision{run: true, key: key, why: fmt.Sprintf("%s was built with another build config", short(f.head.Commit))}
	case st.Build.Commit == "":
		return decision{run: true, key: key, why: fmt.Sprintf("%s was never built", short(f.head.Commit))}
	}
	return decision{run: true, key: key, why: fmt.Sprintf("fork head %s is new (last build %s)", short(f.head.Commit), short(st.Build.Commit))}
}

// skip reports a build that does not run; a processed commit hands its
// candidate on.
func (b *builder) skip(f *flow, st store.BranchState, d decision) {
	out := &report.Build{Status: report.BuildSkipped, Platforms: []string{}, Message: d.why}
	f.rb.Build = out
	if d.key == "" {
		return
	}
	out.Status, out.Commit = report.BuildUpToDate, f.head.Commit
	out.Image, out.Images, out.Version, out.Platforms = st.Build.Image, st.Build.Named, st.Build.Version, st.Build.Platforms
	out.Artifacts = st.Build.Artifacts
	if out.Platforms == nil {
		out.Platforms = []string{}
	}
	if st.Build.Status == report.BuildError {
		out.Message = "commit already failed to build: " + st.Build.Error + " (set HYPERFORK_FORCE=1 to retry)"
	} else {
		f.cand = candidateOf(st)
	}
	b.r.printf("%s: build up-to-date (%s %s)\n", f.branch.Name, short(f.head.Commit), orDash(st.Build.Status))
}

// run builds the fork head and hands the candidate on.
func (b *builder) run(ctx context.Context, f *flow, d decision) {
	r := b.r
	br, head := f.branch, f.head.Commit
	out := &report.Branch{Name: br.Name, Build: &report.Build{Status: report.BuildSkipped, Commit: head, Platforms: []string{}}}
	defer func() {
		f.rb.Build = out.Build
		f.rb.Error = joinErr(f.rb.Error, out.Error)
		f.rb.ExitCode = report.Combine(f.rb.ExitCode, out.ExitCode)
	}()
	fail := func(err error) {
		out.Build.Status, out.Error, out.ExitCode = report.BuildError, r.redactor.String(err.Error()), report.ExitFailed
		out.Build.Message = out.Error
	}
	res, scratch, err := b.buildCommit(ctx, br, head)
	logPath := ""
	if scratch != "" {
		defer os.Remove(scratch)
		loc, uerr := r.keepLog(ctx, "build/"+safeName(br.Name)+"/"+head[:12]+".log", scratch)
		if uerr != nil {
			// The build's outcome stands; the log's loss is said.
			out.Error = joinErr(out.Error, uerr.Error())
			out.ExitCode = report.ExitFailed
		}
		logPath = loc
	}
	out.Build.Log = logPath
	if stopped := interruption(ctx); err != nil && stopped != nil {
		// Stopped midway: not the commit's fault, nothing to record or
		// notify; the next run builds it.
		fail(fmt.Errorf("build of %s %v", short(head), stopped))
		r.printf("%s: %s\n", br.Name, out.Error)
		return
	}
	if err != nil {
		fail(err)
		var ce *build.CompileError
		broken := errors.As(err, &ce)
		// A broken commit is announced once for its build key; a fault of
		// BuildKit, the registry or the network on every run that meets it.
		id := br.Name + "/" + notify.EventBuildError + "/" + d.key
		if !broken {
			// Not the commit's fault: nothing is recorded, so the next run
			// tries this commit again.
			out.Build.Message = out.Error + " (not the commit's fault: the next run retries it)"
			id += "/" + r.runID
		}
		// Announced before it is recorded: a run killed in between builds
		// the commit again and announces under the same id, which the
		// delivery ledger sends nowhere twice; the other order would lose
		// the announcement.
		recorded := out.Error
		r.notifyBuild(ctx, out, scratch, id)
		// Crash tests: announced, the broken commit not recorded yet.
		killpoint.Reach("build.announced")
		if broken {
			// The commit itself is broken: record it so that the next run
			// does not rebuild it in a loop; the next commit is built.
			serr := r.record(ctx, br.Name, stageBuild, d.key, report.BuildError, func(st *store.BranchState) {
				st.Build = store.BuildState{Commit: head, Time: r.opts.Now().UTC(), Log: logPath,
					Status: report.BuildError, Error: recorded}
			})
			if serr != nil {
				out.Error = joinErr(out.Error, serr.Error())
			}
		}
		r.printf("%s: build error at %s: %s\n", br.Name, short(head), out.Error)
		return
	}
	// The server tarballs go to the artifact store beside the build log,
	// under the candidate's commit.
	artifacts := map[string]string{}
	for name, local := range res.tarballs {
		key := "candidates/" + safeName(br.Name) + "/" + head[:12] + "/" + registry.ServerTarballName(strings.TrimPrefix(name, "server-linux-"))
		loc, err := r.keepLog(ctx, key, local)
		os.Remove(local)
		if err != nil {
			fail(err)
			return
		}
		artifacts[name] = loc
	}
	primary := res.primary()
	out.Build.Status, out.Build.Version, out.Build.Platforms = report.BuildBuilt, res.version, res.platforms
	out.Build.Image, out.Build.Images, out.Build.Artifacts = primary, res.named, artifacts
	f.cand = &Candidate{Commit: head, Version: res.version, Images: res.named, Primary: primary, Platforms: res.platforms, Log: logPath, Artifacts: artifacts}
	// Crash tests: the log and tarballs are kept, the build not recorded.
	killpoint.Reach("build.kept")
	// The candidate is pushed: record it even if a signal came meanwhile.
	err = r.record(ctx, br.Name, stageBuild, d.key, report.BuildBuilt, func(st *store.BranchState) {
		st.Build = store.BuildState{Commit: head, Time: r.opts.Now().UTC(), Log: logPath, Status: report.BuildBuilt,
			Version: res.version, Image: primary, Images: res.images, Named: res.named, Platforms: res.platforms, Artifacts: artifacts}
	})
	if err != nil {
		fail(err)
		f.cand = nil
		return
	}
	// Crash tests: the build is recorded, the tests not begun.
	killpoint.Reach("build.recorded")
	r.printf("%s: built %s (%s) as candidate %s\n", br.Name, short(head), res.version, primary)
}

type buildResult struct {
	version   string
	platforms []string
	images    []string
	named     map[string]string
	// tarballs are the server tarballs in the work folder, by artifact name.
	tarballs map[string]string
}

// primary is the image the report's build.image names: hyperkube, or the
// first image when there is none.
func (res *buildResult) primary() string {
	if ref, ok := res.named["hyperkube"]; ok {
		return ref
	}
	return res.images[0]
}

// buildCommit compiles commit and pushes its images as candidates. The
// build log is kept in the state folder whatever happens.
func (b *builder) buildCommit(ctx context.Context, br config.Branch, commit string) (*buildResult, string, error) {
	r, cfg := b.r, b.r.cfg
	// The log is written in the work folder and goes to the artifact store
	// when the build ends (see run).
	logDir := filepath.Join(r.work, "tmp")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("build log folder: %w", err)
	}
	logPath := filepath.Join(logDir, "build-"+safeName(br.Name)+"-"+commit[:12]+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("build log: %w", err)
	}
	defer logf.Close()
	// Secrets are held back across writes; Close flushes the last line.
	logw := exec.NewRedactingWriter(logf, r.redactor)
	defer logw.Close()

	if len(cfg.Images) == 0 {
		return nil, logPath, errNoImages
	}
	// One line per step with its duration: where a slow build spends its time.
	start := time.Now()
	step := func(what string, args ...any) {
		r.log.Info(what, append([]any{"branch", br.Name, "took", time.Since(start).Round(time.Millisecond)}, args...)...)
		start = time.Now()
	}
	syncer, err := r.sharedSyncer(ctx)
	if err != nil {
		return nil, logPath, err
	}
	if err := syncer.EnsureCommit(ctx, br.Name, commit); err != nil {
		return nil, logPath, err
	}
	g := syncer.Git()
	version, err := g.Describe(ctx, commit)
	if err != nil {
		return nil, logPath, err
	}
	when, err := g.CommitTime(ctx, commit)
	if err != nil {
		return nil, logPath, err
	}
	src := filepath.Join(r.work, "src", safeName(br.Name))
	step("fetched and described", "commit", short(commit), "version", version)
	if err := g.Export(ctx, commit, src); err != nil {
		return nil, logPath, err
	}
	step("exported source", "dir", src)
	spec := build.Spec{
		SourceDir: src, Targets: cfg.Build.Targets, Platforms: cfg.Build.Platforms, LDFlags: cfg.Build.LDFlags,
		Stamp:        build.Stamp{Version: version, Commit: commit, TreeState: "clean", BuildDate: when},
		BuilderImage: cfg.Build.BuilderImage, Env: cfg.Build.Env, GoProxy: cfg.Build.GoProxy,
		// The test binaries for test.platform, in the same solve.
		TestTargets: cfg.Build.TestTargets, TestCommands: cfg.Build.TestCommands, TestPlatform: cfg.Test.Platform,
	}
	for _, img := range cfg.Images {
		spec.Hyperkube = spec.Hyperkube || img.Hyperkube
	}
	outDir := filepath.Join(r.work, "out", safeName(br.Name))
	// The log gets plain lines; the terminal, if there is one, BuildKit's
	// interactive display.
	res, err := b.compileAll(ctx, spec, outDir, logw, r.progressOut())
	if err != nil {
		fmt.Fprintf(logw, "\nerror: %v\n", err)
		return nil, logPath, fmt.Errorf("compile %s at %s: %w", br.Name, short(commit), err)
	}
	step("compiled", "platforms", res.Platforms)
	// Which commit the output folder holds: the test stage runs exactly
	// these binaries, so it must know they are the candidate's.
	if err := os.WriteFile(outDir+".commit", []byte(commit+"\n"), 0o644); err != nil {
		return nil, logPath, fmt.Errorf("mark build output of %s: %w", br.Name, err)
	}
	repo, err := b.repository()
	if err != nil {
		return nil, logPath, err
	}
	source := cfg.Fork.URL
	if source == "" {
		source = cfg.Upstream.URL
	}
	ann := map[string]string{
		registry.AnnotationRevision: commit,
		registry.AnnotationSource:   exec.RedactURL(source),
		registry.AnnotationVersion:  version,
		registry.AnnotationCreated:  when.UTC().Format(time.RFC3339),
		registry.AnnotationBranch:   br.Name,
	}
	out := &buildResult{version: version, platforms: res.Platforms, named: map[string]string{}, tarballs: map[string]string{}}
	indexes := map[string]registry.Index{}
	for _, img := range cfg.Images {
		idx, err := registry.Pack(ctx, registry.PackSpec{Image: img, Platforms: imagePlatforms(cfg, img, res.Platforms), BinDir: outDir,
			Created: when, Annotations: ann, Insecure: cfg.Publish.Insecure, Auth: b.credentials(), Logger: r.log})
		if err != nil {
			return nil, logPath, fmt.Errorf("pack image %s for %s: %w", img.Name, br.Name, err)
		}
		step("packed", "image", img.Name)
		ref, err := repo.PushCandidate(ctx, idx, img.Name, br.Name, commit)
		if err != nil {
			return nil, logPath, fmt.Errorf("push candidate %s for %s: %w", img.Name, br.Name, err)
		}
		step("pushed", "image", ref)
		fmt.Fprintf(logw, "candidate %s\n", ref)
		out.images = append(out.images, ref)
		out.named[img.Name] = ref
		indexes[img.Name] = idx
	}
	// Crash tests: the candidate is in the registry; its log, tarballs and
	// record are not kept yet.
	killpoint.Reach("build.pushed")
	if err := b.serverTarballs(br, commit, version, when, outDir, res.Platforms, indexes, out); err != nil {
		return nil, logPath, err
	}
	if len(out.tarballs) > 0 {
		step("wrote server tarballs", "archs", len(out.tarballs))
	}
	return out, logPath, nil
}

// imagePlatforms is where an image is packed: the conformance image holds
// test binaries built for test.platform only.
func imagePlatforms(cfg *config.Pipeline, img config.Image, built []string) []string {
	want := cfg.ImagePlatforms(img)
	var out []string
	for _, p := range built {
		for _, w := range want {
			if build.PlatformDir(p) == build.PlatformDir(w) {
				out = append(out, p)
			}
		}
	}
	return out
}

// serverTarballs writes kubernetes-server-linux-<arch>.tar.gz, the layout
// of Kubernetes' own release that `kind build node-image --type file`
// reads, for every linux platform built, when the candidate has the four
// server images. The tarballs are written in the work folder; run keeps
// them in the artifact store beside the build log.
func (b *builder) serverTarballs(br config.Branch, commit, version string, when time.Time, outDir string, platforms []string, indexes map[string]registry.Index, out *buildResult) error {
	for _, c := range registry.ServerImages() {
		if indexes[c] == nil {
			return nil // not a Kubernetes candidate: no server images, no tarball
		}
	}
	for _, p := range platforms {
		goos, arch, _ := strings.Cut(p, "/")
		if goos != "linux" {
			continue
		}
		arch, _, _ = strings.Cut(arch, "/")
		imgs := map[string]registry.Image{}
		for _, c := range registry.ServerImages() {
			img, err := registry.PlatformImage(indexes[c], p)
			if err != nil {
				return fmt.Errorf("server tarball for %s %s: %w", br.Name, p, err)
			}
			imgs[c] = img
		}
		path := filepath.Join(b.r.work, "tmp", safeName(br.Name)+"-"+commit[:12]+"-"+registry.ServerTarballName(arch))
		f, err := createFile(path)
		if err != nil {
			return fmt.Errorf("server tarball for %s: %w", br.Name, err)
		}
		err = registry.WriteServerTarball(f, registry.ServerTarball{Version: version, Arch: arch, BinDir: outDir, Images: imgs, Created: when})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("server tarball %s for %s: %w", registry.ServerTarballName(arch), br.Name, err)
		}
		out.tarballs["server-linux-"+arch] = path
	}
	return nil
}

// notifyBuild tells the administrator a build failed, with the end of the
// log (read from the work folder's copy) attached.
func (r *Runner) notifyBuild(ctx context.Context, b *report.Branch, logFile, id string) {
	m := notify.Message{Event: notify.EventBuildError, ID: id, Branch: b.Name, Status: b.Build.Status,
		Title: fmt.Sprintf("hyperfork: build of %s at %s failed", b.Name, short(b.Build.Commit)),
		Text:  b.Error, Build: b.Build}
	if data, err := os.ReadFile(logFile); err == nil {
		m.Attachments = append(m.Attachments, notify.Attachment{Name: path.Base(b.Build.Log), ContentType: "text/plain", Data: tail(data, 256<<10)})
	}
	if err := r.notifier.Send(ctx, m); err != nil {
		b.Error = joinErr(b.Error, r.redactor.String(err.Error()))
	}
}

// progressOut is where BuildKit's progress display goes besides the log:
// stderr, so stdout stays the summary. nil: no display.
func (r *Runner) progressOut() io.Writer {
	return r.opts.Progress
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[len(b)-n:]
}

// safeName is the branch's folder name: injective, so "rel/1" and "rel_1"
// never share a work folder or a log folder.
func safeName(branch string) string { return store.EncodeName(branch) }

// errNoImages stops a build that would have nothing to push.
var errNoImages = errors.New("build.images is empty: nothing to pack; list at least one image such as images/hyperkube.yaml")

// createFile creates path and its folder.
func createFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}
