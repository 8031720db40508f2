package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/conformance"
)

// TestKubetest2RunnerTakesTheTestKeys checks that runner kubetest2 runs
// with what test.* says, and with the defaults where it says nothing.
func TestKubetest2RunnerTakesTheTestKeys(t *testing.T) {
	load := func(t *testing.T, test string) *conformance.Kubetest2 {
		t.Helper()
		dir := t.TempDir()
		file := filepath.Join(dir, "branches.yaml")
		yaml := "apiVersion: hyperfork.dev/v1alpha1\nkind: Pipeline\nupstream: {url: https://github.com/kubernetes/kubernetes.git}\nbranches: [{name: master}]\n" + test
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		run, err := (&Runner{cfg: cfg}).testRunner()
		if err != nil {
			t.Fatal(err)
		}
		k, ok := run.(*conformance.Kubetest2)
		if !ok {
			t.Fatalf("runner is %T", run)
		}
		return k
	}
	if got, want := load(t, "").Options, conformance.DefaultOptions(); got.FocusRegex != want.FocusRegex || got.SkipRegex != want.SkipRegex ||
		got.Parallel != want.Parallel || got.SerialFocusRegex != want.SerialFocusRegex || got.SerialSkipRegex != want.SerialSkipRegex ||
		got.NodeImage != want.NodeImage || got.BaseImage != want.BaseImage || got.TeardownTimeout != want.TeardownTimeout {
		t.Errorf("left out, the options are %+v, want conformance's defaults %+v", got, want)
	}
	o := load(t, "test:\n  focusRegex: 'sig-node.*\\[Conformance\\]'\n  skipRegex: ''\n  ginkgoParallel: 2\n  serialFocusRegex: ''\n  serialSkipRegex: Slow\n  baseImage: kindest/base:v1\n  nodeImage: team/node\n").Options
	if o.FocusRegex != `sig-node.*\[Conformance\]` || o.SkipRegex != "" || o.Parallel != 2 || o.SerialFocusRegex != "" ||
		o.SerialSkipRegex != "Slow" || o.BaseImage != "kindest/base:v1" || o.NodeImage != "team/node" {
		t.Errorf("written, the options are %+v", o)
	}
}
