// Package reliability holds hyperfork's crash and concurrency suite, and no
// code of its own: its tests run `release` as a real process against real
// servers (git over smart HTTP, BuildKit, the distribution registry, an S3
// server), kill it with SIGKILL at named points (internal/killpoint) or
// from outside at a moment a server sees, run it again, and check that the
// end state is the one an uninterrupted run reaches: no fork commit lost,
// no stable tag on an untested digest, no kept image or log deleted, every
// announcement made exactly once, no lock held past its lease. Other tests
// here run two runners on one S3 state, push to the fork in the middle of a
// run, and take the registry and S3 away and back.
//
// TestReliability prints a table of the points and their outcomes, and
// writes it to crash-points.md in HYPERFORK_TEST_ARTIFACTS when that is
// set. HYPERFORK_RELIABILITY_POINTS=3,17 runs only those points (numbers as
// in the table), with -run 'TestReliability/group/crash' to leave out the
// rest.
//
// It is a package of its own so that `go test ./...` runs it beside
// internal/pipeline's tests rather than after them.
package reliability
