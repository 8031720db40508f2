package history

import (
	"strconv"
	"strings"
)

// conformance counts, per Kubernetes minor version, the entries of
// test/conformance/testdata/conformance.yaml in the release's tag (v1.33.0,
// v1.34.0, v1.35.0, v1.36.0, v1.37.2 from the Go module proxy's
// k8s.io/kubernetes) and how many of them are [Serial]. The serial set
// stayed the same 29 tests through these releases (the newest was promoted
// in v1.31).
var conformance = map[int]struct{ total, serial int }{
	33: {419, 29},
	34: {424, 29},
	35: {441, 29},
	36: {446, 29},
	37: {462, 29},
}

// Known minor versions, oldest and newest.
const (
	oldestMinor = 33
	newestMinor = 37
)

// Conformance returns the number of conformance tests of a Kubernetes
// version ("v1.37.2", "1.36", "v1.35.0-rc.1+abc") and how many of them are
// [Serial]; ok is false for a version the table does not know.
func Conformance(version string) (total, serial int, ok bool) {
	minor, ok := minorOf(version)
	if !ok {
		return 0, 0, false
	}
	c, ok := conformance[minor]
	return c.total, c.serial, ok
}

// MinTests is the fewest tests a conformance run of version must execute:
// the version's conformance tests, less the [Serial] ones when only the
// parallel pass runs (serialIncluded false). A version newer than the
// table gets the newest count it knows (releases add conformance tests,
// they rarely remove any); an older or unreadable version gets 1, so that
// a run that executed nothing still fails.
func MinTests(version string, serialIncluded bool) int {
	minor, ok := minorOf(version)
	switch {
	case !ok || minor < oldestMinor:
		return 1
	case minor > newestMinor:
		minor = newestMinor
	}
	c := conformance[minor]
	if serialIncluded {
		return c.total
	}
	return c.total - c.serial
}

// minorOf reads the minor of a version 1.x.
func minorOf(version string) (int, bool) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	major, rest, ok := strings.Cut(v, ".")
	if !ok || major != "1" {
		return 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	minor, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, false
	}
	return minor, true
}
