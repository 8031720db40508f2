// Package config decodes branches.yaml and images/*.yaml strictly, applies
// defaults and validates them, reporting every problem at once with file:line.
package config

import "time"

// APIVersion is the only apiVersion this version of hyperfork reads.
const APIVersion = "hyperfork.dev/v1alpha1"

// Kind is the kind of the pipeline document.
const Kind = "Pipeline"

// Pipeline is the decoded branches.yaml.
type Pipeline struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Upstream   Upstream   `yaml:"upstream"`
	Fork       Fork       `yaml:"fork"`
	Branches   []Branch   `yaml:"branches"`
	Build      Build      `yaml:"build"`
	Test       Test       `yaml:"test"`
	Publish    Publish    `yaml:"publish"`
	Logs       Logs       `yaml:"logs"`
	Notify     []Notifier `yaml:"notify"`
	State      State      `yaml:"state"`

	// Dir is the folder of the config file; relative paths resolve against it.
	Dir string `yaml:"-"`
	// File is the path the pipeline was read from, for messages.
	File string `yaml:"-"`
	// Images are the decoded image definitions named by Build.Images, or
	// the built-in one when Build.Images is empty. They are read only when
	// StageBuild is checked (see Checked); Load always reads them.
	Images []Image `yaml:"-"`

	stages []Stage // what the load checked
}

// Upstream is the repository the fork follows.
type Upstream struct {
	URL      string `yaml:"url"`      // the repository to follow (https://, ssh://, git@host:path, file://, or an absolute path)
	TokenEnv string `yaml:"tokenEnv"` // names the variable holding an HTTPS token for fetching upstream
}

// Fork is the company's repository. An empty URL means the embedded fork: a
// bare repository in the state folder, created from upstream on first use.
type Fork struct {
	URL      string `yaml:"url"`      // the fork; empty: the embedded fork
	TokenEnv string `yaml:"tokenEnv"` // names the variable holding an HTTPS token for fetch and push
}

// Strategy says how upstream commits enter a fork branch.
type Strategy string

// The strategies.
const (
	StrategyMerge  Strategy = "merge"
	StrategyFFOnly Strategy = "ff-only"
)

// Branch is one fork branch and the upstream branch it follows.
type Branch struct {
	Name     string   `yaml:"name"`     // the fork branch
	Upstream string   `yaml:"upstream"` // the upstream branch it follows; default: Name
	Strategy Strategy `yaml:"strategy"` // merge (default) or ff-only
}

// Build configures the build stage.
type Build struct {
	// BuildKit is the BuildKit address. Empty: $BUILDKIT_HOST, else an
	// embedded daemon.
	BuildKit string `yaml:"buildkit"`
	// BuildKitByPlatform maps a platform to the BuildKit address that builds it.
	BuildKitByPlatform map[string]string `yaml:"buildkitByPlatform"`
	// BuildKitTLS secures tcp:// addresses, as buildctl's --tls* flags do.
	BuildKitTLS  *BuildKitTLS `yaml:"buildkitTLS"`
	BuilderImage string       `yaml:"builderImage"` // the Go toolchain image the binaries compile in
	Platforms    []string     `yaml:"platforms"`    // os/arch[/variant] to cross-compile for
	Targets      []string     `yaml:"targets"`      // Go packages to build; the binary is named by the last element
	LDFlags      []string     `yaml:"ldflags"`      // Go templates over StampData, rendered by RenderLDFlags
	// TestTargets are Go test packages compiled with `go test -c` for
	// Test.Platform, each into <last element>.test, as go test -c names it
	// (./test/e2e: e2e.test). Left out: DefaultTestTargets; written empty:
	// no test binaries.
	TestTargets []string `yaml:"testTargets"`
	// TestCommands are Go commands compiled with `go build` for
	// Test.Platform beside the test binaries, each named by its last
	// element. A dependency's command, such as ginkgo, is written by its
	// import path and builds from the fork's vendor folder or module cache.
	// Left out: DefaultTestCommands (ginkgo, which runs the test binaries)
	// when TestTargets has entries, else none; written empty: none.
	TestCommands []string `yaml:"testCommands"`
	// Images are the image definition files, absolute after Load. Left
	// out: images/hyperkube.yaml beside the config if it exists, else none,
	// and Pipeline.Images holds the built-in hyperkube definition.
	Images []string `yaml:"images"`
	// Env is extra environment for the compile (CGO_ENABLED=0 is always set).
	Env map[string]string `yaml:"env"`
	// GoProxy is handed to the builder as GOPROXY; default: the host's.
	GoProxy string `yaml:"goproxy"`
}

// BuildKitTLS names the files for a TLS connection to BuildKit. They are
// paths, resolved against the config file's folder, never the keys
// themselves.
type BuildKitTLS struct {
	CA         string `yaml:"ca"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ServerName string `yaml:"serverName"`
}

// Test configures the test stage.
type Test struct {
	Runner  string        `yaml:"runner"`  // RunnerKubetest2 (default) or RunnerExec
	Command []string      `yaml:"command"` // the command of RunnerExec; it writes JUnit XML into $HYPERFORK_ARTIFACTS
	Timeout time.Duration `yaml:"timeout"` // the limit for the whole test run; default 3h
	// Parallel is how many branches are tested at the same time; default 1.
	Parallel int `yaml:"parallel"`
	// Retries is how many times failed specs are rerun, focused on exactly
	// those specs; a spec that passes on a retry is a flake. Default 1.
	Retries int `yaml:"retries"`
	// MinTests is the fewest executed tests that can pass: fewer is a
	// failure, never a silent pass. 0: the conformance count of the
	// candidate's minor version (kubetest2), 1 (exec).
	MinTests int `yaml:"minTests"`
	// Platform is where the tests run, os/arch[/variant]: the test
	// binaries (Build.TestTargets, Build.TestCommands) are compiled for it,
	// and an image that holds one is packed for it alone. Any platform Go
	// knows, with runner exec; with runner kubetest2 it must be a linux
	// platform of build.platforms, because kind runs the node image made
	// from that platform's server tarball natively. Default linux/amd64.
	Platform string `yaml:"platform"`

	// The keys below are runner kubetest2's; runner exec refuses them.

	// FocusRegex selects the specs of the parallel pass (ginkgo's
	// --focus-regex). Default \[Conformance\].
	FocusRegex string `yaml:"focusRegex"`
	// SkipRegex leaves specs out of the parallel pass. Default \[Serial\];
	// written empty: none.
	SkipRegex string `yaml:"skipRegex"`
	// GinkgoParallel is the parallel pass's number of ginkgo processes
	// (kubetest2's --parallel). Default 4, sized for a 4-CPU CI runner.
	GinkgoParallel int `yaml:"ginkgoParallel"`
	// SerialFocusRegex selects the specs of the serial pass, run one at a
	// time after the parallel one. Default \[Serial\].*\[Conformance\];
	// written empty: no serial pass (then set minTests by hand, since the
	// conformance count includes the serial specs).
	SerialFocusRegex string `yaml:"serialFocusRegex"`
	// SerialSkipRegex leaves specs out of the serial pass; default none.
	SerialSkipRegex string `yaml:"serialSkipRegex"`
	// BaseImage is kind build node-image's --base-image; default: the base
	// image the installed kind release was made with, the safe choice.
	BaseImage string `yaml:"baseImage"`
	// NodeImage is the repository of the kind node image made from the
	// candidate's server tarball, without tag: the tag is always the
	// candidate's commit. Default hyperfork/kind-node.
	NodeImage string `yaml:"nodeImage"`
}

// Publish configures where images go.
type Publish struct {
	Registry   string `yaml:"registry"`   // the repository images go to; empty: an OCI layout in the state folder
	Insecure   bool   `yaml:"insecure"`   // plain HTTP; a loopback registry always gets it
	Keep       int    `yaml:"keep"`       // stable images kept per branch, at least 1
	MaxDeletes int    `yaml:"maxDeletes"` // retention deletes at most this many per run; default 20
	// KeepCandidates is how long candidate tags (tested or not) are kept,
	// by their created annotation: a Go duration, or days such as 14d.
	KeepCandidates string `yaml:"keepCandidates"`
	UsernameEnv    string `yaml:"usernameEnv"` // names the variable holding the registry user
	PasswordEnv    string `yaml:"passwordEnv"` // names the variable holding the registry password or token
}

// Logs configures where test logs are kept.
type Logs struct {
	Store string `yaml:"store"` // a folder (absolute after Load) or s3://bucket/prefix
	Keep  int    `yaml:"keep"`  // test logs kept per branch, at least 1
}

// Notifier is one notification channel.
type Notifier struct {
	Type string `yaml:"type"` // one of file, webhook, slack, email, github-summary
	// Dir is the folder for type file.
	Dir string `yaml:"dir"`
	// URLEnv names the variable holding the URL for webhook and slack.
	URLEnv string `yaml:"urlEnv"`
	// SecretEnv names the variable holding the HMAC secret for webhook.
	SecretEnv string `yaml:"secretEnv"`
	// Events limits the channel to these events; empty: all.
	Events []string `yaml:"events"`
	// SMTP is host:port of the mail server for type email.
	SMTP string `yaml:"smtp"`
	// From is the sender address for type email.
	From string `yaml:"from"`
	// To are the recipients for type email.
	To []string `yaml:"to"`
	// UsernameEnv and PasswordEnv name the variables holding the SMTP login
	// for type email; both empty: no authentication.
	UsernameEnv string `yaml:"usernameEnv"`
	PasswordEnv string `yaml:"passwordEnv"`
	// MaxAttachment caps the gzipped test log an email carries, such as
	// 5MiB (the default), 512KiB or 10MB; over it, the mail links the log.
	MaxAttachment string `yaml:"maxAttachment"`
	// TokenEnv names the variable holding a Slack bot token (xoxb-…) for
	// type slack, which then posts as an app into Channel and uploads the
	// test log; without it, slack posts through the incoming webhook of
	// URLEnv.
	TokenEnv string `yaml:"tokenEnv"`
	// Channel is the Slack channel id (C0123ABCD) or name (#builds) for
	// TokenEnv.
	Channel string `yaml:"channel"`
}

// MaxAttachmentBytes returns MaxAttachment in bytes, or 0 for the default
// (and for a value that validation rejects).
func (n Notifier) MaxAttachmentBytes() int64 {
	v, _ := parseByteSize(n.MaxAttachment)
	return v
}

// State configures the state store and the local work folder.
type State struct {
	Store string `yaml:"store"` // a folder (absolute after Load) or s3://bucket/prefix
	// WorkDir is the local scratch folder: the mirror, exported sources,
	// buildkitd's state. Losing it costs time, never correctness. Default:
	// the state folder when state.store is a folder, else .hyperfork.
	WorkDir string `yaml:"workDir"`
	// Lease is how long a branch lock outlives a run that stops renewing it
	// (killed with -9, or its machine gone); renewed every third of it
	// while the run lives. Default 2m.
	Lease time.Duration `yaml:"lease"`
	// S3 overrides what the AWS SDK's standard sources (AWS_REGION,
	// AWS_ENDPOINT_URL_S3, profiles) say, for state.store and logs.store.
	S3 S3 `yaml:"s3"`
}

// S3 overrides the AWS SDK's standard settings for S3 stores. Credentials
// never go here: they come from the SDK's own sources.
type S3 struct {
	Region   string `yaml:"region"`   // e.g. eu-west-1; default AWS_REGION
	Endpoint string `yaml:"endpoint"` // an S3-compatible server; default AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
	// PathStyle forces path-style addressing (bucket in the path); default:
	// on for an IP address or localhost endpoint, else virtual-hosted.
	PathStyle *bool `yaml:"pathStyle"`
}

// Image is one images/*.yaml definition.
type Image struct {
	Name string `yaml:"name"` // the repository name of the image, e.g. hyperkube
	// Base is a full image reference such as
	// registry.k8s.io/build-image/go-runner:v2.4.0-go1.25.5-bookworm.0, or
	// scratch. To pull bases from a mirror, edit this line: the file is
	// the user's, and hyperfork rewrites no reference.
	Base string `yaml:"base"`
	// Binaries are the files the image holds at /usr/local/bin: the last
	// element of a build target (kubectl), or the name of a test binary
	// (e2e.test from build.testTargets, ginkgo from build.testCommands).
	Binaries []string `yaml:"binaries"`
	// Entrypoint is the command the image runs. Left out, the base's
	// entrypoint and arguments stay, as in a Dockerfile without
	// ENTRYPOINT: Kubernetes' server images keep go-runner's /go-runner.
	Entrypoint []string          `yaml:"entrypoint"`
	Labels     map[string]string `yaml:"labels"` // extra image labels
	// Hyperkube adds the multi-call hyperkube dispatcher to the image.
	Hyperkube bool `yaml:"hyperkube"`

	// File is the path the image was read from, for messages, or
	// BuiltinImageFile for the definition built into hyperfork.
	File string `yaml:"-"`
}
