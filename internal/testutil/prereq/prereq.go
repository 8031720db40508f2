// Package prereq is the one place tests skip. Under CI=true a skip is a
// failure, whatever the flags: CI exists to run every test, and a silent
// skip there is how a missing runc or buildkitd once went unnoticed.
package prereq

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run under CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test because a prerequisite is missing, or fails it
// under CI=true. The reason should say how to install what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and a prerequisite is missing: %s", reason)
	}
	t.Skip(reason)
}

// Slow skips a slow test in -short mode; under CI=true it fails instead,
// so that `CI=true go test -short` cannot pass by running less.
func Slow(t testing.TB, what string) {
	t.Helper()
	if !testing.Short() {
		return
	}
	if InCI() {
		t.Fatalf("-short would skip this test (%s), and under CI=true a skip is a failure: run without -short", what)
	}
	t.Skipf("%s; skipped in -short mode", what)
}
