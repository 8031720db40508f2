package junit

import (
	"path/filepath"
	"reflect"
	"testing"
)

const (
	basicEndpoint = "[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]"
	rollover      = "[It] [sig-apps] Deployment deployment should support rollover [Conformance]"
	serialGC      = "[It] [sig-api-machinery] Garbage collector should keep the rc around until all its pods are deleted if the deleteOptions says so [Conformance] [Serial]"
	podsSubmitted = "[It] [sig-node] Pods should be submitted and removed [Conformance] [NodeConformance]"
)

// pass is a ginkgo pass that ran the given specs and listed the others as
// skipped, with its own suite nodes.
func pass(file string, ran map[string]Status, listed ...string) *Result {
	r := &Result{Suites: []Suite{{Name: "Kubernetes e2e suite", File: file}}}
	r.Cases = append(r.Cases, Case{Name: "[SynchronizedBeforeSuite]", Classname: "Kubernetes e2e suite", Status: Passed, Kind: SuiteNode, File: file})
	for _, name := range listed {
		c := Case{Name: name, Classname: "Kubernetes e2e suite", Status: Skipped, Message: "skipped", Kind: Spec, File: file}
		if s, ok := ran[name]; ok {
			c.Status, c.Message = s, ""
			if s == Failed {
				c.FailureType, c.Message = "failed", "[FAILED] "+file
			}
		}
		r.Cases = append(r.Cases, c)
	}
	return r
}

// The parallel pass, the serial pass, then the rerun of what failed: a spec
// that failed and then passed is a flake, one that failed twice stays
// failed, a spec first run by the serial pass is no rerun, and every pass's
// suite nodes are kept.
func TestMergePasses(t *testing.T) {
	parallel, err := ParseFile(filepath.Join("testdata", "failures.xml"))
	if err != nil {
		t.Fatal(err)
	}
	all := []string{basicEndpoint, rollover, serialGC, podsSubmitted}
	serial := pass("serial.xml", map[string]Status{serialGC: Passed}, all...)
	retry := pass("retry.xml", map[string]Status{basicEndpoint: Passed, rollover: Failed}, all...)
	before := *retry

	m := Merge(parallel, nil, serial, retry)

	if got, want := m.Counts(), (Counts{Passed: 4, Failed: 1, Skipped: 1}); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
	if got := names(m.Flakes()); !equal(got, []string{basicEndpoint}) {
		t.Errorf("Flakes() = %q", got)
	}
	if got := names(m.Failures()); !equal(got, []string{rollover}) {
		t.Errorf("Failures() = %q", got)
	}
	byName := map[string]Case{}
	for _, c := range m.Cases {
		if c.Kind == Spec {
			if _, dup := byName[c.Name]; dup {
				t.Errorf("%s twice", c.Name)
			}
			byName[c.Name] = c
		}
	}
	if c := byName[rollover]; c.File != "retry.xml" || c.Message != "[FAILED] retry.xml" {
		t.Errorf("rollover comes from %s (%q), want the rerun's", c.File, c.Message)
	}
	if c := byName[serialGC]; c.Status != Passed || c.File != "serial.xml" {
		t.Errorf("serial spec = %+v", c)
	}
	if len(m.Retried) != 2 {
		t.Errorf("Retried = %v, want the two reruns only", m.Retried)
	}
	first := m.Retried[ID{Classname: "Kubernetes e2e suite", Name: rollover}]
	if first.File != filepath.Join("testdata", "failures.xml") || first.Status != Failed {
		t.Errorf("Retried[rollover] = %+v, want the first pass's failure", first)
	}
	nodes := 0
	for _, c := range m.Cases {
		if c.Kind == SuiteNode {
			nodes++
		}
	}
	if nodes != 4+1+1 {
		t.Errorf("%d suite nodes, want every pass's", nodes)
	}
	if len(m.Suites) != 3 {
		t.Errorf("%d suites, want 3", len(m.Suites))
	}
	// Specs keep the position of their first appearance.
	if m.Cases[4].Name != serialGC {
		t.Errorf("case 4 = %s", m.Cases[4].Name)
	}
	if !reflect.DeepEqual(before, *retry) {
		t.Error("Merge changed its input")
	}
}

// A failed suite node in one pass is not hidden by the next pass's success.
func TestMergeKeepsFailedSuiteNode(t *testing.T) {
	broken, err := ParseFile(filepath.Join("testdata", "before-suite-failed.xml"))
	if err != nil {
		t.Fatal(err)
	}
	m := Merge(broken, pass("serial.xml", map[string]Status{serialGC: Passed}, serialGC))
	if got := names(m.InfraFailures()); !equal(got, []string{"[SynchronizedBeforeSuite]"}) {
		t.Errorf("InfraFailures() = %q", got)
	}
}

// Merging merged results keeps the earliest outcome of a rerun.
func TestMergeOfMerged(t *testing.T) {
	a := pass("a.xml", map[string]Status{rollover: Failed}, rollover)
	b := pass("b.xml", map[string]Status{rollover: Failed}, rollover)
	c := pass("c.xml", map[string]Status{rollover: Passed}, rollover)
	m := Merge(Merge(a, b), c)
	id := ID{Classname: "Kubernetes e2e suite", Name: rollover}
	if got := m.Retried[id].File; got != "a.xml" {
		t.Errorf("Retried from %s, want a.xml", got)
	}
	if got := names(m.Flakes()); !equal(got, []string{rollover}) {
		t.Errorf("Flakes() = %q", got)
	}
}

// Two specs with one name in one pass are two specs.
func TestMergeDuplicateNamesInOnePass(t *testing.T) {
	a := pass("a.xml", map[string]Status{rollover: Passed}, rollover, rollover)
	m := Merge(a)
	if got := m.Counts().Passed; got != 2 {
		t.Errorf("%d passed, want 2", got)
	}
	if len(m.Retried) != 0 {
		t.Errorf("Retried = %v", m.Retried)
	}
}
