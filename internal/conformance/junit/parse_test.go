package junit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// The fixtures in testdata are written to the shapes Kubernetes' e2e suite
// (ginkgo v2, test/e2e/framework/internal/junit: no failure message
// attribute, timelines only for failures) and kubetest2 write.
func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file   string
		counts Counts
		nodes  int      // suite nodes and runner steps
		infra  []string // names of InfraFailures
		check  func(t *testing.T, r *Result)
	}{
		{
			file: "passing.xml", counts: Counts{Passed: 6, Skipped: 2}, nodes: 4,
			check: func(t *testing.T, r *Result) {
				c := find(t, r, "[SynchronizedAfterSuite]")
				if c.Kind != SuiteNode || c.Status != Passed || c.Duration != 67821*time.Nanosecond {
					t.Errorf("[SynchronizedAfterSuite] = %+v, want a passed suite node of 67.821µs", c)
				}
				if c := find(t, r, "[DeferCleanup (Suite)]"); c.Kind != SuiteNode {
					t.Errorf("[DeferCleanup (Suite)] kind %s", c.Kind)
				}
				if c := find(t, r, "[ReportAfterSuite] Kubernetes e2e suite report"); c.Kind != SuiteNode {
					t.Errorf("[ReportAfterSuite] kind %s", c.Kind)
				}
				c = find(t, r, "[It] [sig-apps] Deployment deployment should support rollover [Conformance]")
				if c.Kind != Spec || c.Classname != "Kubernetes e2e suite" || c.Duration != 21310377624*time.Nanosecond {
					t.Errorf("rollover = %+v", c)
				}
				// &#39; in the name attribute.
				find(t, r, "[It] [sig-api-machinery] Garbage collector should not delete dependents that have both valid owner and owner that's waiting for dependents to be deleted [Conformance] [Serial]")
				if len(r.Suites) != 1 || r.Suites[0].Name != "Kubernetes e2e suite" ||
					r.Suites[0].Properties["SuiteSucceeded"] != "true" || r.Suites[0].Properties["FocusStrings"] != `\[Conformance\]` {
					t.Errorf("suites = %+v", r.Suites)
				}
			},
		},
		{
			file: "failures.xml", counts: Counts{Passed: 2, Failed: 2, Skipped: 2}, nodes: 4,
			check: func(t *testing.T, r *Result) {
				c := find(t, r, "[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]")
				want := "[FAILED] failed to get pod webserver-pod-9xk2f in namespace services-8204: Get \"https://172.18.0.3:6443/api/v1/namespaces/services-8204/pods/webserver-pod-9xk2f\": dial tcp 172.18.0.3:6443: connect: connection refused\nIn [It] at: k8s.io/kubernetes/test/e2e/network/service.go:812 @ 01/15/26 03:21:07.482\n"
				if c.Status != Failed || c.FailureType != "failed" || c.Message != want {
					t.Errorf("failure = %s %s %q, want failed failed %q", c.Status, c.FailureType, c.Message, want)
				}
				c = find(t, r, "[It] [sig-node] Secrets should be consumable from pods in env vars [Conformance] [NodeConformance]")
				if c.Status != Skipped || c.Message != "skipped - Only supported for node OS distro [gci ubuntu] (not debian)" {
					t.Errorf("skip = %s %q", c.Status, c.Message)
				}
				if got := len(r.Failures()); got != 2 {
					t.Errorf("Failures() = %d, want 2", got)
				}
			},
		},
		{
			// A spec past its own timeout is the test's failure; the one
			// the suite's --timeout stopped is the infrastructure's.
			file: "timeout.xml", counts: Counts{Passed: 1, Failed: 2, Skipped: 2}, nodes: 4,
			infra: []string{"[It] [sig-apps] Job should run a job to completion when tasks sometimes fail and are locally restarted [Conformance]"},
			check: func(t *testing.T, r *Result) {
				c := find(t, r, "[It] [sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] should perform rolling updates and roll backs of template modifications [Conformance]")
				if c.Status != Failed || c.FailureType != "timedout" || !strings.HasPrefix(c.Message, "[TIMEDOUT] A spec timeout occurred\n") {
					t.Errorf("timedout spec = %s %s %q", c.Status, c.FailureType, c.Message)
				}
			},
		},
		{
			file: "panic.xml", counts: Counts{Passed: 1, Errors: 1}, nodes: 4,
			check: func(t *testing.T, r *Result) {
				c := find(t, r, "[It] [sig-node] Pods should get a host IP [Conformance] [NodeConformance]")
				if c.Status != Error || c.FailureType != "panicked" || !strings.Contains(c.Message, "runtime error: invalid memory address or nil pointer dereference") {
					t.Errorf("panic = %s %s %q", c.Status, c.FailureType, c.Message)
				}
			},
		},
		{
			file: "before-suite-failed.xml", counts: Counts{Skipped: 4}, nodes: 3,
			infra: []string{"[SynchronizedBeforeSuite]"},
			check: func(t *testing.T, r *Result) {
				c := find(t, r, "[SynchronizedBeforeSuite]")
				if c.Duration != 600018263*time.Microsecond || !strings.Contains(c.Message, "coredns-7db6d8ff4d-8x2kq") {
					t.Errorf("before suite = %v %q", c.Duration, c.Message)
				}
			},
		},
		{
			file: "interrupted.xml", counts: Counts{Passed: 1, Errors: 1, Skipped: 1}, nodes: 4,
			infra: []string{"[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]"},
		},
		{
			file: "junit_runner-up-failed.xml", nodes: 2,
			infra: []string{"Up"},
			check: func(t *testing.T, r *Result) {
				c := find(t, r, "Up")
				if c.Kind != RunnerStep || c.Classname != "kubetest2" || c.Message != "exit status 1" || c.FailureType != "failed" {
					t.Errorf("Up = %+v", c)
				}
				if c := find(t, r, "Down"); c.Kind != RunnerStep || c.Status != Passed {
					t.Errorf("Down = %+v", c)
				}
			},
		},
		{
			// Alone, a failed Test step means the tester died.
			file: "junit_runner-test-failed.xml", nodes: 3,
			infra: []string{"Test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := ParseFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Counts(); got != tt.counts {
				t.Errorf("Counts() = %+v, want %+v", got, tt.counts)
			}
			nodes := 0
			for _, c := range r.Cases {
				if c.Kind != Spec {
					nodes++
				}
				if c.File != filepath.Join("testdata", tt.file) {
					t.Errorf("%s: File = %q", c.Name, c.File)
				}
			}
			if nodes != tt.nodes {
				t.Errorf("%d suite nodes and runner steps, want %d", nodes, tt.nodes)
			}
			if got := names(r.InfraFailures()); !equal(got, tt.infra) {
				t.Errorf("InfraFailures() = %q, want %q", got, tt.infra)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// A failed Test step beside the e2e suite's own failures is those failures,
// not the infrastructure's.
func TestTestStepFailedBySpecs(t *testing.T) {
	r, err := ParseFiles(filepath.Join("testdata", "failures.xml"), filepath.Join("testdata", "junit_runner-test-failed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.InfraFailures(); len(got) != 0 {
		t.Errorf("InfraFailures() = %q, want none", names(got))
	}
	if got := r.Counts(); got != (Counts{Passed: 2, Failed: 2, Skipped: 2}) {
		t.Errorf("Counts() = %+v: runner steps must not count", got)
	}
}

// Interrupted between two specs: only the suite's property says so.
func TestInterruptedBetweenSpecs(t *testing.T) {
	doc := `<testsuites><testsuite name="Kubernetes e2e suite"><properties>
<property name="SuiteSucceeded" value="false"></property>
<property name="SpecialSuiteFailureReason" value="Interrupted by User"></property></properties>
<testcase name="[It] a" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
<testcase name="[It] b" classname="Kubernetes e2e suite" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
</testsuite></testsuites>`
	r, err := Parse(strings.NewReader(doc), "junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	infra := r.InfraFailures()
	if len(infra) != 1 || infra[0].Name != "[Kubernetes e2e suite] Interrupted by User" || infra[0].FailureType != "interrupted" {
		t.Fatalf("InfraFailures() = %+v", infra)
	}
}

func TestParseTruncated(t *testing.T) {
	path := filepath.Join("testdata", "truncated.xml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(path)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *ParseError", err)
	}
	lines := bytes.Count(raw, []byte("\n")) + 1
	if pe.File != path || pe.Line != lines || pe.Offset != int64(len(raw)) || !pe.ExactOffset {
		t.Errorf("ParseError = %s:%d byte %d (exact %t), want %s:%d byte %d", pe.File, pe.Line, pe.Offset, pe.ExactOffset, path, lines, len(raw))
	}
	for _, want := range []string{path, fmt.Sprintf("line %d, byte %d", lines, len(raw)), "unexpected EOF"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
		notJUnit  bool
	}{
		{"empty", "", 1, true},
		{"html", "<html><body>502 Bad Gateway</body></html>", 1, true},
		{"mismatched", "<testsuites>\n<testsuite name=\"s\">\n<testcase name=\"a\"></testsuite>\n</testsuites>", 3, false},
		{"bad attribute", "<testsuite>\n<testcase name=a></testcase></testsuite>", 2, false},
		{"text only", "not xml at all", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.doc), "junit_01.xml")
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Line != tt.line || pe.File != "junit_01.xml" {
				t.Errorf("%s:%d, want junit_01.xml:%d (%v)", pe.File, pe.Line, tt.line, err)
			}
			if errors.Is(err, ErrNotJUnit) != tt.notJUnit {
				t.Errorf("errors.Is(ErrNotJUnit) = %t, want %t: %v", !tt.notJUnit, tt.notJUnit, err)
			}
		})
	}
}

// Bytes that are not UTF-8, control characters and references to characters
// XML forbids all become U+FFFD; everything else, including runes split
// across reads, comes through unchanged.
func TestParseInvalidCharacters(t *testing.T) {
	msg := "\x1b[31mred\x1b[0m é \xff\xfe 🕹️ &#x1B; &#27; &#0; &#xFFFE; &#65; &amp; tab\tend"
	want := "\uFFFD[31mred\uFFFD[0m é \uFFFD\uFFFD 🕹️ \uFFFD \uFFFD \uFFFD \uFFFD A & tab\tend"
	doc := `<?xml version="1.0" encoding="UTF-8"?><testsuite name="s"><testcase name="[It] bad &#x7; name ` + "\x01" + `">` +
		`<failure type="failed">` + msg + `</failure></testcase></testsuite>`
	for _, oneByte := range []bool{false, true} {
		var in io.Reader = strings.NewReader(doc)
		if oneByte {
			in = iotest.OneByteReader(in)
		}
		res, err := Parse(in, "junit_01.xml")
		if err != nil {
			t.Fatalf("one byte at a time %t: %v", oneByte, err)
		}
		c := res.Cases[0]
		if c.Message != want || c.Name != "[It] bad \uFFFD name \uFFFD" {
			t.Errorf("one byte at a time %t:\n message %q\n    want %q\n name %q", oneByte, c.Message, want, c.Name)
		}
	}
}

// A declared encoding other than UTF-8 is read as UTF-8, bytes that are not
// replaced, rather than refused.
func TestParseDeclaredEncoding(t *testing.T) {
	doc := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite name=\"s\"><testcase name=\"caf\xe9\"></testcase></testsuite>"
	r, err := Parse(strings.NewReader(doc), "junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Cases[0].Name; got != "caf\uFFFD" {
		t.Errorf("name = %q", got)
	}
}

// The offset of an error counts the file's bytes, not the replacements.
func TestParseErrorOffsetAfterReplacements(t *testing.T) {
	clean := "<testsuite name=\"s\">\n<testcase name=\"a\"><failure>xxxxxx &#x1B;&#x1B;</failure></testcase>\n</testsuit>"
	dirty := strings.Replace(clean, "xxxxxx", "\xff\x1b\xfe\x01\xc3\x28", 1)
	_, errClean := Parse(strings.NewReader(clean), "clean.xml")
	_, errDirty := Parse(strings.NewReader(dirty), "dirty.xml")
	var pc, pd *ParseError
	if !errors.As(errClean, &pc) || !errors.As(errDirty, &pd) {
		t.Fatalf("errors: %v; %v", errClean, errDirty)
	}
	if pc.Offset != pd.Offset || pc.Line != pd.Line || pc.Line != 3 || !pd.ExactOffset {
		t.Errorf("dirty %d:%d (exact %t), clean %d:%d", pd.Line, pd.Offset, pd.ExactOffset, pc.Line, pc.Offset)
	}
}

// Messages of megabytes are kept whole.
func TestParseHugeMessage(t *testing.T) {
	line := "I0115 03:21:07.501127 18 dump.go:53] At 2026-01-15 03:19:00 +0000 UTC - event for pod: &lt;ok&gt; &amp; more\n"
	var msg strings.Builder
	for msg.Len() < 8<<20 {
		msg.WriteString(line)
	}
	text := msg.String()
	doc := `<testsuite name="s"><testcase name="[It] big"><failure type="failed">` + text + `</failure><system-err>` + text + `</system-err></testcase></testsuite>`
	r, err := Parse(strings.NewReader(doc), "big.xml")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(text)
	if got := r.Cases[0].Message; len(got) != len(want) || got != want {
		t.Errorf("message of %d bytes, want %d", len(got), len(want))
	}
}

// A testcase with only ginkgo's status attribute, and times as writers
// write them.
func TestParseAttributes(t *testing.T) {
	doc := `<testsuite name="s">
<testcase name="[It] t" status="timedout" time="6.7821e-05"></testcase>
<testcase name="[It] p" status="pending" time="1,234.5"></testcase>
<testcase name="[It] i" status="interrupted" time="nope"></testcase>
<testcase name="[It] n" time="-3"></testcase>
<testcase name="[It] both" status="failed"><skipped message="skipped"/><failure message="summary" type="aborted">   </failure></testcase>
</testsuite>`
	r, err := Parse(strings.NewReader(doc), "a.xml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Case{
		{Name: "[It] t", Status: Failed, FailureType: "timedout", Duration: 67821 * time.Nanosecond},
		{Name: "[It] p", Status: Skipped, Message: "pending", Duration: 1234500 * time.Millisecond},
		{Name: "[It] i", Status: Error, FailureType: "interrupted"},
		{Name: "[It] n", Status: Passed},
		{Name: "[It] both", Status: Failed, FailureType: "aborted", Message: "summary"},
	}
	for i, w := range want {
		w.Classname, w.Kind, w.File = "s", Spec, "a.xml"
		if r.Cases[i] != w {
			t.Errorf("case %d = %+v\n          want %+v", i, r.Cases[i], w)
		}
	}
}

func TestParseFilesNamesEveryBadFile(t *testing.T) {
	r, err := ParseFiles(filepath.Join("testdata", "passing.xml"), filepath.Join("testdata", "truncated.xml"), filepath.Join("testdata", "missing.xml"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"truncated.xml", "missing.xml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if got := r.Counts(); got.Passed != 6 {
		t.Errorf("the file that parsed is lost: %+v", got)
	}
}

func find(t *testing.T, r *Result, name string) Case {
	t.Helper()
	for _, c := range r.Cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no testcase %q", name)
	return Case{}
}

func names(cs []Case) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
