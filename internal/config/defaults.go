package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Defaults for keys left out of branches.yaml.
const (
	DefaultBuilderImage = "golang:1.26"
	DefaultRunner       = "kubetest2"
	DefaultTimeout      = 3 * time.Hour
	DefaultPublishKeep  = 5
	DefaultLogsKeep     = 10
	DefaultStateStore   = ".hyperfork"
	DefaultLease        = 2 * time.Minute
	// Runner kubetest2's defaults: the conformance specs, the parallel
	// ones first, then the serial ones one at a time.
	DefaultFocusRegex       = `\[Conformance\]`
	DefaultSkipRegex        = `\[Serial\]`
	DefaultSerialFocusRegex = `\[Serial\].*\[Conformance\]`
	DefaultGinkgoParallel   = 4
	DefaultNodeImage        = "hyperfork/kind-node"
	// DefaultTestPlatform is where tests run when test.platform is left out.
	DefaultTestPlatform = "linux/amd64"
	// DefaultImage is the image definition used when build.images is left
	// out and the file exists beside the config; else the built-in one is.
	DefaultImage = "images/hyperkube.yaml"
)

// DefaultPlatforms returns the platforms built when build.platforms is left out.
func DefaultPlatforms() []string { return []string{"linux/amd64", "linux/arm64"} }

// DefaultTargets returns the Kubernetes commands built when build.targets is
// left out: the hyperkube set.
func DefaultTargets() []string {
	return []string{
		"./cmd/kube-apiserver", "./cmd/kube-controller-manager", "./cmd/kube-scheduler",
		"./cmd/kube-proxy", "./cmd/kubelet", "./cmd/kubectl", "./cmd/kubeadm",
	}
}

// DefaultTestTargets returns the test packages compiled when
// build.testTargets is left out: Kubernetes' end-to-end suite, e2e.test.
func DefaultTestTargets() []string { return []string{"./test/e2e"} }

// DefaultTestCommands returns the commands compiled for test.platform when
// build.testCommands is left out and there are test targets: ginkgo, which
// runs ginkgo test binaries, from the version the fork vendors (Kubernetes
// builds it from vendor/github.com/onsi/ginkgo/v2/ginkgo).
func DefaultTestCommands() []string { return []string{"github.com/onsi/ginkgo/v2/ginkgo"} }

// applyDefaults fills what the file left out. A number written as 0 is not
// replaced: it is reported by validate, since 0 kept images is a mistake.
func (p *Pipeline) applyDefaults(d *doc) {
	for i := range p.Branches {
		b := &p.Branches[i]
		if b.Upstream == "" {
			b.Upstream = b.Name
		}
		if b.Strategy == "" {
			b.Strategy = StrategyMerge
		}
	}
	if p.Build.BuilderImage == "" {
		p.Build.BuilderImage = DefaultBuilderImage
	}
	if len(p.Build.Platforms) == 0 && !d.has("build.platforms") {
		p.Build.Platforms = DefaultPlatforms()
	}
	if len(p.Build.Targets) == 0 && !d.has("build.targets") {
		p.Build.Targets = DefaultTargets()
	}
	if len(p.Build.TestTargets) == 0 && !d.has("build.testTargets") {
		p.Build.TestTargets = DefaultTestTargets()
	}
	if len(p.Build.TestCommands) == 0 && !d.has("build.testCommands") &&
		len(p.Build.TestTargets) > 0 {
		p.Build.TestCommands = DefaultTestCommands()
	}
	if p.Test.Platform == "" {
		p.Test.Platform = DefaultTestPlatform
	}
	if len(p.Build.Images) == 0 && !d.has("build.images") {
		// A definition of the user's beside the config wins; without one,
		// Build.Images stays empty and loadImages uses the built-in one,
		// so that a config with no images/ folder is still whole.
		if _, err := os.Stat(p.resolve(DefaultImage)); !errors.Is(err, fs.ErrNotExist) {
			p.Build.Images = []string{DefaultImage}
		}
	}
	if p.Test.Runner == "" {
		p.Test.Runner = DefaultRunner
	}
	if !d.has("test.timeout") {
		p.Test.Timeout = DefaultTimeout
	}
	if !d.has("publish.keep") {
		p.Publish.Keep = DefaultPublishKeep
	}
	if !d.has("logs.keep") {
		p.Logs.Keep = DefaultLogsKeep
	}
	if p.State.Store == "" {
		p.State.Store = DefaultStateStore
	}
	if p.State.WorkDir == "" {
		if _, _, s3 := S3Location(p.State.Store); s3 {
			p.State.WorkDir = DefaultStateStore
		} else {
			p.State.WorkDir = p.State.Store
		}
	}
	if !d.has("publish.maxDeletes") {
		p.Publish.MaxDeletes = 20
	}
	if p.Publish.KeepCandidates == "" {
		p.Publish.KeepCandidates = "14d"
	}
	if !d.has("state.lease") {
		p.State.Lease = DefaultLease
	}
	if !d.has("test.retries") {
		p.Test.Retries = 1
	}
	if !d.has("test.parallel") {
		p.Test.Parallel = 1
	}
	p.defaultKubetest2(d)
	if p.Logs.Store == "" {
		// The logs live beside the state unless told otherwise, in the same
		// kind of store.
		if bucket, prefix, ok := S3Location(p.State.Store); ok {
			p.Logs.Store = "s3://" + path.Join(bucket, prefix, "logs")
		} else {
			p.Logs.Store = path.Join(p.State.Store, "logs")
		}
	}
}

// KeepCandidatesFor is publish.keepCandidates as a duration.
func (p Publish) KeepCandidatesFor() time.Duration {
	d, _ := parseDays(p.KeepCandidates)
	return d
}

// parseDays reads a Go duration or a whole number of days ("14d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// defaultKubetest2 fills runner kubetest2's keys. Only for that runner, so
// that validation can tell an exec config that wrote one of them.
func (p *Pipeline) defaultKubetest2(d *doc) {
	if p.Test.Runner != RunnerKubetest2 {
		return
	}
	if !d.has("test.focusRegex") {
		p.Test.FocusRegex = DefaultFocusRegex
	}
	if !d.has("test.skipRegex") {
		p.Test.SkipRegex = DefaultSkipRegex
	}
	if !d.has("test.serialFocusRegex") {
		p.Test.SerialFocusRegex = DefaultSerialFocusRegex
	}
	if !d.has("test.ginkgoParallel") {
		p.Test.GinkgoParallel = DefaultGinkgoParallel
	}
	if p.Test.NodeImage == "" {
		p.Test.NodeImage = DefaultNodeImage
	}
}
