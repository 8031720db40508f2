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
