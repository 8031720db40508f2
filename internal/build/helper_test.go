package build

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// TestBuildHelper compiles the embedded build helper for the host and runs
// plans whose steps write files as go would: everything is exported the
// first time, then only what changed, and a failed step's exit code and
// output are its own.
func TestBuildHelper(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		skipOrFail(t, "go is not on PATH")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		skipOrFail(t, "sh is not on PATH")
	}
	ctx := context.Background()
	src, tmp := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte(helperGoMod), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), helperMain, 0o644)
	helper := filepath.Join(tmp, helperName)
	if _, err := hfexec.Run(ctx, hfexec.Cmd{Name: "go", Args: []string{"build", "-o", helper, "."}, Dir: src,
		Env: []string{"GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0"}}); err != nil {
		t.Fatalf("the embedded build helper does not compile: %v", err)
	}
	kept := filepath.Join(tmp, "kept")
	os.Mkdir(kept, 0o755)
	run := func(script string, have map[string]string) (map[string]string, []string, string, int) {
		t.Helper()
		out := t.TempDir()
		plan, _ := json.Marshal(helperPlan{Cache: kept, Out: out, Manifest: manifestDir + "/build.json",
			Steps:    []helperStep{{Dir: kept, Args: []string{"sh", "-c", script}}},
			Binaries: []string{"a", "b"}, Have: have})
		planFile := filepath.Join(t.TempDir(), "build.json")
		os.WriteFile(planFile, plan, 0o644)
		cmd := exec.Command(helper, planFile)
		output, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, nil, string(output), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, manifestDir, "build.json"))
		if err != nil {
			t.Fatalf("no manifest: %v\n%s", err, output)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var exported []string
		entries, _ := os.ReadDir(out)
		for _, e := range entries {
			if e.Name() != manifestDir {
				exported = append(exported, e.Name())
				if fi, _ := e.Info(); fi.Mode().Perm() != 0o755 {
					t.Errorf("%s exported with mode %v, want 0755", e.Name(), fi.Mode())
				}
			}
		}
		return m, exported, string(output), 0
	}

	first, exported, out, _ := run("printf one > a; printf two > b", nil)
	if strings.Join(exported, " ") != "a b" || !strings.HasPrefix(first["a"], "sha256:") || first["a"] == first["b"] {
		t.Fatalf("first run exported %v with manifest %v:\n%s", exported, first, out)
	}
	// go relinks b only: a is not exported, and is not read again.
	second, exported, out, _ := run("printf three > b", first)
	if strings.Join(exported, " ") != "b" || second["a"] != first["a"] || second["b"] == first["b"] {
		t.Errorf("after b changed: exported %v, manifest %v (was %v):\n%s", exported, second, first, out)
	}
	if !strings.Contains(out, "1 of 2 binaries changed") {
		t.Errorf("output %q does not say what was exported", out)
	}
	// Nothing changed: nothing exported, the same manifest.
	third, exported, _, _ := run("true", second)
	if len(exported) != 0 || !maps.Equal(third, second) {
		t.Errorf("no change: exported %v, manifest %v, want none and %v", exported, third, second)
	}
	// A client that lost its copy of a gets it again.
	if _, exported, _, _ = run("true", map[string]string{"b": second["b"]}); strings.Join(exported, " ") != "a" {
		t.Errorf("client without a: exported %v, want a", exported)
	}
	// A file rewritten in place with the same size is hashed again.
	if fourth, _, _, _ := run("printf ThReE > b", second); fourth["b"] == second["b"] {
		t.Error("a rewritten binary kept its old digest")
	}

	_, _, out, code := run("echo './main.go:3:1: syntax error' >&2; exit 3", nil)
	if code != 3 || !strings.Contains(out, "syntax error") {
		t.Errorf("failing step: exit %d, %q; want the step's exit code and output", code, out)
	}
	if _, _, out, code = run("true; rm -f a", nil); code == 0 || !strings.Contains(out, "the build made no a") {
		t.Errorf("missing binary: exit %d, %q", code, out)
	}
}

// TestHeld checks the output folder's record: a binary is held while it is
// the file Compile recorded, and not once it was rewritten or replaced.
func TestHeld(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(dir, n), []byte("binary "+n), 0o755)
	}
	if err := writeHeld(dir, map[string]string{"a": "sha256:a", "b": "sha256:b", "c": "sha256:c", "gone": "sha256:x"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := identityOf(mustStat(t, filepath.Join(dir, "a"))); !ok {
		skipOrFail(t, "file identities are not read on this system")
	}
	if got := readHeld(dir); !maps.Equal(got, map[string]string{"a": "sha256:a", "b": "sha256:b", "c": "sha256:c"}) {
		t.Fatalf("held %v", got)
	}
	// File times are as coarse as the kernel's clock tick: wait one, as
	// any real rewrite comes long after Compile recorded the folder.
	time.Sleep(20 * time.Millisecond)
	os.WriteFile(filepath.Join(dir, "b"), []byte("binary B"), 0o755) // same size, in place
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, ".a-link"))  // as a layer cache does
	os.WriteFile(filepath.Join(dir, "c.new"), []byte("binary c"), 0o755)
	os.Rename(filepath.Join(dir, "c.new"), filepath.Join(dir, "c")) // the same bytes, another file
	if got := readHeld(dir); !maps.Equal(got, map[string]string{"a": "sha256:a"}) {
		t.Errorf("held %v after b was rewritten and c replaced, want a only", got)
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestHasGinkgo(t *testing.T) {
	vendored, required, none := t.TempDir(), t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(vendored, "vendor/github.com/onsi/ginkgo/v2/ginkgo"), 0o755)
	os.WriteFile(filepath.Join(required, "go.mod"), []byte("module x\n\ngo 1.24\n\nrequire (\n\tgithub.com/onsi/ginkgo/v2 v2.34.0 // indirect\n)\n"), 0o644)
	os.WriteFile(filepath.Join(none, "go.mod"), []byte("module x\n\nrequire github.com/onsi/ginkgo v1.16.5\n"), 0o644)
	for dir, want := range map[string]bool{vendored: true, required: true, none: false} {
		if got := hasGinkgo(dir); got != want {
			t.Errorf("hasGinkgo(%s) = %v, want %v", dir, got, want)
		}
	}
}
