package config

import (
	"strings"
	"testing"
)

func TestCheckRefName(t *testing.T) {
	good := []string{"master", "release-1.34", "company/release-1.33", "v1.0", "a@b"}
	bad := []string{"", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", `a\b`, "/a", "a/", "a//b",
		"a.", ".a", "a/.b", "x.lock", "a/b.lock/c", "@", "HEAD", "a@{1}", "refs/heads/x", "a\tb"}
	for _, v := range good {
		if msg := checkRefName("name", v); msg != "" {
			t.Errorf("checkRefName(%q) = %q, want accepted", v, msg)
		}
	}
	for _, v := range bad {
		if msg := checkRefName("name", v); msg == "" {
			t.Errorf("checkRefName(%q) accepted it", v)
		}
	}
}

func TestCheckEnvName(t *testing.T) {
	tests := []struct{ value, want string }{
		{"", ""},
		{"FORK_TOKEN", ""},
		{"_X1", ""},
		{"ghp_aB3dE5gH7jK9mN1pQ3rS5tU7vW9xY1zA2bC4", "looks like a secret"},
		{"glpat-abcdefghijklmnop", "looks like a secret"},
		{"xoxb-1234-5678-abcdefgh", "looks like a secret"},
		{"https://hooks.slack.com/services/T0/B0/XYZ", "looks like a secret"},
		{"a8f5f167f44f4964e6c998dee827110c", "looks like a secret"},
		{"fork_token", "must name an environment variable"},
		{"1TOKEN", "must name an environment variable"},
		{"FORK-TOKEN", "must name an environment variable"},
	}
	for _, tt := range tests {
		got := checkEnvName("fork.tokenEnv", tt.value, "FORK_TOKEN")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkEnvName(%q) = %q, want %q", tt.value, got, tt.want)
		}
		if tt.want == "looks like a secret" && strings.Contains(got, tt.value) {
			t.Errorf("checkEnvName(%q) repeats the secret", tt.value)
		}
	}
}

func TestCheckPlatform(t *testing.T) {
	for _, v := range []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm64/v8", "linux/amd64/v3", "windows/amd64", "linux/s390x"} {
		if msg := checkPlatform("p", v); msg != "" {
			t.Errorf("checkPlatform(%q) = %q", v, msg)
		}
	}
	for _, v := range []string{"linux", "linux/", "linux/x86_64", "Linux/amd64", "linux/arm/v9", "linux/amd64/v7", "linux/386/v1", "a/b/c/d"} {
		if msg := checkPlatform("p", v); msg == "" {
			t.Errorf("checkPlatform(%q) accepted it", v)
		}
	}
}

func TestCheckStoreAndS3Location(t *testing.T) {
	for _, v := range []string{".hyperfork", "/var/lib/hyperfork", "s3://bucket", "s3://my.bucket-1/a/b"} {
		if msg := checkStore("state.store", v); msg != "" {
			t.Errorf("checkStore(%q) = %q", v, msg)
		}
	}
	for _, v := range []string{"gs://bucket", "s3://B", "s3://ab", "s3://key:secret@bucket/x", "https://bucket.s3.amazonaws.com"} {
		if msg := checkStore("state.store", v); msg == "" {
			t.Errorf("checkStore(%q) accepted it", v)
		}
	}
	if b, p, ok := S3Location("s3://bucket/a/b/"); !ok || b != "bucket" || p != "a/b" {
		t.Errorf("S3Location = %q %q %v", b, p, ok)
	}
	if _, _, ok := S3Location("/tmp/x"); ok {
		t.Errorf("S3Location(folder) ok")
	}
}

func TestCheckBuildKit(t *testing.T) {
	for _, v := range []string{"unix:///run/buildkit/buildkitd.sock", "tcp://127.0.0.1:1234", "docker-container://buildkitd",
		"kube-pod://buildkitd-0", "podman-container://b", "ssh://user@host", "nerdctl-container://b"} {
		if msg := checkBuildKit("build.buildkit", v); msg != "" {
			t.Errorf("checkBuildKit(%q) = %q", v, msg)
		}
	}
	for _, v := range []string{"localhost:1234", "http://127.0.0.1:1234", "unix://", "ssh://user:pw@host"} {
		if msg := checkBuildKit("build.buildkit", v); msg == "" {
			t.Errorf("checkBuildKit(%q) accepted it", v)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"name", "upstream", "strategy"}
	for key, want := range map[string]string{"strategyy": "strategy", "upstrem": "upstream", "Name": "name", "colour": ""} {
		if got := suggest(key, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestCheckGoProxy(t *testing.T) {
	for _, v := range []string{"https://proxy.golang.org,direct", "http://127.0.0.1:3000|off", "file:///srv/goproxy", "direct"} {
		if msg := checkGoProxy("build.goproxy", v); msg != "" {
			t.Errorf("checkGoProxy(%q) = %q", v, msg)
		}
	}
	for v, want := range map[string]string{
		"https://user:s3cr3t@proxy.example.com":               "credentials written inline",
		"https://proxy.example.com/?token=s3cr3t,direct":      "a query string or fragment (not repeated here)",
		"https://proxy.example.com/#s3cr3t":                   "a query string or fragment",
		"direct,https://proxy.example.com/go?auth=s3cr3t|off": "a query string",
		"proxy.example.com":                                   "is not a proxy URL",
	} {
		msg := checkGoProxy("build.goproxy", v)
		if !strings.Contains(msg, want) {
			t.Errorf("checkGoProxy(%q) = %q, want %q", v, msg, want)
		}
		if strings.Contains(msg, "s3cr3t") {
			t.Errorf("checkGoProxy(%q) repeats the secret: %q", v, msg)
		}
	}
}
