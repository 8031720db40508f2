package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/conformance"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
	"github.com/hyperfork/hyperfork/internal/report"
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

// TestVerdictMinTestsWithoutTheSerialPass reads a kubetest2 run of v1.37's
// 433 parallel conformance specs: enough without a serial pass (the 29
// [Serial] specs never run), too few with one. The default once counted
// the serial specs whatever the config said, so a pipeline with the serial
// pass turned off failed every run.
func TestVerdictMinTestsWithoutTheSerialPass(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<testsuites><testsuite name="Kubernetes e2e suite" tests="433">`)
	for i := range 433 {
		fmt.Fprintf(&b, `<testcase name="[It] [sig-x] spec %d [Conformance]" classname="Kubernetes e2e suite" status="passed" time="0.1"></testcase>`, i)
	}
	b.WriteString(`</testsuite></testsuites>`)
	res, err := junit.Parse(strings.NewReader(b.String()), "junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	p := passes{runs: []*conformance.Run{{}}, errs: []error{nil}, results: []*junit.Result{res}, parsed: []*junit.Result{res}}
	cand := &Candidate{Version: "v1.37.2-3+0123456789abcd"}
	for _, tc := range []struct {
		serialFocus string
		want        string
	}{
		{"", report.TestPassed},
		{`\[Serial\].*\[Conformance\]`, report.TestFailed},
	} {
		r := &Runner{cfg: &config.Pipeline{Test: config.Test{Runner: config.RunnerKubetest2, SerialFocusRegex: tc.serialFocus}}}
		if v := r.verdict(cand, p); v.status != tc.want {
			t.Errorf("serialFocusRegex %q: 433 executed specs are %s (%v), want %s", tc.serialFocus, v.status, v.err, tc.want)
		}
	}
}

// TestVerdictReadsWhatTheRunnerSaid checks the verdict beyond JUnit: a
// command that failed beside only passes, and a retry that timed out or
// wrote nothing, are infrastructure errors, never a pass or a test failure.
func TestVerdictReadsWhatTheRunnerSaid(t *testing.T) {
	parse := func(t *testing.T, beta string) *junit.Result {
		t.Helper()
		body := ""
		if beta == "failed" {
			body = `<failure message="boom" type="failed">boom</failure>`
		}
		res, err := junit.Parse(strings.NewReader(`<testsuites><testsuite name="s" tests="2">`+
			`<testcase name="[It] alpha" classname="s" status="passed" time="0.1"></testcase>`+
			`<testcase name="[It] beta" classname="s" status="`+beta+`" time="0.1">`+body+`</testcase>`+
			`</testsuite></testsuites>`), "junit_01.xml")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	pass, fail := parse(t, "passed"), parse(t, "failed")
	died := errors.New("exit status 3")
	r := &Runner{cfg: &config.Pipeline{Test: config.Test{Runner: config.RunnerExec, Timeout: time.Hour}}}
	cand := &Candidate{Version: "v1.37.2"}
	for _, tc := range []struct {
		name string
		p    passes
		want string
		says string
	}{
		{"a clean pass", passes{runs: []*conformance.Run{{}}, errs: []error{nil}, results: []*junit.Result{pass}, parsed: []*junit.Result{pass}}, report.TestPassed, ""},
		{"a failed command beside only passes", passes{runs: []*conformance.Run{{Err: died}}, errs: []error{nil}, results: []*junit.Result{pass}, parsed: []*junit.Result{pass}}, report.TestError, "records no failure"},
		{"a failed command beside a failed spec", passes{runs: []*conformance.Run{{Err: died}}, errs: []error{nil}, results: []*junit.Result{fail}, parsed: []*junit.Result{fail}}, report.TestFailed, "1 test(s) failed"},
		{"a flake: the retry passes", passes{runs: []*conformance.Run{{Err: died}, {}}, errs: []error{nil, nil}, results: []*junit.Result{fail, pass}, parsed: []*junit.Result{fail, pass}}, report.TestPassed, ""},
		{"a retry that timed out", passes{runs: []*conformance.Run{{Err: died}, {TimedOut: true, Err: died}}, errs: []error{nil, nil}, results: []*junit.Result{fail, nil}, parsed: []*junit.Result{fail}}, report.TestError, "retry 1 timed out"},
		{"a retry that wrote nothing", passes{runs: []*conformance.Run{{Err: died}, {Err: died}}, errs: []error{nil, errors.New("no JUnit under artifacts")}, results: []*junit.Result{fail, nil}, parsed: []*junit.Result{fail}}, report.TestError, "retry 1: no JUnit"},
	} {
		v := r.verdict(cand, tc.p)
		if v.status != tc.want || (tc.says != "" && (v.err == nil || !strings.Contains(v.err.Error(), tc.says))) {
			t.Errorf("%s: %s (%v), want %s saying %q", tc.name, v.status, v.err, tc.want, tc.says)
		}
	}
}
