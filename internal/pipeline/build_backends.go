package pipeline

// The build stage's connections: the BuildKit daemons that compile each
// platform, and the registry (or local OCI layout) candidates go to.

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/loopback"
	"github.com/hyperfork/hyperfork/internal/registry"
)

// compileAll compiles every platform on the daemon that builds it:
// build.buildkitByPlatform may send platforms to their own (remote,
// native) daemons; the rest go to the default one. Each daemon writes only
// its platforms' folders of outDir, so the result is the same as one local
// build.
func (b *builder) compileAll(ctx context.Context, spec build.Spec, outDir string, progress ...io.Writer) (*build.Result, error) {
	groups := map[string][]string{}
	var order []string
	for _, p := range spec.Platforms {
		addr := b.r.cfg.Build.BuildKitByPlatform[p]
		if _, ok := groups[addr]; !ok {
			order = append(order, addr)
		}
		groups[addr] = append(groups[addr], p)
	}
	// The test binaries are built by one daemon only: the one that builds
	// test.platform, else the default one. Each daemon owns the folders of
	// what it builds, and a second owner of the test platform's folder
	// would take the other's binaries for stale ones.
	testAddr := ""
	if _, ok := groups[""]; !ok && len(order) > 0 {
		testAddr = order[0]
	}
	for _, addr := range order {
		for _, p := range groups[addr] {
			if spec.TestPlatform != "" && build.PlatformDir(p) == build.PlatformDir(spec.TestPlatform) {
				testAddr = addr
			}
		}
	}
	all := &build.Result{Binaries: map[string][]string{}}
	for _, addr := range order {
		compile, err := b.connect(ctx, addr)
		if err != nil {
			return nil, err
		}
		sub := spec
		sub.Platforms = groups[addr]
		if addr != testAddr {
			sub.TestTargets, sub.TestCommands = nil, nil
		}
		res, err := compile(ctx, sub, outDir, progress...)
		if err != nil {
			return nil, err
		}
		for p, bins := range res.Binaries {
			all.Binaries[p] = bins
		}
	}
	// Keep the configured order of platforms in the image index.
	for _, p := range spec.Platforms {
		for q := range all.Binaries {
			if build.PlatformDir(q) == build.PlatformDir(p) {
				all.Platforms = append(all.Platforms, q)
			}
		}
	}
	return all, nil
}

// connect reaches a BuildKit daemon once per run. An empty address means
// the default: BUILDKIT_HOST, else build.buildkit, else an embedded
// buildkitd kept running between runs for its warm cache.
func (b *builder) connect(ctx context.Context, addr string) (compileFunc, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.compilers[addr]; ok {
		return c, nil
	}
	key := addr
	r := b.r
	if addr == "" {
		addr = r.opts.BuildKitHost
	}
	if addr == "" {
		addr = r.cfg.Build.BuildKit
	}
	if addr == "" {
		var insecure []string
		if r.cfg.Publish.Insecure && r.cfg.Publish.Registry != "" {
			insecure = append(insecure, strings.SplitN(r.cfg.Publish.Registry, "/", 2)[0])
		}
		if h := imageHost(r.cfg.Build.BuilderImage); h != "" {
			insecure = append(insecure, h)
		}
		d, err := build.StartDaemon(ctx, build.DaemonOptions{StateDir: r.work, InsecureRegistries: insecure,
			Logger: r.log, ModuleDir: r.opts.ModuleDir, KeepRunning: true})
		if err != nil {
			return nil, fmt.Errorf("embedded buildkitd: %w", err)
		}
		b.daemon, addr = d, d.Addr()
	}
	var copts []build.ConnectOption
	if t := r.cfg.Build.BuildKitTLS; t != nil && strings.HasPrefix(addr, "tcp://") {
		copts = append(copts, build.WithTLS(build.TLS{CA: t.CA, Cert: t.Cert, Key: t.Key, ServerName: t.ServerName}))
	}
	c, err := build.Connect(ctx, addr, copts...)
	if err != nil {
		return nil, err
	}
	compile := func(ctx context.Context, spec build.Spec, outDir string, progress ...io.Writer) (*build.Result, error) {
		return build.Compile(ctx, c, spec, outDir, progress...)
	}
	if b.compilers == nil {
		b.compilers = map[string]compileFunc{}
	}
	b.compilers[key] = compile
	b.closers = append(b.closers, c.Close)
	return compile, nil
}

// imageHost returns the registry host of a reference when it names one
// explicitly on loopback (BuildKit needs to be told to use plain HTTP).
func imageHost(ref string) string {
	host, _, ok := strings.Cut(ref, "/")
	if ok && loopback.Host(host) {
		return host
	}
	return ""
}

func (b *builder) repository() (*registry.Repository, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.repo != nil {
		return b.repo, nil
	}
	cfg := b.r.cfg
	opts := registry.Options{Ref: cfg.Publish.Registry, Insecure: cfg.Publish.Insecure, Logger: b.r.log,
		Username: b.r.secret(cfg.Publish.UsernameEnv), Password: b.r.secret(cfg.Publish.PasswordEnv)}
	if opts.Ref == "" {
		opts.LayoutDir = filepath.Join(b.r.stateDir(), "oci")
	}
	repo, err := registry.Open(opts)
	if err != nil {
		return nil, err
	}
	b.repo = repo
	return repo, nil
}

func (b *builder) credentials() []registry.Credentials {
	cfg := b.r.cfg
	if cfg.Publish.Registry == "" || cfg.Publish.UsernameEnv == "" {
		return nil
	}
	return []registry.Credentials{{Registry: strings.SplitN(cfg.Publish.Registry, "/", 2)[0],
		Username: b.r.secret(cfg.Publish.UsernameEnv), Password: b.r.secret(cfg.Publish.PasswordEnv)}}
}
