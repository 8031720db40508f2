package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConformanceTests(t *testing.T) {
	for version, want := range map[string]int{
		"v1.33.0": 419, "v1.34.2": 424, "1.35.1": 441, "v1.36.0-alpha.1.20+0123abcd": 446, "v1.37.0-rc.1": 462,
		"v1.40.0": 462, // newer than the table: the newest count, a lower bound
	} {
		if got, err := ConformanceTests(version, true); err != nil || got != want {
			t.Errorf("ConformanceTests(%q, serial) = %d, %v; want %d", version, got, err, want)
		}
		// Without the serial pass, the 29 [Serial] specs never run.
		if got, err := ConformanceTests(version, false); err != nil || got != want-29 {
			t.Errorf("ConformanceTests(%q, no serial pass) = %d, %v; want %d", version, got, err, want-29)
		}
	}
	for _, version := range []string{"v1.32.4", "v2.0.0", "", "master", "v1.x"} {
		if got, err := ConformanceTests(version, true); err == nil {
			t.Errorf("ConformanceTests(%q) = %d, want an error asking for test.minTests", version, got)
		}
	}
}

// The table agrees with v1.37's conformance test names recorded beside the
// junit fixtures (test/conformance/testdata/conformance.yaml of v1.37.2).
func TestConformanceTestsMatchRecordedNames(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("junit", "testdata", "conformance-v1.37.txt"))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(strings.TrimSpace(string(raw)), "\n")
	serial := 0
	for _, n := range names {
		if strings.Contains(n, "[Serial]") {
			serial++
		}
	}
	all, _ := ConformanceTests("v1.37.2", true)
	parallel, _ := ConformanceTests("v1.37.2", false)
	if len(names) != all || len(names)-serial != parallel {
		t.Errorf("%d names, %d serial; the table says %d and %d", len(names), serial, all, parallel)
	}
}

func TestCheckMinTests(t *testing.T) {
	if err := CheckMinTests(424, 424); err != nil {
		t.Fatal(err)
	}
	if err := CheckMinTests(0, MinTestsExec); !errors.Is(err, ErrTooFewTests) {
		t.Fatalf("no test ran: err = %v", err)
	}
	if err := CheckMinTests(380, 424); !errors.Is(err, ErrTooFewTests) {
		t.Fatalf("err = %v", err)
	}
}
