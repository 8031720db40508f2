package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMinTests(t *testing.T) {
	tests := []struct {
		version string
		serial  bool
		want    int
	}{
		{"v1.33.0", true, 419},
		{"v1.33.4", false, 390},
		{"v1.34.1", true, 424},
		{"1.35", true, 441},
		{"v1.35.0-rc.1+a1b2c3d", false, 412},
		{"v1.36.2", true, 446},
		{"v1.37.2", true, 462},
		{"v1.37.0-alpha.3.512+0123456789abcd-dirty", false, 433},
		{"v1.38.0", true, 462}, // newer than the table: its newest count
		{"v1.32.9", true, 1},   // older: at least one test
		{"v2.0.0", true, 1},
		{"", false, 1},
		{"main", true, 1},
	}
	for _, tt := range tests {
		if got := MinTests(tt.version, tt.serial); got != tt.want {
			t.Errorf("MinTests(%q, %t) = %d, want %d", tt.version, tt.serial, got, tt.want)
		}
	}
	if total, serial, ok := Conformance("v1.36.0"); !ok || total != 446 || serial != 29 {
		t.Errorf("Conformance(v1.36.0) = %d, %d, %t", total, serial, ok)
	}
	if _, _, ok := Conformance("v1.38.0"); ok {
		t.Error("Conformance knows v1.38")
	}
}

// The table agrees with v1.37's conformance test names recorded beside the
// junit fixtures (test/conformance/testdata/conformance.yaml of v1.37.2).
func TestMinTestsMatchesRecordedNames(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "junit", "testdata", "conformance-v1.37.txt"))
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
	if len(names) != MinTests("v1.37.2", true) || len(names)-serial != MinTests("v1.37.2", false) {
		t.Errorf("%d names, %d serial; the table says %d and %d", len(names), serial, MinTests("v1.37.2", true), MinTests("v1.37.2", false))
	}
}
