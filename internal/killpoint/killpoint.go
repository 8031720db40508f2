// Package killpoint is a test seam for crash tests, in the manner of etcd's
// gofail failpoints, reduced to the one failure that matters for crash
// safety: the process dying at once, as on SIGKILL, an OOM kill or a power
// cut, with no deferred function, no cleanup and no report.
//
// Production code marks the moments between two effects that must survive a
// crash in either order with Reach("name"): after a push and before the
// record of it, after a delivery and before its ledger entry. A crash test
// runs hyperfork as a child process with
//
//	HYPERFORK_KILLPOINT=name     (the first time name is reached)
//	HYPERFORK_KILLPOINT=name:N   (the N-th time)
//
// and the process sends itself SIGKILL there, after one line on stderr
// ("killpoint name:N reached: SIGKILL") by which the test tells the point it
// asked for from a crash of another cause. Its children die with it through
// their parent-death signal (internal/exec sets PR_SET_PDEATHSIG), as in a
// real crash; what hyperfork wrote elsewhere stays as it was at that moment.
//
// With the variable unset, which is every real run, Reach costs one atomic
// load. The variable is read once, on the first Reach, never at init.
//
// The armed point is process-wide state, unlike everything else in
// hyperfork: a failpoint must be reachable from any depth without threading
// a value through every call, and exists only for tests.
package killpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Env is the environment variable that arms a point.
const Env = "HYPERFORK_KILLPOINT"

// armed is the point named by Env, read once.
var armed struct {
	once sync.Once
	name string // "" when nothing is armed
	nth  int64  // the armed reach, 1 for the first
	seen atomic.Int64
}

// Reach is a named point. When HYPERFORK_KILLPOINT names it (and this is
// the N-th time it is reached, for name:N), the process kills itself with
// SIGKILL and Reach does not return.
func Reach(name string) {
	armed.once.Do(load)
	if armed.name == "" || armed.name != name {
		return
	}
	n := armed.seen.Add(1)
	if n != armed.nth {
		return
	}
	// One write, unbuffered: the test reads it from the dead process's
	// stderr.
	fmt.Fprintln(os.Stderr, Message(name, n))
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	// Nothing after the point may run while the kernel ends the process.
	for {
		time.Sleep(time.Hour)
	}
}

// load reads Env. A malformed count arms nothing rather than the wrong
// reach; Parse lets a test check its spelling first.
func load() {
	name, nth, err := Parse(os.Getenv(Env))
	if err != nil {
		fmt.Fprintf(os.Stderr, "killpoint: %v; no point is armed\n", err)
		return
	}
	armed.name, armed.nth = name, nth
}

// Parse reads a HYPERFORK_KILLPOINT value: "name" or "name:N" with N ≥ 1.
// An empty value arms nothing.
func Parse(v string) (name string, nth int64, err error) {
	if v == "" {
		return "", 0, nil
	}
	name, count, hasCount := strings.Cut(v, ":")
	nth = 1
	if hasCount {
		nth, err = strconv.ParseInt(count, 10, 64)
		if err != nil || nth < 1 {
			return "", 0, fmt.Errorf("%s=%q: the count after ':' must be a whole number from 1", Env, v)
		}
	}
	if name == "" {
		return "", 0, fmt.Errorf("%s=%q: no point named", Env, v)
	}
	return name, nth, nil
}

// Message is the line Reach writes before the kill, for tests to look for.
func Message(name string, nth int64) string {
	return fmt.Sprintf("killpoint %s:%d reached: SIGKILL", name, nth)
}
