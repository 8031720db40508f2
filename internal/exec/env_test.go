package exec

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// gitVars are variables with which git, inherited, would work on another
// repository or with other configuration.
var gitVars = []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES",
	"GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0",
	"GIT_CONFIG_GLOBAL", "GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_TRACE", "GIT_QUARANTINE_PATH"}

func TestBaseEnvKeepsOnlyTheAllowList(t *testing.T) {
	vars := map[string]string{
		"PATH": "/bin", "HOME": "/home/u", "LC_ALL": "de_DE.UTF-8", "https_proxy": "http://p:3128",
		"NO_PROXY": "localhost", "SSH_AUTH_SOCK": "/tmp/agent", "TERM": "xterm", "GOMODCACHE": "/cache",
		// Not allowed: they change what a tool does, or are secrets no child needs.
		"GOFLAGS": "-mod=mod", "GOOS": "plan9", "AWS_SECRET_ACCESS_KEY": "k", "EDITOR": "vi", "": "x",
	}
	for _, k := range gitVars {
		vars[k] = "/decoy"
	}
	env := BaseEnv(func(k string) string { return vars[k] })
	want := []string{"PATH=/bin", "HOME=/home/u", "LC_ALL=de_DE.UTF-8", "TERM=xterm", "https_proxy=http://p:3128",
		"NO_PROXY=localhost", "SSH_AUTH_SOCK=/tmp/agent", "GOMODCACHE=/cache"}
	if got, w := slices.Sorted(slices.Values(env)), slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
		t.Fatalf("BaseEnv = %q\nwant %q", got, w)
	}
	if env := BaseEnv(func(string) string { return "" }); len(env) != 0 {
		t.Fatalf("BaseEnv of an empty environment = %q", env)
	}
}

func TestRunDoesNotPassTheCallersGitEnvironment(t *testing.T) {
	for _, k := range gitVars {
		t.Setenv(k, "/decoy")
	}
	t.Setenv("LC_ALL", "de_DE.UTF-8")
	out, err := Run(context.Background(), Cmd{Name: "env", Env: []string{"GIT_TERMINAL_PROMPT=0", "LC_ALL=C"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "GIT_") && l != "GIT_TERMINAL_PROMPT=0" {
			t.Errorf("the command inherited %s", l)
		}
	}
	if !slices.Contains(lines, "LC_ALL=C") || slices.Contains(lines, "LC_ALL=de_DE.UTF-8") {
		t.Errorf("Cmd.Env does not win over the base environment: %q", lines)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "PATH=") }) {
		t.Errorf("PATH is missing: %q", lines)
	}
}
