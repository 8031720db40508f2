package conformance

import (
	"errors"
	"testing"
)

func TestConformanceTests(t *testing.T) {
	for version, want := range map[string]int{
		"v1.33.0": 419, "v1.34.2": 424, "1.35.1": 441, "v1.36.0-alpha.1.20+0123abcd": 446, "v1.37.0-rc.1": 462,
		"v1.40.0": 462, // newer than the table: the newest count, a lower bound
	} {
		if got, err := ConformanceTests(version); err != nil || got != want {
			t.Errorf("ConformanceTests(%q) = %d, %v; want %d", version, got, err, want)
		}
	}
	for _, version := range []string{"v1.32.4", "v2.0.0", "", "master", "v1.x"} {
		if got, err := ConformanceTests(version); err == nil {
			t.Errorf("ConformanceTests(%q) = %d, want an error asking for test.minTests", version, got)
		}
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
