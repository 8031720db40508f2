package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wantRE matches the expectation header of an invalid-*.yaml file:
//
//	# want: [file:]line: substring of the message
//
// file defaults to the case's own file.
var wantRE = regexp.MustCompile(`^# want: (?:([^:\s]+):)?(\d+): (.+)$`)

type want struct {
	file string
	line int
	text string
}

func readWants(t *testing.T, file string) []want {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var ws []want
	for _, l := range strings.Split(string(data), "\n") {
		m := wantRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		f := m[1]
		if f == "" {
			f = file
		}
		ws = append(ws, want{file: filepath.Clean(f), line: n, text: m[3]})
	}
	return ws
}

// TestLoadInvalid loads every testdata/invalid-*.yaml and checks that the
// problems are exactly those its "# want:" header lists: same count, each at
// the expected file and line, each message containing the expected text.
func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 24 {
		t.Fatalf("found %d invalid cases, want at least 24", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			wants := readWants(t, file)
			if len(wants) == 0 {
				t.Fatalf("%s has no '# want:' header", file)
			}
			p, err := Load(file)
			if err == nil {
				t.Fatalf("Load succeeded, want %d problems", len(wants))
			}
			if p != nil {
				t.Errorf("Load returned a pipeline with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *ValidationError: %v", err, err)
			}
			got := ve.Problems
			for _, w := range wants {
				i := slices.IndexFunc(got, func(p Problem) bool {
					return filepath.Clean(p.File) == w.file && p.Line == w.line && strings.Contains(p.Message, w.text)
				})
				if i < 0 {
					t.Errorf("missing problem %s:%d: ...%s...", w.file, w.line, w.text)
					continue
				}
				got = slices.Delete(slices.Clone(got), i, i+1)
			}
			for _, p := range got {
				t.Errorf("unexpected problem %s", p)
			}
			if t.Failed() {
				t.Logf("all problems:\n%v", err)
			}
		})
	}
}

// TestLoadReportsAllProblemsAtOnce checks that one Load reports problems of
// every stage together: unknown keys, wrong types, semantics, and image files.
func TestLoadReportsAllProblemsAtOnce(t *testing.T) {
	_, err := Load("testdata/invalid-many-problems.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	if len(ve.Problems) < 10 {
		t.Fatalf("got %d problems, want at least 10:\n%v", len(ve.Problems), err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(ve.Problems) {
		t.Errorf("Error() has %d lines for %d problems", len(lines), len(ve.Problems))
	}
	sorted := slices.IsSortedFunc(ve.Problems, func(a, b Problem) int {
		if a.File != b.File {
			return strings.Compare(a.File, b.File)
		}
		return a.Line - b.Line
	})
	if !sorted {
		t.Errorf("problems are not sorted by file, then line:\n%v", err)
	}
	for _, l := range lines {
		if !regexp.MustCompile(`^testdata/[^:]+\.yaml:\d+: \S`).MatchString(l) {
			t.Errorf("line %q is not file:line: message", l)
		}
	}
}

func TestLoadValid(t *testing.T) {
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file  string
		check func(t *testing.T, p *Pipeline)
	}{
		{"valid-minimal.yaml", func(t *testing.T, p *Pipeline) {
			b := p.Branches[0]
			if b.Upstream != "master" || b.Strategy != StrategyMerge {
				t.Errorf("branch defaults: got %+v", b)
			}
			equal(t, "platforms", p.Build.Platforms, []string{"linux/amd64", "linux/arm64"})
			equal(t, "targets", p.Build.Targets, DefaultTargets())
			equal(t, "images", p.Build.Images, []string{filepath.Join(dir, "images/hyperkube.yaml")})
			if p.Build.BuilderImage != "golang:1.26" || p.Test.Runner != "kubetest2" || p.Test.Timeout != 3*time.Hour {
				t.Errorf("build/test defaults: %+v %+v", p.Build, p.Test)
			}
			if p.Publish.Keep != 5 || p.Logs.Keep != 10 {
				t.Errorf("keep defaults: publish %d logs %d", p.Publish.Keep, p.Logs.Keep)
			}
			if got, want := p.StateDir(), filepath.Join(dir, ".hyperfork"); got != want || p.State.Store != want {
				t.Errorf("StateDir() = %q, State.Store = %q, want %q", got, p.State.Store, want)
			}
			if got, want := p.LogsDir(), filepath.Join(dir, ".hyperfork/logs"); got != want {
				t.Errorf("LogsDir() = %q, want %q", got, want)
			}
			if len(p.Images) != 1 || p.Images[0].Name != "hyperkube" || !p.Images[0].Hyperkube ||
				p.Images[0].File != filepath.Join(dir, "images/hyperkube.yaml") {
				t.Errorf("images: %+v", p.Images)
			}
			equal(t, "test targets", p.Build.TestTargets, []string{"./test/e2e"})
			equal(t, "test commands", p.Build.TestCommands, []string{"github.com/onsi/ginkgo/v2/ginkgo"})
			if p.Test.Platform != "linux/amd64" {
				t.Errorf("test.platform = %q, want linux/amd64", p.Test.Platform)
			}
			if tt := p.Test; tt.FocusRegex != DefaultFocusRegex || tt.SkipRegex != DefaultSkipRegex || tt.GinkgoParallel != 4 ||
				tt.SerialFocusRegex != DefaultSerialFocusRegex || tt.SerialSkipRegex != "" || tt.NodeImage != "hyperfork/kind-node" || tt.BaseImage != "" {
				t.Errorf("kubetest2 defaults: %+v", tt)
			}
		}},
		{"valid-full.yaml", func(t *testing.T, p *Pipeline) {
			if len(p.Branches) != 3 || p.Branches[1].Upstream != "release-1.34" || p.Branches[1].Strategy != StrategyFFOnly ||
				p.Branches[2].Upstream != "release-1.33" {
				t.Errorf("branches: %+v", p.Branches)
			}
			if p.Test.Timeout != 90*time.Minute || p.Publish.Keep != 3 || p.Logs.Keep != 20 {
				t.Errorf("timeout %v keep %d/%d", p.Test.Timeout, p.Publish.Keep, p.Logs.Keep)
			}
			if p.LogsDir() != "/var/lib/hyperfork/logs" || p.StateDir() != filepath.Join(dir, "state") {
				t.Errorf("LogsDir %q StateDir %q", p.LogsDir(), p.StateDir())
			}
			if p.Notify[0].Dir != filepath.Join(dir, "notifications") {
				t.Errorf("notifier dir %q not resolved", p.Notify[0].Dir)
			}
			if len(p.Images) != 2 || p.Images[0].Name != "team/kubelet" || p.Images[1].Name != "kubectl" {
				t.Errorf("images: %+v", p.Images)
			}
			if p.ImagePath(1) != filepath.Join(dir, "images/kubectl.yaml") {
				t.Errorf("ImagePath(1) = %q", p.ImagePath(1))
			}
			equal(t, "binaries", p.Build.Binaries(), []string{"kubelet", "kubectl", "kubeadm"})
			equal(t, "test binaries", p.Build.TestBinaries(), []string{"e2e.test", "ginkgo"})
			if p.Test.Platform != "linux/arm64" {
				t.Errorf("test.platform = %q", p.Test.Platform)
			}
			if tt := p.Test; tt.FocusRegex != `\[Conformance\]` || tt.SkipRegex != `\[Serial\]|\[Slow\]` || tt.GinkgoParallel != 8 ||
				tt.SerialFocusRegex != "" || tt.SerialSkipRegex != "" || tt.NodeImage != "registry.example.com/team/kind-node" ||
				tt.BaseImage != "registry.example.com/mirror/kindest/base:v20250214-acbabc1a" {
				t.Errorf("kubetest2 keys: %+v", tt)
			}
			if p.Build.BuildKitByPlatform["linux/arm64"] == "" || p.Build.Env["GOFLAGS"] != "-trimpath" {
				t.Errorf("build maps: %+v", p.Build)
			}
		}},
		{"valid-s3-stores.yaml", func(t *testing.T, p *Pipeline) {
			if p.StateDir() != "" || p.LogsDir() != "" || p.Logs.Store != "s3://hyperfork-state/prod/logs" {
				t.Errorf("StateDir %q LogsDir %q logs.store %q", p.StateDir(), p.LogsDir(), p.Logs.Store)
			}
			if b, pre, ok := S3Location(p.State.Store); !ok || b != "hyperfork-state" || pre != "prod" {
				t.Errorf("S3Location = %q %q %v", b, pre, ok)
			}
			if p.WorkDir() != "/var/tmp/hyperfork" || p.State.S3.Region != "eu-west-1" || p.State.S3.PathStyle == nil || !*p.State.S3.PathStyle {
				t.Errorf("workDir %q, s3 %+v", p.WorkDir(), p.State.S3)
			}
		}},
		{"valid-exec-runner.yaml", func(t *testing.T, p *Pipeline) {
			if p.Test.Runner != RunnerExec || len(p.Test.Command) != 3 || p.Test.Timeout != 45*time.Minute {
				t.Errorf("test: %+v", p.Test)
			}
			// Written empty: no test binaries, and so no ginkgo to run them.
			if len(p.Build.TestTargets) != 0 || len(p.Build.TestCommands) != 0 || p.Test.Platform != "linux/riscv64" {
				t.Errorf("test targets %q, commands %q, platform %q", p.Build.TestTargets, p.Build.TestCommands, p.Test.Platform)
			}
			if p.StateDir() != filepath.Join(dir, ".hyperfork") || p.LogsDir() != "" {
				t.Errorf("StateDir %q LogsDir %q", p.StateDir(), p.LogsDir())
			}
		}},
		{"valid-test-binaries.yaml", func(t *testing.T, p *Pipeline) {
			equal(t, "test binaries", p.Build.TestBinaries(), []string{"e2e.test", "e2e_node.test", "ginkgo"})
			if len(p.Images) != 2 || p.Images[0].Name != "conformance" {
				t.Fatalf("images: %+v", p.Images)
			}
			equal(t, "conformance platforms", p.ImagePlatforms(p.Images[0]), []string{"linux/arm64"})
			equal(t, "kubectl platforms", p.ImagePlatforms(p.Images[1]), []string{"linux/amd64", "linux/arm64"})
			if !p.Build.IsTestBinary("ginkgo") || p.Build.IsTestBinary("kubectl") {
				t.Error("IsTestBinary: ginkgo is one, kubectl is not")
			}
		}},
		{"valid-empty-values.yaml", func(t *testing.T, p *Pipeline) {
			if p.Branches[0].Upstream != "master" || len(p.Build.Platforms) != 2 || p.Test.Timeout != 3*time.Hour || p.Publish.Keep != 5 {
				t.Errorf("empty values did not keep defaults: %+v", p)
			}
		}},
		{"valid-anchors.yaml", func(t *testing.T, p *Pipeline) {
			if len(p.Branches) != 2 || p.Branches[1].Name != "release-1.33" || p.Branches[1].Strategy != StrategyFFOnly {
				t.Errorf("merge key not applied: %+v", p.Branches)
			}
		}},
	}
	files, _ := filepath.Glob("testdata/valid-*.yaml")
	if len(files) != len(tests) {
		t.Errorf("testdata has %d valid files, the table checks %d: add the new ones", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			p, err := Load(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p.File != filepath.Join(dir, tt.file) || p.Dir != dir {
				t.Errorf("File %q Dir %q", p.File, p.Dir)
			}
			if p.APIVersion != APIVersion || p.Kind != Kind {
				t.Errorf("header %q %q", p.APIVersion, p.Kind)
			}
			tt.check(t, p)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "branches.yaml"))
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "HYPERFORK_CONFIG") {
		t.Fatalf("got %v, want a *ValidationError pointing at HYPERFORK_CONFIG", err)
	}
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// TestLoadNeverRepeatsSecrets checks that no message about a secret written
// in the file repeats it: the message goes to CI logs.
func TestLoadNeverRepeatsSecrets(t *testing.T) {
	files := map[string][]string{
		"testdata/invalid-secret-in-url.yaml":      {"ghp_", "s3cret", "Passw0rd"},
		"testdata/invalid-url-query-token.yaml":    {"access_token", "ghp_", "glpat-"},
		"testdata/invalid-token-in-env-field.yaml": {"ghp_", "hooks.slack.com"},
	}
	for file, secrets := range files {
		_, err := Load(file)
		if err == nil {
			t.Errorf("%s: Load succeeded", file)
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error repeats %q:\n%v", file, s, err)
			}
		}
	}
}
