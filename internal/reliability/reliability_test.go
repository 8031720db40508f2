package reliability

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReliability is the suite: the crash points, dealt to crashChains
// worlds that run at once, beside the concurrency and outage tests, all on
// one set of servers.
func TestReliability(t *testing.T) {
	s := startServers(t)
	table := &crashTable{}
	t.Run("group", func(t *testing.T) {
		for c, idx := range dealPoints(t) {
			name := fmt.Sprintf("crash%c", 'a'+c)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testCrashChain(t, s, name, idx, table)
			})
		}
		for name, fn := range map[string]func(*testing.T, *servers){
			"two-runners-at-once":   testTwoRunnersAtOnce,
			"person-pushes-mid-run": testPersonPushesMidRun,
			"registry-outage":       testRegistryOutage,
			"s3-outage":             testS3Outage,
		} {
			if os.Getenv("HYPERFORK_RELIABILITY_POINTS") != "" {
				break
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				fn(t, s)
			})
		}
	})
	table.write(t)
}

// dealPoints deals the crash points to the chains, round robin so that
// each chain meets them in a release's order. HYPERFORK_RELIABILITY_POINTS
// (such as "3,17", numbers as in the table) runs only those, in one chain,
// for work on one point.
func dealPoints(t *testing.T) [][]int {
	if only := os.Getenv("HYPERFORK_RELIABILITY_POINTS"); only != "" {
		var idx []int
		for _, f := range strings.Split(only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > len(crashPoints) {
				t.Fatalf("HYPERFORK_RELIABILITY_POINTS=%q: %q is not a point number 1-%d", only, f, len(crashPoints))
			}
			idx = append(idx, n-1)
		}
		return [][]int{idx}
	}
	chains := make([][]int, crashChains)
	for i := range crashPoints {
		chains[i%crashChains] = append(chains[i%crashChains], i)
	}
	return chains
}
