package junit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The JUnit a Kubernetes conformance run writes is about 2.5 MB: ginkgo
// lists every spec of the e2e suite, around 7,000, and the ~460 its focus
// picked are the only ones that ran.
const kubernetesJUnitSize = 2500 << 10

// BenchmarkParse parses a generated 2.5 MB Kubernetes JUnit file with Parse
// and, alternating in the same run, with xml.Unmarshal into structs of
// ginkgo's shape (how ginkgo itself reads JUnit back when it merges
// reports), and reports both rates and their ratio.
//
//	go test -run '^$' -bench Parse ./internal/conformance/junit/
func BenchmarkParse(b *testing.B) {
	doc := kubernetesJUnit(b, kubernetesJUnitSize)
	times := [2][]time.Duration{}
	for n := 0; b.Loop(); n++ {
		for k := range 2 {
			i := (n + k) % 2
			start := time.Now()
			if i == 0 {
				if _, err := Parse(bytes.NewReader(doc), "junit_01.xml"); err != nil {
					b.Fatal(err)
				}
			} else {
				var v suitesXML
				if err := xml.Unmarshal(doc, &v); err != nil {
					b.Fatal(err)
				}
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	mb := float64(len(doc)) / 1e6
	parse, unmarshal := median(times[0]), median(times[1])
	b.ReportMetric(mb, "MB/file")
	b.ReportMetric(mb/parse.Seconds(), "parse-MB/s")
	b.ReportMetric(mb/unmarshal.Seconds(), "unmarshal-MB/s")
	b.ReportMetric(float64(parse.Microseconds())/1e3, "parse-ms/file")
	b.ReportMetric(float64(parse)/float64(unmarshal), "parse/unmarshal")
}

// The generated file parses to what was generated.
func TestGeneratedKubernetesJUnit(t *testing.T) {
	doc := kubernetesJUnit(t, kubernetesJUnitSize)
	r, err := Parse(bytes.NewReader(doc), "junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	n := r.Counts()
	if n.Executed() != 433 || n.Failed != 5 || n.Skipped < 6000 {
		t.Errorf("Counts() = %+v, want 433 executed (5 failed) and thousands skipped", n)
	}
	t.Logf("%d bytes, %d testcases, %+v", len(doc), len(r.Cases), n)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// kubernetesJUnit writes what the e2e suite writes for the parallel pass of
// a conformance run, with encoding/xml as ginkgo does (same indentation,
// same escaping): the conformance specs of v1.37 without [Serial] ran, five
// of them failed with a message and a timeline, and made-up specs of the
// rest of the suite, skipped, fill the file to size bytes.
func kubernetesJUnit(tb testing.TB, size int) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "conformance-v1.37.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	conformance := strings.Split(strings.TrimSpace(string(raw)), "\n")
	const suite = "Kubernetes e2e suite"
	var cases []caseXML
	for _, n := range []string{"[SynchronizedBeforeSuite]", "[SynchronizedAfterSuite]", "[ReportAfterSuite] Kubernetes e2e suite report"} {
		cases = append(cases, caseXML{Name: n, Classname: suite, Status: "passed", Time: 0.000873602})
	}
	failed := 0
	for i, n := range conformance {
		c := caseXML{Name: n, Classname: suite, Status: "passed", Time: 2 + float64(i%97)*0.713}
		switch {
		case strings.Contains(n, "[Serial]"):
			c.Status, c.Time, c.Skipped = "skipped", 0, &skippedXML{Message: "skipped"}
		case i%90 == 7 && failed < 5:
			failed++
			msg := fmt.Sprintf("[FAILED] Told to stop trying after 300.001s.\nexpected pod \"pod-%d-x7k2p\" in namespace \"e2e-%d\" on 172.18.0.%d to be running: %s\nIn [It] at: k8s.io/kubernetes/test/e2e/common/node/pods.go:%d @ 01/15/26 03:21:07.482\n",
				i, 1000+i, i%250, strings.Repeat("condition not met; ", 200), 200+i)
			c.Status, c.Failure = "failed", &failureXML{Type: "failed", Text: msg}
			c.SystemErr = strings.Repeat("STEP: waiting for the pod to be running - k8s.io/kubernetes/test/e2e/framework/pod/wait.go:421 @ 01/15/26 03:19:00.214\n", 200) + msg
		}
		cases = append(cases, c)
	}
	sigs := []string{"sig-storage", "sig-network", "sig-node", "sig-apps", "sig-cli", "sig-auth", "sig-scheduling", "sig-instrumentation"}
	drivers := []string{"csi-hostpath", "local", "nfs", "emptydir", "hostPath", "gcepd"}
	patterns := []string{"Dynamic PV (block volmode)", "Pre-provisioned PV (ext4)", "Inline-volume (default fs)", "Generic Ephemeral-volume (default fs)"}
	doc := func() []byte {
		sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		e := xml.NewEncoder(&buf)
		e.Indent("  ", "    ")
		v := suitesXML{Suites: []suiteXML{{Name: suite, Package: "/tmp/hyperfork/rundir", Timestamp: "2026-01-15T03:12:44",
			Properties: []propertyXML{{"SuiteSucceeded", "false"}, {"FocusStrings", `\[Conformance\]`}, {"SkipStrings", `\[Serial\]`}, {"ParallelTotal", "4"}},
			Cases:      cases}}}
		if err := e.Encode(v); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	for i := 0; ; {
		b := doc()
		if len(b) >= size {
			return b
		}
		// A skipped testcase is some 330 bytes: add about what is missing.
		for range (size-len(b))/330 + 1 {
			name := fmt.Sprintf("[It] [%s] In-tree Volumes [Driver: %s] [Testpattern: %s] volumes should store data and allow reads %d [Feature:Volumes%d]",
				sigs[i%len(sigs)], drivers[i%len(drivers)], patterns[i%len(patterns)], i, i%13)
			cases = append(cases, caseXML{Name: name, Classname: suite, Status: "skipped", Skipped: &skippedXML{Message: "skipped"}})
			i++
		}
	}
}

// The shape ginkgo's reporters write and read.
type suitesXML struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []suiteXML `xml:"testsuite"`
}

type suiteXML struct {
	Name       string        `xml:"name,attr"`
	Package    string        `xml:"package,attr"`
	Timestamp  string        `xml:"timestamp,attr"`
	Properties []propertyXML `xml:"properties>property"`
	Cases      []caseXML     `xml:"testcase"`
}

type propertyXML struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type caseXML struct {
	Name      string      `xml:"name,attr"`
	Classname string      `xml:"classname,attr"`
	Status    string      `xml:"status,attr"`
	Time      float64     `xml:"time,attr"`
	Skipped   *skippedXML `xml:"skipped,omitempty"`
	Failure   *failureXML `xml:"failure,omitempty"`
	SystemErr string      `xml:"system-err,omitempty"`
}

type skippedXML struct {
	Message string `xml:"message,attr"`
}

type failureXML struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}
