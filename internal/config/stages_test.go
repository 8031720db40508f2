package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuiltinImageMatchesRepository keeps the definition built into the
// binary the same as the one the repository ships and documents.
func TestBuiltinImageMatchesRepository(t *testing.T) {
	repo, err := os.ReadFile("../../images/hyperkube.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if builtinImage != string(repo) {
		t.Errorf("internal/config/builtin/hyperkube.yaml differs from images/hyperkube.yaml: copy one over the other")
	}
}

// writeConfig writes branches.yaml (and files, by path relative to it) in
// a new folder and returns the path of branches.yaml.
func writeConfig(t *testing.T, yaml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "branches.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const syncOnly = `apiVersion: hyperfork.dev/v1alpha1
kind: Pipeline
upstream:
  url: https://github.com/kubernetes/kubernetes.git
branches:
  - name: master
`

// TestLoadSyncOnlyConfig is the config of someone who only syncs: no
// build: section, and no images/ folder beside it. It used to fail every
// target with "build.images[0]: cannot read image definition".
func TestLoadSyncOnlyConfig(t *testing.T) {
	path := writeConfig(t, syncOnly, nil)

	p, err := LoadFor(path, StageSync)
	if err != nil {
		t.Fatalf("LoadFor(sync): %v", err)
	}
	if !p.Checked(StageSync) || p.Checked(StageBuild) || len(p.Images) != 0 {
		t.Errorf("LoadFor(sync): checked build %v, images %+v; want sync only, no images read", p.Checked(StageBuild), p.Images)
	}

	p, err = Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, s := range Stages() {
		if !p.Checked(s) {
			t.Errorf("Load did not check %s", s)
		}
	}
	if len(p.Build.Images) != 0 {
		t.Errorf("Build.Images = %q, want none: the built-in definition is not a file", p.Build.Images)
	}
	if len(p.Images) != 1 || p.Images[0].File != BuiltinImageFile || p.Images[0].Name != "hyperkube" ||
		!p.Images[0].Hyperkube || len(p.Images[0].Binaries) != len(DefaultTargets()) {
		t.Errorf("Images = %+v, want the built-in hyperkube definition", p.Images)
	}
}

// TestLoadForStages checks that each stage's checks run when, and only
// when, a target asks for that stage, and that what every target reads is
// always checked.
func TestLoadForStages(t *testing.T) {
	tests := []struct {
		name   string
		extra  string            // appended to syncOnly
		files  map[string]string // beside branches.yaml
		stages []Stage
		line   int    // of the one problem; -1: no problem
		want   string // substring of its message
	}{
		{name: "missing user image, sync", extra: "build:\n  images: [images/hyperkube.yaml]\n",
			stages: []Stage{StageSync}, line: -1},
		{name: "missing user image, build", extra: "build:\n  images: [images/hyperkube.yaml]\n",
			stages: []Stage{StageSync, StageBuild}, line: 8,
			want: "build.images[0]: cannot read image definition "},
		{name: "bad platform, sync", extra: "build:\n  platforms: [linux/amd46]\n",
			stages: []Stage{StageSync, StageTest, StagePublish}, line: -1},
		{name: "bad platform, build", extra: "build:\n  platforms: [linux/amd46]\n",
			stages: []Stage{StageBuild}, line: 8, want: `unknown architecture "amd46" (did you mean "amd64"?)`},
		{name: "missing TLS file, sync", extra: "build:\n  buildkit: tcp://127.0.0.1:1234\n  buildkitTLS: {ca: ca.pem}\n",
			stages: []Stage{StageSync}, line: -1},
		{name: "missing TLS file, build", extra: "build:\n  buildkit: tcp://127.0.0.1:1234\n  buildkitTLS: {ca: ca.pem}\n",
			stages: []Stage{StageBuild}, line: 9, want: "build.buildkitTLS.ca: cannot read ca.pem"},
		{name: "bad builder image, sync", extra: "build:\n  builderImage: Golang:1.26\n",
			stages: []Stage{StageSync}, line: -1},
		{name: "bad builder image, build", extra: "build:\n  builderImage: Golang:1.26\n",
			stages: []Stage{StageBuild}, line: 8, want: "build.builderImage"},
		{name: "zero timeout, build", extra: "test:\n  timeout: 0s\n",
			stages: []Stage{StageSync, StageBuild, StagePublish}, line: -1},
		{name: "zero timeout, test", extra: "test:\n  timeout: 0s\n",
			stages: []Stage{StageTest}, line: 8, want: "test.timeout must be more than zero"},
		{name: "exec without command, test", extra: "test:\n  runner: exec\n",
			stages: []Stage{StageTest}, line: 8, want: "test.runner exec needs a command"},
		{name: "built-in image, targets it does not cover, sync", extra: "build:\n  targets: [./cmd/kubelet, ./cmd/kubectl]\n",
			stages: []Stage{StageSync}, line: -1},
		{name: "built-in image, targets it does not cover, build", extra: "build:\n  targets: [./cmd/kubelet, ./cmd/kubectl]\n",
			stages: []Stage{StageBuild}, line: 8,
			want: "build.images (default) is the hyperkube image definition (built-in), which packs kube-apiserver, "},
		{name: "built-in image, what to add", extra: "build:\n  targets: [./cmd/kubelet, ./cmd/kubectl]\n",
			stages: []Stage{StageBuild}, line: 8,
			want: "add ./cmd/kube-apiserver, ./cmd/kube-controller-manager, ./cmd/kube-scheduler, ./cmd/kube-proxy, ./cmd/kubeadm to build.targets, or write build.images"},
		{name: "user image beside the config wins over the built-in", extra: "build:\n  targets: [./cmd/kubelet]\n",
			files:  map[string]string{"images/hyperkube.yaml": "name: kubelet\nbase: scratch\nbinaries: [kubelet]\n"},
			stages: []Stage{StageBuild}, line: -1},
		{name: "unreadable default image", files: map[string]string{"images/hyperkube.yaml/x": ""},
			stages: []Stage{StageBuild}, line: 0, want: "build.images (default) is "},
		{name: "bad test platform, sync", extra: "test:\n  platform: linux\n",
			stages: []Stage{StageSync, StagePublish}, line: -1},
		{name: "bad test platform, build", extra: "test:\n  platform: linux\n",
			stages: []Stage{StageBuild}, line: 8, want: `test.platform "linux" must be os/arch`},
		{name: "kind needs linux", extra: "test:\n  platform: windows/amd64\n",
			stages: []Stage{StageTest}, line: 8, want: "test.platform windows/amd64: runner kubetest2 runs a kind cluster, whose nodes are linux"},
		{name: "kind needs the test platform built", extra: "build:\n  platforms: [linux/arm64]\n",
			stages: []Stage{StageTest}, line: 8,
			want: "test.platform linux/amd64 (default) is not in build.platforms (linux/arm64): runner kubetest2 makes kind's node image from the server tarball of that platform"},
		{name: "kind, written test platform", extra: "test:\n  platform: linux/s390x\n",
			stages: []Stage{StageTest}, line: 8, want: "test.platform linux/s390x is not in build.platforms (default) (linux/amd64, linux/arm64): "},
		{name: "kind, arm64 is arm64/v8", extra: "build:\n  platforms: [linux/arm64/v8]\ntest:\n  platform: linux/arm64\n",
			stages: Stages(), line: -1},
		{name: "kind's platform, build only", extra: "build:\n  platforms: [linux/arm64]\n",
			stages: []Stage{StageSync, StageBuild}, line: -1},
		{name: "exec runs anywhere", extra: "test:\n  runner: exec\n  command: [./e2e.sh]\n  platform: windows/amd64\n",
			stages: Stages(), line: -1},
		// What every target reads is checked whatever the stages.
		{name: "fork is upstream, no stage", extra: "fork: {url: https://github.com/kubernetes/kubernetes}\n",
			line: 7, want: "fork.url is the same repository as upstream.url (line 4)"},
		{name: "unknown key under build, sync", extra: "build:\n  platfroms: [linux/amd64]\n",
			stages: []Stage{StageSync}, line: 8, want: `unknown key "platfroms" in build: did you mean "platforms"?`},
		{name: "bad keep, no stage", extra: "publish: {keep: 0}\n", line: 7, want: "publish.keep is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, syncOnly+tt.extra, tt.files)
			p, err := LoadFor(path, tt.stages...)
			if tt.line < 0 {
				if err != nil {
					t.Fatalf("LoadFor(%v): %v", tt.stages, err)
				}
				for _, s := range Stages() {
					if p.Checked(s) != slices.Contains(tt.stages, s) {
						t.Errorf("Checked(%s) = %v", s, p.Checked(s))
					}
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("LoadFor(%v) = %v, want a *ValidationError", tt.stages, err)
			}
			if len(ve.Problems) != 1 {
				t.Fatalf("LoadFor(%v): %d problems, want 1:\n%v", tt.stages, len(ve.Problems), err)
			}
			got := ve.Problems[0]
			if got.File != path || got.Line != tt.line || !strings.Contains(got.Message, tt.want) {
				t.Errorf("LoadFor(%v) = %s\nwant %s:%d: ...%s...", tt.stages, got, path, tt.line, tt.want)
			}
			if tt.line == 0 && !strings.HasPrefix(got.String(), path+": ") {
				t.Errorf("a problem with a default shows no line: got %s", got)
			}
		})
	}
}

func TestLoadForUnknownStage(t *testing.T) {
	path := writeConfig(t, syncOnly, nil)
	_, err := LoadFor(path, StageSync, Stage("deploy"))
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), `unknown stage "deploy"`) {
		t.Errorf("LoadFor(deploy) = %v, want a plain error naming the stage", err)
	}
}
