// Package config decodes branches.yaml and images/*.yaml strictly, applies
// defaults and validates them, reporting every problem at once with file:line.
package config

import "time"

// APIVersion is the only apiVersion this version of hyperfork reads.
const APIVersion = "hyperfork.dev/v1alpha1"

// Kind is the kind of the pipeline document.
const Kind = "Pipeline"

// Pipeline is the decoded branches.yaml.
//
// The doc comments of the yaml-tagged fields in this file are the
// configuration reference in README.md (go generate ./internal/config
// writes it): the first sentence is a key's description, a sentence
// "Default X." or a clause "; default X" its stated default, which a test
// checks against what Load fills in.
type Pipeline struct {
	// APIVersion is the version of the format, hyperfork.dev/v1alpha1: the
	// only one this hyperfork reads.
	APIVersion string `yaml:"apiVersion"`
	// Kind is the kind of document, Pipeline.
	Kind string `yaml:"kind"`
	// Upstream is the repository the fork follows.
	Upstream Upstream `yaml:"upstream"`
	// Fork is the company's repository, which merges are pushed to.
	Fork Fork `yaml:"fork"`
	// Branches are the fork branches to keep current. After the shared sync
	// each is its own flow (build, test, publish): one branch's failure
	// never stops another.
	Branches []Branch `yaml:"branches"`
	// Build configures the build stage: what is compiled, for which
	// platforms, on which BuildKit daemon, and which images are packed.
	Build Build `yaml:"build"`
	// Test configures the test stage: the runner, and what counts as a pass.
	Test Test `yaml:"test"`
	// Publish configures where images go and how many are kept.
	Publish Publish `yaml:"publish"`
	// Logs configures the artifact store: build and test logs, JUnit,
	// attachments and server tarballs.
	Logs Logs `yaml:"logs"`
	// Notify lists the channels every message goes to: pass or fail of a
	// release, conflicts, errors. Left out: none.
	Notify []Notifier `yaml:"notify"`
	// State configures the state store and the local work folder.
	State State `yaml:"state"`

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
	URL      string `yaml:"url"`      // the repository to follow: https://, ssh://, git@host:path, file://, or an absolute path; plain http:// only on loopback
	TokenEnv string `yaml:"tokenEnv"` // names the variable holding an HTTPS token for fetching upstream
}

// Fork is the company's repository. An empty URL means the embedded fork: a
// bare repository in the state folder, created from upstream on first use.
type Fork struct {
	URL      string `yaml:"url"`      // the fork's repository; default: the embedded fork, a bare repository fork.git in the state folder, made from upstream on first use
	TokenEnv string `yaml:"tokenEnv"` // names the variable holding an HTTPS token for fetch and push, sent as an HTTP header through the environment, never on a command line
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
	Upstream string   `yaml:"upstream"` // the upstream branch it follows; default: the same as name, so master follows master
	Strategy Strategy `yaml:"strategy"` // how upstream commits enter it: merge, or ff-only (fast-forwards only: a fork with carries is reported); default merge
}

// Build configures the build stage.
type Build struct {
	// BuildKit is the BuildKit address: unix://, tcp://,
	// docker-container://, kube-pod:// or ssh://. $BUILDKIT_HOST overrides
	// it. Default: $BUILDKIT_HOST, else an embedded buildkitd that
	// hyperfork starts itself (as root, with runc).
	BuildKit string `yaml:"buildkit"`
	// BuildKitByPlatform sends a platform to its own BuildKit daemon, such
	// as a native arm64 builder; the candidate is the same.
	BuildKitByPlatform map[string]string `yaml:"buildkitByPlatform"`
	// BuildKitTLS secures tcp:// addresses, as buildctl's --tls* flags do.
	BuildKitTLS  *BuildKitTLS `yaml:"buildkitTLS"`
	BuilderImage string       `yaml:"builderImage"` // the Go toolchain image the binaries compile in, on the daemon's own platform
	Platforms    []string     `yaml:"platforms"`    // the platforms to cross-compile for, os/arch[/variant]
	Targets      []string     `yaml:"targets"`      // Go main packages to build, each binary named by the last element of its path
	// LDFlags are linker flags, Go templates over .Version, .Commit,
	// .TreeState and .BuildDate, stamped the way Kubernetes does.
	// RenderLDFlags renders them with a StampData.
	LDFlags []string `yaml:"ldflags"`
	// TestTargets are Go test packages compiled with `go test -c` for
	// test.platform, each into <last element>.test as go test -c names it
	// (./test/e2e: e2e.test). Default [./test/e2e]; written empty: no test
	// binaries.
	TestTargets []string `yaml:"testTargets"`
	// TestCommands are Go commands compiled with `go build` for
	// test.platform beside the test binaries, each named by its last
	// element. A dependency's command, such as ginkgo, is written by its
	// import path and builds from the fork's vendor folder or module cache.
	// Default [github.com/onsi/ginkgo/v2/ginkgo] (ginkgo runs the test
	// binaries) when build.testTargets has entries, else none; written
	// empty: none.
	TestCommands []string `yaml:"testCommands"`
	// Images are the image definition files (images/*.yaml), relative to
	// the config's folder. Default: images/hyperkube.yaml beside the config
	// if it exists, else the built-in hyperkube definition. Load makes the
	// paths absolute; with the built-in definition, Build.Images stays
	// empty and Pipeline.Images holds it.
	Images []string `yaml:"images"`
	// Env is extra environment for the compile; CGO_ENABLED=0 is always set.
	Env map[string]string `yaml:"env"`
	// GoProxy is handed to the builder as GOPROXY. Default: the builder
	// image's own setting.
	GoProxy string `yaml:"goproxy"`
}

// BuildKitTLS names the files for a TLS connection to BuildKit. They are
// paths, resolved against the config file's folder, never the keys
// themselves.
type BuildKitTLS struct {
	CA         string `yaml:"ca"`         // the PEM file of the CA that signs the daemon's certificate; default: the system's roots
	Cert       string `yaml:"cert"`       // the PEM file of this client's certificate, set together with key
	Key        string `yaml:"key"`        // the PEM file of this client's private key, set together with cert
	ServerName string `yaml:"serverName"` // the name the daemon's certificate must carry; default: the host of the address
}

// Test configures the test stage.
type Test struct {
	Runner  string        `yaml:"runner"`  // the test runner, kubetest2 or exec; default kubetest2
	Command []string      `yaml:"command"` // the command of runner exec, run with the candidate's binaries first on PATH; it writes JUnit XML into $HYPERFORK_ARTIFACTS
	Timeout time.Duration `yaml:"timeout"` // the limit for the whole test run, after which its process group is killed (an infrastructure failure); default 3h
	// Parallel is how many branches are tested at the same time. Default 1.
	Parallel int `yaml:"parallel"`
	// Retries is how many times failed specs are rerun, focused on exactly
	// those specs; a spec that passes on a retry is a flake. Default 1.
	Retries int `yaml:"retries"`
	// MinTests is the fewest executed tests that can pass: fewer is a
	// failure, never a silent pass. Default 0: the conformance count of
	// the candidate's minor version with runner kubetest2 (less its
	// [Serial] specs without a serial pass), 1 with runner exec.
	MinTests int `yaml:"minTests"`
	// Platform is where the tests run, os/arch[/variant]: the test
	// binaries (build.testTargets, build.testCommands) are compiled for it,
	// and an image that holds one is packed for it alone. Any platform Go
	// knows, with runner exec; with runner kubetest2 it must be a linux
	// platform of build.platforms, because kind runs the node image made
	// from that platform's server tarball natively. Default linux/amd64.
	Platform string `yaml:"platform"`

	// The keys below are runner kubetest2's; runner exec refuses them.

	// FocusRegex selects the specs of runner kubetest2's parallel pass
	// (ginkgo's --focus-regex). Default \[Conformance\].
	FocusRegex string `yaml:"focusRegex"`
	// SkipRegex leaves specs out of runner kubetest2's parallel pass
	// (ginkgo's --skip-regex). Default \[Serial\]; written empty: none.
	SkipRegex string `yaml:"skipRegex"`
	// GinkgoParallel is the number of ginkgo processes of runner
	// kubetest2's parallel pass (kubetest2's --parallel). Default 4, sized
	// for a 4-CPU CI runner.
	GinkgoParallel int `yaml:"ginkgoParallel"`
	// SerialFocusRegex selects the specs of runner kubetest2's serial pass,
	// run one at a time after the parallel one. Default
	// \[Serial\].*\[Conformance\]; written empty: no serial pass (and
	// minTests' default leaves the serial specs out).
	SerialFocusRegex string `yaml:"serialFocusRegex"`
	// SerialSkipRegex leaves specs out of runner kubetest2's serial pass.
	// Default: none.
	SerialSkipRegex string `yaml:"serialSkipRegex"`
	// BaseImage is the --base-image of kind build node-image for runner
	// kubetest2. Default: the base image the installed kind release was
	// made with, the safe choice.
	BaseImage string `yaml:"baseImage"`
	// NodeImage is the repository, without tag, of the kind node image
	// runner kubetest2 makes from the candidate's server tarball; the tag
	// is always the candidate's commit. Default hyperfork/kind-node.
	NodeImage string `yaml:"nodeImage"`
}

// Publish configures where images go.
type Publish struct {
	// Registry is where images go, such as ghcr.io/your-org/kubernetes:
	// image hyperkube then goes to ghcr.io/your-org/kubernetes/hyperkube
	// (to the value itself when its last element is the image's name).
	// Default: a local OCI layout, oci/ in the state folder.
	Registry   string `yaml:"registry"`
	Insecure   bool   `yaml:"insecure"`   // plain HTTP to the registry; a registry on loopback always gets it
	Keep       int    `yaml:"keep"`       // stable images kept per branch, at least 1
	MaxDeletes int    `yaml:"maxDeletes"` // the most images retention deletes in one run; default 20
	// KeepCandidates is how long candidate tags (tested or not) are kept,
	// by their created annotation: a Go duration, or days such as 14d.
	// Default 14d.
	KeepCandidates string `yaml:"keepCandidates"`
	UsernameEnv    string `yaml:"usernameEnv"` // names the variable holding the registry user; without it, the Docker config's credentials are used
	PasswordEnv    string `yaml:"passwordEnv"` // names the variable holding the registry password or token
}

// Logs configures where test logs are kept.
type Logs struct {
	// Store is the artifact store, a folder or s3://bucket/prefix. Default:
	// logs in the state store, .hyperfork/logs with the default
	// state.store, s3://bucket/prefix/logs with an S3 one. Load makes a
	// folder absolute, against the config's folder.
	Store string `yaml:"store"`
	Keep  int    `yaml:"keep"` // test logs and build logs kept per branch, at least 1
}

// Notifier is one notification channel.
type Notifier struct {
	// Type is the kind of channel, required in every entry: file, webhook,
	// slack, email or github-summary (markdown into $GITHUB_STEP_SUMMARY,
	// annotations for new failures).
	Type string `yaml:"type"`
	// Dir is the folder for type file, which gets one JSON file per message.
	Dir string `yaml:"dir"`
	// URLEnv names the variable holding the URL: the receiver for type
	// webhook, an incoming webhook for type slack.
	URLEnv string `yaml:"urlEnv"`
	// SecretEnv names the variable holding the HMAC secret for type
	// webhook, which then signs the body in X-Hyperfork-Signature-256.
	SecretEnv string `yaml:"secretEnv"`
	// Events limits the channel to these events (sync.conflict, sync.error,
	// build.error, test.failed, test.error, release.published,
	// release.failed), or a prefix such as sync.*. Default: all events.
	Events []string `yaml:"events"`
	// SMTP is host:port of the mail server for type email, with STARTTLS
	// on 587 or TLS on 465.
	SMTP string `yaml:"smtp"`
	// From is the sender address for type email.
	From string `yaml:"from"`
	// To are the recipients for type email.
	To []string `yaml:"to"`
	// UsernameEnv names the variable holding the SMTP user for type email,
	// set together with passwordEnv; both empty: no authentication.
	UsernameEnv string `yaml:"usernameEnv"`
	// PasswordEnv names the variable holding the SMTP password for type
	// email, set together with usernameEnv.
	PasswordEnv string `yaml:"passwordEnv"`
	// MaxAttachment caps the gzipped test log an email carries, such as
	// 512KiB or 10MB; over it, the mail links the log. Default 5MiB.
	MaxAttachment string `yaml:"maxAttachment"`
	// TokenEnv names the variable holding a Slack bot token (xoxb-…) for
	// type slack, which then posts as an app into channel and uploads the
	// test log; without it, slack posts through the incoming webhook of
	// urlEnv.
	TokenEnv string `yaml:"tokenEnv"`
	// Channel is the Slack channel id (C0123ABCD) or name (#builds) that
	// tokenEnv's bot posts to.
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
	Store string `yaml:"store"` // the state store (per-branch records, reports, test history, leases), a folder or s3://bucket/prefix; default .hyperfork
	// WorkDir is the local scratch folder: the mirror, exported sources,
	// build outputs, buildkitd's state. Losing it costs time, never
	// correctness. Default: the state folder when state.store is a folder,
	// else .hyperfork.
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
	Region   string `yaml:"region"`   // the bucket's region, such as eu-west-1; default: AWS_REGION
	Endpoint string `yaml:"endpoint"` // the URL of an S3-compatible server; default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS
	// PathStyle forces path-style addressing (bucket in the path); default:
	// on for an IP address or localhost endpoint, else virtual-hosted.
	PathStyle *bool `yaml:"pathStyle"`
}

// Image is one images/*.yaml definition: the binaries of one image and how
// it runs. build.images names the files.
type Image struct {
	Name string `yaml:"name"` // the repository name of the image, such as hyperkube
	// Base is the image the binaries are added to: a full reference such as
	// registry.k8s.io/build-image/go-runner:v2.4.0-go1.25.5-bookworm.0, or
	// scratch. To pull bases from a mirror, edit this line: the file is
	// the user's, and hyperfork rewrites no reference.
	Base string `yaml:"base"`
	// Binaries are the files the image holds in /usr/local/bin: the last
	// element of a build target (kubectl), or the name of a test binary
	// (e2e.test from build.testTargets, ginkgo from build.testCommands).
	Binaries []string `yaml:"binaries"`
	// Entrypoint is the command the image runs. Default: the base's
	// entrypoint and arguments, as in a Dockerfile without ENTRYPOINT
	// (Kubernetes' server images keep go-runner's /go-runner).
	Entrypoint []string          `yaml:"entrypoint"`
	Labels     map[string]string `yaml:"labels"` // extra image labels
	// Hyperkube adds the multi-call hyperkube dispatcher to the image:
	// hyperkube kube-apiserver --help runs that binary.
	Hyperkube bool `yaml:"hyperkube"`

	// File is the path the image was read from, for messages, or
	// BuiltinImageFile for the definition built into hyperfork.
	File string `yaml:"-"`
}
