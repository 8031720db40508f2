package conformance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestKubetest2MissingToolsNameTheInstallCommand(t *testing.T) {
	rec := &recorder{}
	k := newKubetest2(t, rec)
	k.Path = fakePath(t, "kubetest2", "docker") + string(filepath.ListSeparator) + fakePath(t, "not-kind")
	r, err := k.Run(context.Background(), kubetest2Candidate(t), t.TempDir())
	if !errors.Is(err, ErrMissingTool) {
		t.Fatalf("err = %v, want ErrMissingTool", err)
	}
	var mt *MissingToolError
	if !errors.As(err, &mt) {
		t.Fatalf("err = %v, want a *MissingToolError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"kubetest2-kind, kubetest2-tester-ginkgo are not on PATH",
		"`go install sigs.k8s.io/kubetest2/...@" + Kubetest2Commit + "`",
		"kind is not on PATH",
		"`go install sigs.k8s.io/kind@" + KindVersion + "`",
		k.Path,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "docker") || len(rec.calls) != 0 {
		t.Errorf("docker is there; commands ran: %q\n%s", rec.lines(), msg)
	}
	if !strings.Contains(readFile(t, r.Log), "go install sigs.k8s.io/kind@") {
		t.Error("the log does not say what to install")
	}
	// A tool that is there but cannot be run counts as missing.
	k.Path = fakePath(t, allTools...)
	os.Chmod(filepath.Join(k.Path, "docker"), 0o644)
	if _, err := k.Run(context.Background(), kubetest2Candidate(t), t.TempDir()); err == nil || !strings.Contains(err.Error(), "docker is not on PATH") ||
		!strings.Contains(err.Error(), "install Docker Engine") {
		t.Fatalf("err = %v", err)
	}
}

func TestKubetest2PinsAreRealVersions(t *testing.T) {
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(Kubetest2Commit) || !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(KindVersion) {
		t.Fatalf("pins %q %q", Kubetest2Commit, KindVersion)
	}
}

func TestClusterName(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	valid := regexp.MustCompile(`^[a-z0-9.-]+$`)
	names := map[string]string{}
	for branch, want := range map[string]string{
		"master":       "hyperfork-master-0123456789ab",
		"release-1.34": "hyperfork-release-1.34-0123456789ab",
		// Changed to fit: a hash of the name keeps them apart.
		"release/1.34": "hyperfork-release-1.34-",
		"Master":       "hyperfork-master-",
		"feature/a-very-long-branch-name-for-testing": "hyperfork-feature-a-very-lon",
		"///": "hyperfork-",
	} {
		got := ClusterName(branch, commit)
		if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "-0123456789ab") {
			t.Errorf("ClusterName(%q) = %q, want %q…-0123456789ab", branch, got, want)
		}
		if len(got) > clusterNameMax || !valid.MatchString(got) || strings.Contains(got, "--") {
			t.Errorf("ClusterName(%q) = %q: kind refuses or warns about it", branch, got)
		}
		if other, ok := names[got]; ok {
			t.Errorf("%q and %q share the cluster %s", branch, other, got)
		}
		names[got] = branch
	}
	if a, b := ClusterName("release-1.34", commit), ClusterName("release/1.34", commit); a == b {
		t.Errorf("release-1.34 and release/1.34 share %s", a)
	}
}

func TestKubetest2OptionsAreCheckedFirst(t *testing.T) {
	rec := &recorder{}
	k := newKubetest2(t, rec)
	k.Options = Options{SkipRegex: "[", NodeImage: "hyperfork/node:latest"}
	dir := t.TempDir()
	_, err := k.Run(context.Background(), kubetest2Candidate(t), dir)
	if err == nil {
		t.Fatal("zero options ran")
	}
	for _, want := range []string{"FocusRegex is empty", `SkipRegex "["`, "Parallel is 0", `NodeImage "hyperfork/node:latest"`, "TeardownTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if len(rec.calls) != 0 {
		t.Fatalf("commands ran: %q", rec.lines())
	}
	o := DefaultOptions()
	o.NodeImage = "registry.example:5000/team/node"
	if err := o.validate(); err != nil {
		t.Fatalf("a registry port is no tag: %v", err)
	}
}

// TestKubetest2RealProcessesTimeout runs the runner with the real
// ExecCommander over shell scripts standing in for the tools: a kubetest2
// that hangs with children of its own, a kind that records its calls.
func TestKubetest2RealProcessesTimeout(t *testing.T) {
	dir := t.TempDir()
	calls, pids := filepath.Join(dir, "kind-calls"), filepath.Join(dir, "pids")
	path := filepath.Join(t.TempDir(), "path")
	writeScript(t, path, "docker", "echo 27.3.1\n")
	writeScript(t, path, "kind", `echo "$*" >> "$KIND_CALLS"`+"\n")
	writeScript(t, path, "kubetest2", `sleep 300 & a=$!; sleep 301 & b=$!; echo $$ $a $b > "$PIDS"; echo creating cluster; wait`+"\n")
	writeScript(t, path, "kubetest2-kind", "exit 1\n")
	writeScript(t, path, "kubetest2-tester-ginkgo", "exit 1\n")
	// The fake tools first, then the system's sh and sleep.
	k := &Kubetest2{Options: DefaultOptions(), Path: path + string(filepath.ListSeparator) + os.Getenv("PATH"), Timeout: 2 * time.Second}
	k.Options.Env = []string{"KIND_CALLS=" + calls, "PIDS=" + pids}
	start := time.Now()
	run := filepath.Join(dir, "run")
	r, err := k.Run(context.Background(), kubetest2Candidate(t), run)
	if !errors.Is(err, ErrNoJUnit) || !r.TimedOut {
		t.Fatalf("err = %v, run = %+v\n%s", err, r, readFile(t, r.Log))
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("Run took %s with a 2s timeout", took)
	}
	waitGone(t, 2*time.Second, readPids(t, pids, 3)...)
	cluster := "hyperfork-release-1.34-0123456789ab"
	lines := strings.Split(strings.TrimSpace(readFile(t, calls)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "build node-image --type file ") ||
		lines[1] != "export logs "+filepath.Join(run, "artifacts", "timeout-logs")+" --name "+cluster ||
		lines[2] != "delete cluster --name "+cluster+" --kubeconfig "+filepath.Join(run, "kubeconfig") {
		t.Fatalf("kind calls:\n%s", strings.Join(lines, "\n"))
	}
	log := readFile(t, r.Log)
	if !strings.Contains(log, "27.3.1\n") || !strings.Contains(log, "creating cluster\n") || !strings.Contains(log, "hyperfork: kubetest2 failed") {
		t.Fatalf("log:\n%s", log)
	}
}
