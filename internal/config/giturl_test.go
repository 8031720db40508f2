package config

import (
	"strings"
	"testing"
)

func TestCheckGitURL(t *testing.T) {
	tests := []struct {
		url    string
		want   string   // substring of the message; "" means accepted
		secret []string // what the message must not repeat
	}{
		{url: "https://github.com/kubernetes/kubernetes.git"},
		{url: "http://127.0.0.1:8080/kubernetes.git"},
		{url: "http://localhost/kubernetes.git"},
		{url: "http://[::1]:9000/k.git"},
		{url: "http://LOCALHOST:8080/k.git"},
		{url: "http://git.localhost:8080/k.git"},
		{url: "https://GitHub.com/kubernetes/kubernetes.git"},
		{url: "ssh://git@github.com/kubernetes/kubernetes.git"},
		{url: "ssh://root@127.0.0.1:2222/srv/git/fork.git"},
		{url: "git@github.com:kubernetes/kubernetes.git"},
		{url: "github.com:kubernetes/kubernetes.git"},
		{url: "git@[::1]:k.git"},
		{url: "file:///srv/git/k.git"},
		{url: "/srv/git/k.git"},

		{url: "http://github.com/kubernetes/kubernetes.git", want: "plain http://"},
		{url: "http://localhost.corp.example/k.git", want: "plain http://"},
		{url: "http://127.example.com/k.git", want: "plain http://"},

		// Credentials, wherever they hide: never echoed, always pointed at tokenEnv.
		{url: "https://user:pass@github.com/k/k.git", want: "secret written inline", secret: []string{"user", "pass"}},
		{url: "https://x-access-token@github.com/k/k.git", want: "secret written inline", secret: []string{"x-access-token"}},
		{url: "ssh://git:hunter2@github.com/k/k.git", want: "secret written inline", secret: []string{"hunter2"}},
		{url: "git:hunter2@github.com:k/k.git", want: "secret written inline", secret: []string{"hunter2"}},
		{url: "https://github.com/k/k.git?access_token=ghp_aB3dE5gH7jK9mN1pQ3rS5tU7vW9xY1zA2bC4",
			want: "fork.url has a query string (not repeated here)", secret: []string{"access_token", "ghp_"}},
		{url: "https://github.com/k/k.git?private_token=glpat-abcdefghijklmnop", want: "set fork.tokenEnv", secret: []string{"private_token", "glpat-"}},
		{url: "https://github.com/k/k.git?", want: "a query string"},
		{url: "http://127.0.0.1:8080/k.git?token=s3cr3t", want: "a query string", secret: []string{"s3cr3t"}},
		{url: "https://github.com/k/k.git#ghp_aB3dE5gH7jK9mN1pQ3rS5tU7vW9xY1zA2bC4", want: "a fragment", secret: []string{"ghp_"}},
		{url: "https://github.com/k/k.git#", want: "a fragment"},
		{url: "ssh://git@github.com/k/k.git?key=s3cr3t", want: "a query string", secret: []string{"s3cr3t"}},
		{url: "file:///srv/git/k.git?token=s3cr3t", want: "a query string", secret: []string{"s3cr3t"}},
		{url: "git@github.com:k/k.git?token=s3cr3t", want: "a query string or fragment", secret: []string{"s3cr3t"}},

		// Transports git would refuse, or should not be driven with.
		{url: "git://github.com/k/k.git", want: "scheme git is not driven with"},
		{url: "git://github.com/k/k.git", want: "unauthenticated"},
		{url: "ftp://example.com/k.git", want: "https://host/org/repo.git, http://localhost"},
		{url: "ext::sh -c touch% /tmp/pwned", want: "remote-helper syntax ext::", secret: []string{"touch"}},
		{url: "fd::17", want: "remote-helper syntax fd::"},
		{url: "host::org/repo.git", want: "remote-helper syntax"},
		{url: "HTTPS://github.com/k/k.git", want: "write the scheme in lower case, https://"},
		{url: "File:///srv/git/k.git", want: "lower case"},
		{url: "ssh://-oProxyCommand=x/k.git", want: "cannot start with '-'"},
		{url: "-oProxyCommand=x@host:k.git", want: "cannot start with '-'"},
		{url: "kubernetes", want: "not a git URL"},
		{url: "./kubernetes.git", want: "not a git URL"},
		{url: "https://github.com", want: "not a valid URL"},
		{url: "file://relative/k.git", want: "not a valid file URL"},
	}
	for _, tt := range tests {
		got := checkGitURL("fork.url", tt.url, "fork.tokenEnv")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkGitURL(%q) = %q, want %q", tt.url, got, tt.want)
		}
		for _, s := range tt.secret {
			if strings.Contains(got, s) {
				t.Errorf("checkGitURL(%q) repeats %q: %q", tt.url, s, got)
			}
		}
	}
}

func TestSameRepository(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://github.com/kubernetes/kubernetes.git", "https://github.com/kubernetes/kubernetes.git", true},
		{"https://github.com/kubernetes/kubernetes.git", "https://github.com/kubernetes/kubernetes", true},
		{"https://github.com/kubernetes/kubernetes.git", "https://github.com/kubernetes/kubernetes/", true},
		{"https://github.com/kubernetes/kubernetes.git", "https://github.com/kubernetes/kubernetes.git/", true},
		{"https://github.com/kubernetes/kubernetes.git", "HTTPS://GitHub.COM/kubernetes/kubernetes", true},
		{"https://github.com/kubernetes/kubernetes", "https://github.com:443/kubernetes/kubernetes.git", true},
		{"ssh://git@github.com/kubernetes/kubernetes.git", "git@github.com:kubernetes/kubernetes", true},
		{"ssh://git@github.com:22/kubernetes/kubernetes.git", "github.com:kubernetes/kubernetes.git", true},
		{"file:///srv/git/k.git", "/srv/git/k.git", true},
		{"/srv/git/k.git", "/srv/git/k/", true},
		{"/srv/git/./k.git", "/srv/git/k.git", true},
		{"http://127.0.0.1:8080/upstream.git", "http://127.0.0.1:8080/upstream.git", true},

		{"https://github.com/kubernetes/kubernetes.git", "https://github.com/example/kubernetes.git", false},
		{"https://github.com/kubernetes/kubernetes.git", "https://github.com/Kubernetes/kubernetes.git", false},
		{"http://127.0.0.1:8080/k.git", "http://127.0.0.1:8081/k.git", false},
		{"http://localhost/k.git", "https://localhost/k.git", false},
		{"https://github.com/k/k.git", "ssh://git@github.com/k/k.git", false},
		{"https://git.example.com/k.git", "https://git2.example.com/k.git", false},
		{"/srv/git/k.git", "/srv/git/fork.git", false},
		{"/srv/git/k.git", "https://srv/git/k.git", false},
	}
	for _, tt := range tests {
		if got := sameRepository(tt.a, tt.b); got != tt.want {
			t.Errorf("sameRepository(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := sameRepository(tt.b, tt.a); got != tt.want {
			t.Errorf("sameRepository(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}
