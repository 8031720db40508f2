package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSelectBranches(t *testing.T) {
	p := &Pipeline{File: "/repo/branches.yaml", Branches: []Branch{{Name: "master"}, {Name: "release-1.34"}, {Name: "release-1.33"}}}
	names := func(bs []Branch) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return out
	}
	all, err := p.SelectBranches(strings.Split("", ","))
	if err != nil || len(all) != 3 {
		t.Fatalf("empty selection: %v %v", all, err)
	}
	got, err := p.SelectBranches(strings.Split("release-1.33, master,", ","))
	if err != nil || !slices.Equal(names(got), []string{"master", "release-1.33"}) {
		t.Errorf("selection = %v, %v; want [master release-1.33] in config order", names(got), err)
	}
	_, err = p.SelectBranches([]string{"master", "main"})
	if !errors.Is(err, ErrUnknownBranch) || !strings.Contains(err.Error(), "main") ||
		!strings.Contains(err.Error(), "master, release-1.34, release-1.33") {
		t.Errorf("unknown branch error = %v", err)
	}
}

// TestSelectBranchesSuggests checks that an unknown name is answered with
// the configured names and the one nearest to it.
func TestSelectBranchesSuggests(t *testing.T) {
	p := &Pipeline{File: "/repo/branches.yaml", Branches: []Branch{{Name: "master"}, {Name: "release-1.34"}, {Name: "release-1.33"}}}
	tests := []struct {
		names []string
		want  []string
	}{
		{[]string{"release-1.35"}, []string{"release-1.35 (did you mean release-1.34?)", "use some of master, release-1.34, release-1.33"}},
		{[]string{"Master"}, []string{"Master (did you mean master?)"}},
		{[]string{"main"}, []string{"main (the nearest configured is master)"}},
		{[]string{"main", "release-1.3"}, []string{"main (the nearest configured is master), release-1.3 (did you mean release-1.34?)", "no entries of branches.yaml"}},
	}
	for _, tt := range tests {
		_, err := p.SelectBranches(tt.names)
		if !errors.Is(err, ErrUnknownBranch) {
			t.Errorf("SelectBranches(%q) = %v, want ErrUnknownBranch", tt.names, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("SelectBranches(%q) = %q, want it to contain %q", tt.names, err, w)
			}
		}
	}
}

func TestSecrets(t *testing.T) {
	p := &Pipeline{
		Upstream: Upstream{TokenEnv: "UP"},
		Fork:     Fork{TokenEnv: "FORK"},
		Publish:  Publish{UsernameEnv: "REG_USER", PasswordEnv: "REG_PASS"},
		Notify:   []Notifier{{Type: "webhook", URLEnv: "HOOK", SecretEnv: "HMAC"}, {Type: "email", PasswordEnv: "SMTP_PASS"}},
	}
	env := map[string]string{"UP": "tok", "FORK": "tok", "REG_PASS": "pw", "HOOK": "https://hooks/x", "HMAC": "k", "SMTP_PASS": "mail"}
	got := p.Secrets(func(k string) string { return env[k] })
	want := []string{"tok", "pw", "https://hooks/x", "k", "mail"}
	if !slices.Equal(got, want) {
		t.Errorf("Secrets = %q, want %q", got, want)
	}
}

func TestRenderLDFlags(t *testing.T) {
	got, err := RenderLDFlags([]string{"-X v={{.Version}}", "-X c={{.Commit}} -X s={{.TreeState}} -X d={{.BuildDate}}"},
		StampData{Version: "v1.34.1", Commit: "abc", TreeState: "clean", BuildDate: "2026-01-01T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-X v=v1.34.1", "-X c=abc -X s=clean -X d=2026-01-01T00:00:00Z"}
	if !slices.Equal(got, want) {
		t.Errorf("RenderLDFlags = %q, want %q", got, want)
	}
	if _, err := RenderLDFlags([]string{"{{.Branch}}"}, StampData{}); err == nil {
		t.Errorf("unknown field accepted")
	}
}
