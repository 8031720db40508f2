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

// conformanceTests counts, per minor version of Kubernetes 1.x, the entries
// of test/conformance/testdata/conformance.yaml in the release's tag
// (v1.33.0 to v1.36.0, v1.37.2, from the module proxy's k8s.io/kubernetes)
// and how many of them are [Serial]: the serial set stayed the same 29
// tests through these releases.
var conformanceTests = map[int]struct{ total, serial int }{
	33: {419, 29}, 34: {424, 29}, 35: {441, 29}, 36: {446, 29}, 37: {462, 29},
}

// ConformanceTests returns test.minTests' default for runner kubetest2: the
// number of conformance tests of version's minor release (a Kubernetes
// version string such as v1.34.2 or v1.35.0-alpha.1.20+0123abcd), less
// the [Serial] ones when there is no serial pass (serial false: an empty
// test.serialFocusRegex). A release newer than the table gets the newest
// count, a lower bound, since conformance only grows; an older one is an
// error that asks for test.minTests, because a guess could let a run that
// lost tests pass.
func ConformanceTests(version string, serial bool) (int, error) {
	minor, err := minorOf(version)
	if err != nil {
		return 0, err
	}
	c, ok := conformanceTests[minor]
	if !ok {
		known := slices.Sorted(maps.Keys(conformanceTests))
		oldest, newest := known[0], known[len(known)-1]
		if minor < newest {
			return 0, fmt.Errorf("no conformance test count known for %s (known: v1.%d to v1.%d): set test.minTests", version, oldest, newest)
		}
		c = conformanceTests[newest]
	}
	if serial {
		return c.total, nil
	}
	return c.total - c.serial, nil
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
