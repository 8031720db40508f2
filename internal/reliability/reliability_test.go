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
		chains, specials := dealPoints(t)
		for c, idx := range chains {
			name := fmt.Sprintf("crash%c", 'a'+c)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testCrashChain(t, s, name, idx, table)
			})
		}
		for _, i := range specials {
			t.Run("crash-"+crashPoints[i].special, func(t *testing.T) {
				t.Parallel()
				testAnnouncementCrash(t, s, i, table)
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
// each chain meets them in a release's order, and returns the special
// points apart. HYPERFORK_RELIABILITY_POINTS (such as "3,17", numbers as in
// the table) runs only those, the chain's in one chain, for work on one
// point.
func dealPoints(t *testing.T) (chains [][]int, specials []int) {
	var idx []int
	if only := os.Getenv("HYPERFORK_RELIABILITY_POINTS"); only != "" {
		for _, f := range strings.Split(only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > len(crashPoints) {
				t.Fatalf("HYPERFORK_RELIABILITY_POINTS=%q: %q is not a point number 1-%d", only, f, len(crashPoints))
			}
			idx = append(idx, n-1)
		}
	} else {
		for i := range crashPoints {
			idx = append(idx, i)
		}
	}
	var plain []int
	for _, i := range idx {
		if crashPoints[i].special != "" {
			specials = append(specials, i)
		} else {
			plain = append(plain, i)
		}
	}
	n := crashChains
	if os.Getenv("HYPERFORK_RELIABILITY_POINTS") != "" {
		n = 1
	}
	chains = make([][]int, min(n, len(plain)))
	for k, i := range plain {
		chains[k%n] = append(chains[k%n], i)
	}
	return chains, specials
}
