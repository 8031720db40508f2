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
	// Images are the decoded image definitions named by Build.Images.
	Images []Image `yaml:"-"`
}

// Upstream is the repository the fork follows.
type Upstream struct {
	URL      string `yaml:"url"`
	TokenEnv string `yaml:"tokenEnv"`
}

// Fork is the company's repository. An empty URL means the embedded fork: a
// bare repository in the state folder, created from upstream on first use.
type Fork struct {
	URL      string `yaml:"url"`
	TokenEnv string `yaml:"tokenEnv"`
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
	Name     string   `yaml:"name"`
	Upstream string   `yaml:"upstream"`
	Strategy Strategy `yaml:"strategy"`
}

// Build configures the build stage.
type Build struct {
	// BuildKit is the BuildKit address. Empty: $BUILDKIT_HOST, else an
	// embedded daemon.
	BuildKit string `yaml:"buildkit"`
	// BuildKitByPlatform maps a platform to the BuildKit address that builds it.
	BuildKitByPlatform map[string]string `yaml:"buildkitByPlatform"`
	BuilderImage       string            `yaml:"builderImage"`
	Platforms          []string          `yaml:"platforms"`
	Targets            []string          `yaml:"targets"`
	LDFlags            []string          `yaml:"ldflags"`
	Images             []string          `yaml:"images"`
	// Env is extra environment for the compile (CGO_ENABLED=0 is always set).
	Env map[string]string `yaml:"env"`
	// GoProxy is handed to the builder as GOPROXY; default: the host's.
	GoProxy string `yaml:"goproxy"`
}

// Test configures the test stage.
type Test struct {
	Runner  string        `yaml:"runner"`
	Command []string      `yaml:"command"`
	Timeout time.Duration `yaml:"timeout"`
}

// Publish configures where images go.
type Publish struct {
	Registry    string `yaml:"registry"`
	Insecure    bool   `yaml:"insecure"`
	Keep        int    `yaml:"keep"`
	UsernameEnv string `yaml:"usernameEnv"`
	PasswordEnv string `yaml:"passwordEnv"`
}

// Logs configures where test logs are kept.
type Logs struct {
	Store string `yaml:"store"`
	Keep  int    `yaml:"keep"`
}

// Notifier is one notification channel.
type Notifier struct {
	Type string `yaml:"type"`
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
}

// State configures the state store.
type State struct {
	Store string `yaml:"store"`
}

// Image is one images/*.yaml definition.
type Image struct {
	Name       string            `yaml:"name"`
	Base       string            `yaml:"base"`
	Binaries   []string          `yaml:"binaries"`
	Entrypoint []string          `yaml:"entrypoint"`
	Labels     map[string]string `yaml:"labels"`
	// Hyperkube adds the multi-call hyperkube dispatcher to the image.
	Hyperkube bool `yaml:"hyperkube"`

	// File is the path the image was read from, for messages.
	File string `yaml:"-"`
}
