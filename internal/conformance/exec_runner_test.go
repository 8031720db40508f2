package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// execCandidate returns a candidate whose bin folder holds the script body
// as run-suite, the program the tests' Exec runs.
func execCandidate(t *testing.T, body string) Candidate {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	writeScript(t, bin, "run-suite", body)
	return Candidate{
		Branch: "release-1.34", Commit: "0123456789abcdef0123456789abcdef01234567", Version: "v1.34.2-3+0123456789ab",
		Image:  "registry.example/hyperkube@sha256:aaaa",
		Images: map[string]string{"hyperkube": "registry.example/hyperkube@sha256:aaaa", "conformance": "registry.example/conformance@sha256:bbbb"},
		BinDir: bin,
	}
}

const passingSuite = `set -e
env > "$HYPERFORK_ARTIFACTS/../env.txt"
echo "starting with token s3cr3t-token-x"
echo "a warning" >&2
mkdir -p "$HYPERFORK_ARTIFACTS/nested/deeper"
echo '<testsuite tests="1"><testcase name="[It] a"/></testsuite>' > "$HYPERFORK_ARTIFACTS/junit_01.xml"
echo '<testsuite tests="1"><testcase name="[It] b"/></testsuite>' > "$HYPERFORK_ARTIFACTS/nested/deeper/junit_02.XML"
echo 'not results' > "$HYPERFORK_ARTIFACTS/nested/notes.txt"
echo done
`

func TestExecPassingSuite(t *testing.T) {
	t.Setenv("GIT_DIR", "/somewhere/else") // must not reach the command
	c := execCandidate(t, passingSuite)
	dir := filepath.Join(t.TempDir(), "run")
	e := &Exec{Command: []string{"run-suite"}, Timeout: time.Minute, Redactor: exec.NewRedactor("s3cr3t-token-x")}
	r, err := e.Run(context.Background(), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Err != nil || r.TimedOut || r.Interrupted {
		t.Fatalf("run = %+v", r)
	}
	art := filepath.Join(dir, "artifacts")
	want := []string{filepath.Join(art, "junit_01.xml"), filepath.Join(art, "nested", "deeper", "junit_02.XML")}
	if r.Artifacts != art || !slices.Equal(r.JUnit, want) {
		t.Fatalf("artifacts %s, JUnit %q; want %s, %q", r.Artifacts, r.JUnit, art, want)
	}

	log := readFile(t, r.Log)
	if !strings.Contains(log, "starting with token [REDACTED]\na warning\ndone\n") || strings.Contains(log, "s3cr3t") {
		t.Fatalf("log does not hold both streams in order, redacted:\n%s", log)
	}
	if !strings.Contains(log, "$ "+filepath.Join(c.BinDir, "run-suite")+"\n") || !strings.Contains(log, "hyperfork: HYPERFORK_COMMIT="+c.Commit+"\n") {
		t.Fatalf("log does not say what ran:\n%s", log)
	}

	env := map[string]string{}
	for _, line := range strings.Split(readFile(t, filepath.Join(dir, "env.txt")), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	for k, v := range map[string]string{
		"HYPERFORK_IMAGE": c.Image, "HYPERFORK_BINDIR": c.BinDir, "HYPERFORK_ARTIFACTS": art,
		"HYPERFORK_BRANCH": c.Branch, "HYPERFORK_COMMIT": c.Commit, "HYPERFORK_VERSION": c.Version,
	} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	var images map[string]string
	if err := json.Unmarshal([]byte(env["HYPERFORK_IMAGES"]), &images); err != nil || images["conformance"] != c.Images["conformance"] || len(images) != 2 {
		t.Errorf("HYPERFORK_IMAGES = %q (%v)", env["HYPERFORK_IMAGES"], err)
	}
	if !strings.HasPrefix(env["PATH"], c.BinDir+":") {
		t.Errorf("PATH = %q, want the bin folder first", env["PATH"])
	}
	if _, ok := env["GIT_DIR"]; ok {
		t.Error("GIT_DIR reached the command: the environment is not the allow-listed one")
	}
	if _, ok := env["HYPERFORK_FOCUS"]; ok {
		t.Error("HYPERFORK_FOCUS is set outside a retry")
	}
}

func TestExecNoJUnitIsAnError(t *testing.T) {
	c := execCandidate(t, "echo ran but wrote nothing\n")
	dir := t.TempDir()
	r, err := (&Exec{Command: []string{"run-suite"}}).Run(context.Background(), c, dir)
	if !errors.Is(err, ErrNoJUnit) {
		t.Fatalf("err = %v, want ErrNoJUnit", err)
	}
	art := filepath.Join(dir, "artifacts")
	if !strings.Contains(err.Error(), art) || !strings.Contains(err.Error(), "$HYPERFORK_ARTIFACTS") {
		t.Fatalf("error %q does not name the artifacts folder and what to do", err)
	}
	if r == nil || r.Log == "" || !strings.Contains(readFile(t, r.Log), "ran but wrote nothing") {
		t.Fatalf("run %+v: the log is not kept", r)
	}
}

func TestExecFailingSuiteKeepsItsJUnit(t *testing.T) {
	c := execCandidate(t, `echo '<testsuite/>' > "$HYPERFORK_ARTIFACTS/junit.xml"; echo 'FAIL: a' >&2; exit 1`+"\n")
	r, err := (&Exec{Command: []string{"run-suite"}}).Run(context.Background(), c, t.TempDir())
	if err != nil {
		t.Fatalf("a failing suite with results is no runner error: %v", err)
	}
	var re *exec.RunError
	if !errors.As(r.Err, &re) || re.ExitCode() != 1 || !strings.Contains(re.Output, "FAIL: a") || len(r.JUnit) != 1 {
		t.Fatalf("run = %+v", r)
	}
}

func TestExecMalformedJUnitIsFoundNotJudged(t *testing.T) {
	// Parsing is package junit's business: the runner only finds files.
	c := execCandidate(t, `printf '<testsuite><testcase name="cut off' > "$HYPERFORK_ARTIFACTS/broken.xml"; printf '\377\376' > "$HYPERFORK_ARTIFACTS/binary.xml"`+"\n")
	dir := t.TempDir()
	r, err := (&Exec{Command: []string{"run-suite"}}).Run(context.Background(), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	art := filepath.Join(dir, "artifacts")
	if want := []string{filepath.Join(art, "binary.xml"), filepath.Join(art, "broken.xml")}; !slices.Equal(r.JUnit, want) {
		t.Fatalf("JUnit = %q, want %q", r.JUnit, want)
	}
}

// hangingSuite starts two sleeps, writes the pids of the shell and both
// sleeps, writes some JUnit, and waits.
const hangingSuite = `sleep 300 & a=$!
sleep 301 & b=$!
echo '<testsuite/>' > "$HYPERFORK_ARTIFACTS/junit_01.xml"
echo $$ $a $b > "$HYPERFORK_ARTIFACTS/../pids"
echo hanging
wait
`

func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	c := execCandidate(t, hangingSuite)
	dir := t.TempDir()
	start := time.Now()
	r, err := (&Exec{Command: []string{"run-suite"}, Timeout: time.Second}).Run(context.Background(), c, dir)
	if err != nil {
		t.Fatalf("a timed-out run with partial results: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Run took %s with a 1s timeout", took)
	}
	if !r.TimedOut || r.Interrupted || !errors.Is(r.Err, ErrTimedOut) || len(r.JUnit) != 1 {
		t.Fatalf("run = %+v, want timed out with the partial JUnit", r)
	}
	waitGone(t, 2*time.Second, readPids(t, filepath.Join(dir, "pids"), 3)...)
	if log := readFile(t, r.Log); !strings.Contains(log, "hanging\n") || !strings.Contains(log, "hyperfork: test.timeout passed (1s): the process group was killed") {
		t.Fatalf("log does not say the run timed out:\n%s", log)
	}
}

func TestExecCancelKillsTheProcessGroup(t *testing.T) {
	c := execCandidate(t, hangingSuite)
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		readPids(t, filepath.Join(dir, "pids"), 3)
		cancel(errors.New("interrupted by SIGINT"))
	}()
	r, err := (&Exec{Command: []string{"run-suite"}, Timeout: time.Hour}).Run(ctx, c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || r.TimedOut || r.Err == nil || !strings.Contains(r.Err.Error(), "interrupted by SIGINT") {
		t.Fatalf("run = %+v, want interrupted", r)
	}
	waitGone(t, 2*time.Second, readPids(t, filepath.Join(dir, "pids"), 3)...)
	if log := readFile(t, r.Log); !strings.Contains(log, "hyperfork: interrupted (interrupted by SIGINT)") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestExecRetryFocusesOnExactlyTheFailedSpecs(t *testing.T) {
	c := execCandidate(t, `printf '%s' "$HYPERFORK_FOCUS" > "$HYPERFORK_ARTIFACTS/../focus"; echo '<testsuite/>' > "$HYPERFORK_ARTIFACTS/junit.xml"`+"\n")
	dir := t.TempDir()
	specs := []string{"[It] [sig-apps] Deployment should run (1.5x) [Conformance]", "[It] [sig-node] Pods should be *fine* [Serial] [Conformance]"}
	if _, err := (&Exec{Command: []string{"run-suite"}}).Retry(context.Background(), c, dir, specs); err != nil {
		t.Fatal(err)
	}
	re, err := regexp.Compile(readFile(t, filepath.Join(dir, "focus")))
	if err != nil {
		t.Fatalf("HYPERFORK_FOCUS is no regex: %v", err)
	}
	// What ginkgo matches: the suite description, a space, the full text.
	for text, want := range map[string]bool{
		"Kubernetes e2e suite [sig-apps] Deployment should run (1.5x) [Conformance]":         true,
		"Kubernetes e2e suite [sig-node] Pods should be *fine* [Serial] [Conformance]":       true,
		"Kubernetes e2e suite [sig-apps] Deployment should run (1.5x) [Conformance] quickly": false,
		"Kubernetes e2e suite [sig-apps] Deployment should run (125x) [Conformance]":         false,
		"Kubernetes e2e suite [sig-node] Pods should be fine [Serial] [Conformance]":         false,
	} {
		if re.MatchString(text) != want {
			t.Errorf("focus %q matches %q: %v, want %v", re, text, !want, want)
		}
	}
}

func TestExecRelativeCommandRunsInDir(t *testing.T) {
	cfgDir := t.TempDir()
	writeScript(t, filepath.Join(cfgDir, "tests"), "run.sh", `pwd > "$HYPERFORK_ARTIFACTS/../pwd"; echo '<testsuite/>' > "$HYPERFORK_ARTIFACTS/r.xml"`+"\n")
	dir := t.TempDir()
	if _, err := (&Exec{Command: []string{"./tests/run.sh"}, Dir: cfgDir}).Run(context.Background(), execCandidate(t, ""), dir); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "pwd"))); got != cfgDir {
		t.Fatalf("the command ran in %s, want %s", got, cfgDir)
	}
}

func TestExecRefusesAFolderWithAnEarlierRun(t *testing.T) {
	c := execCandidate(t, `echo '<testsuite/>' > "$HYPERFORK_ARTIFACTS/j.xml"`+"\n")
	dir := t.TempDir()
	e := &Exec{Command: []string{"run-suite"}}
	if _, err := e.Run(context.Background(), c, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), c, dir); err == nil || !strings.Contains(err.Error(), "earlier run") {
		t.Fatalf("second run in one folder: err = %v", err)
	}
}

func TestExecMissingCommandIsAnError(t *testing.T) {
	c := execCandidate(t, "")
	r, err := (&Exec{Command: []string{"no-such-suite"}}).Run(context.Background(), c, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no-such-suite") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(readFile(t, r.Log), "no-such-suite") {
		t.Fatal("the log does not say why nothing ran")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.Log), "artifacts")); err != nil {
		t.Fatal(err)
	}
}
