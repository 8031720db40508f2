package conformance

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// MinTestsExec is test.minTests' default for runner exec: a command that
// ran no test at all has not passed.
const MinTestsExec = 1

// conformanceTests is the number of [Conformance] specs per minor version
// of Kubernetes 1.x, serial ones included (both passes of the kubetest2
// runner).
var conformanceTests = map[int]int{33: 419, 34: 424, 35: 441, 36: 446, 37: 462}

// ConformanceTests returns test.minTests' default for runner kubetest2: the
// number of conformance tests of version's minor release (a Kubernetes
// version string such as v1.34.2 or v1.35.0-alpha.1.20+0123abcd), serial
// ones included. A release newer than the table gets the newest count, a
// lower bound, since conformance only grows; an older one is an error
// that asks for test.minTests, because a guess could let a run that lost
// tests pass. With the serial pass turned off (an empty
// SerialFocusRegex), test.minTests must be set by hand.
func ConformanceTests(version string) (int, error) {
	minor, err := minorOf(version)
	if err != nil {
		return 0, err
	}
	if n, ok := conformanceTests[minor]; ok {
		return n, nil
	}
	known := slices.Sorted(maps.Keys(conformanceTests))
	oldest, newest := known[0], known[len(known)-1]
	if minor > newest {
		return conformanceTests[newest], nil
	}
	return 0, fmt.Errorf("no conformance test count known for %s (known: v1.%d to v1.%d): set test.minTests", version, oldest, newest)
}

// minorOf returns the minor number of a version 1.x, with or without v.
func minorOf(version string) (int, error) {
	v := strings.TrimPrefix(version, "v")
	major, rest, ok := strings.Cut(v, ".")
	if !ok || major != "1" {
		return 0, fmt.Errorf("version %q is not a Kubernetes 1.x version", version)
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	minor, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, fmt.Errorf("version %q has no minor number", version)
	}
	return minor, nil
}

// CheckMinTests returns an error wrapping ErrTooFewTests when fewer than
// min tests ran: a focus that selected nothing, a suite that died early, a
// build that lost tests must never pass silently. Executed counts the
// specs that ran (passed or failed), neither skipped ones nor suite nodes.
func CheckMinTests(executed, min int) error {
	if executed >= min {
		return nil
	}
	return fmt.Errorf("%w: %d ran, test.minTests is %d: check the focus and skip regexes and the log for a suite that stopped early", ErrTooFewTests, executed, min)
}
