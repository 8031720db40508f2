package pipeline_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
)

// TestTestOnAnotherMachine builds on one work folder and tests on another,
// as CI jobs on separate machines sharing the state do: the test stage
// takes the candidate's commands out of its images, and says exactly what
// is missing when no image holds the test binaries.
func TestTestOnAnotherMachine(t *testing.T) {
	addr := needBuildKit(t)
	w, _ := buildWorld(t, addr)
	w.yaml = strings.Replace(w.yaml, "platforms: [linux/amd64, linux/arm64]", "platforms: [linux/amd64]", 1)
	w.workDir = "machine-a"
	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Test.Status != report.TestPassed {
		t.Fatalf("release on machine a: exit %d\n%s", code, out)
	}

	// Machine b: no build output; the images lack e2e.test.
	w.workDir = "machine-b"
	code, rep, out = w.run("test", "HYPERFORK_BRANCHES=master", "HYPERFORK_FORCE=1")
	if m := w.branch(rep, "master"); code != report.ExitFailed || m.Test == nil || m.Test.Status != report.TestError ||
		!strings.Contains(m.Test.Reason, "none of its images holds e2e.test for linux/amd64") {
		t.Fatalf("test on machine b without the test binaries in an image: exit %d, test %+v\n%s", code, m.Test, out)
	}

	// An image that carries the test binary, as images/conformance.yaml
	// does for Kubernetes: machine b tests the candidate machine a built.
	img := "name: e2e\nbase: scratch\nbinaries: [e2e.test]\n"
	if err := os.WriteFile(filepath.Join(w.dir, "images", "e2e.yaml"), []byte(img), 0o644); err != nil {
		t.Fatal(err)
	}
	w.yaml = strings.Replace(w.yaml, "images: [images/test.yaml]", "images: [images/test.yaml, images/e2e.yaml]", 1)
	w.workDir = "machine-a"
	code, rep, out = w.run("build", "HYPERFORK_BRANCHES=master")
	built := w.branch(rep, "master").Build
	if code != 0 || built.Status != report.BuildBuilt || built.Images["e2e"] == "" {
		t.Fatalf("build with the e2e image on machine a: exit %d, build %+v\n%s", code, built, out)
	}
	w.workDir = "machine-b"
	code, rep, out = w.run("test", "HYPERFORK_BRANCHES=master")
	m := w.branch(rep, "master")
	if code != 0 || m.Test.Status != report.TestPassed || m.Test.Passed != 2 {
		t.Fatalf("test on machine b: exit %d, test %+v\n%s", code, m.Test, out)
	}
	// It ran the candidate's own binaries, taken from the images.
	log, err := os.ReadFile(m.Test.Log)
	if err != nil || !strings.Contains(string(log), "e2e ran") || !strings.Contains(string(log), "testing "+built.Image) {
		t.Fatalf("the test log %s does not show the candidate's e2e.test running (%v):\n%s", m.Test.Log, err, log)
	}
	bins, _ := filepath.Glob(filepath.Join(w.dir, "machine-b", "candidates", "master", built.Commit[:12], "*", "*"))
	var names []string
	for _, b := range bins {
		names = append(names, filepath.Base(b))
	}
	if strings.Join(names, " ") != "alpha beta e2e.test" {
		t.Errorf("machine b's HYPERFORK_BINDIR holds %q, want alpha, beta and e2e.test", names)
	}
}
