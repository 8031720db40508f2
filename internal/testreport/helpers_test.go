package testreport

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
	"github.com/hyperfork/hyperfork/internal/store"
)

const suite = "Kubernetes e2e suite"

// Specs of the known histories, by the letter of their column in a grid.
var specs = map[byte]string{
	'A': "[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]",
	'B': "[It] [sig-apps] Deployment deployment should support rollover [Conformance]",
	'C': "[It] [sig-node] Pods should be submitted and removed [Conformance] [NodeConformance]",
	'D': "[It] [sig-node] Secrets should be consumable from pods in env vars [Conformance] [NodeConformance]",
	'E': "", // hostile: testdata/hostile-name.txt
	'F': "[It] [sig-storage] EmptyDir volumes should support (root,0644,tmpfs) [LinuxOnly] [NodeConformance] [Conformance]",
}

// hostileName is a test name that is markup, read from testdata.
func hostileName(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hostile-name.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// hostileMessage is a failure message that is markup.
func hostileMessage(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hostile-message.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func specName(t testing.TB, col int) string {
	letter := byte('A' + col)
	if letter == 'E' {
		return hostileName(t)
	}
	return specs[letter]
}

func runID(branch string, i int) string { return fmt.Sprintf("%s-%02d", branch, i+1) }

// grid makes the JUnit result of each run from one string per run, oldest
// first: a letter per spec (A, B, … in order), P passed, F failed, T timed
// out, K failed then passed on the rerun (a flake), S skipped with a
// reason, - not reported; a leading '!' makes the run infra (its
// BeforeSuite failed).
func grid(t testing.TB, branch string, runs ...string) []history.Run {
	t.Helper()
	var out []history.Run
	for i, r := range runs {
		res := &junit.Result{}
		infra := strings.HasPrefix(r, "!")
		r = strings.TrimPrefix(r, "!")
		node := junit.Case{Name: "[SynchronizedBeforeSuite]", Classname: suite, Kind: junit.SuiteNode, Status: junit.Passed, Duration: 40 * time.Millisecond}
		if infra {
			node.Status, node.FailureType = junit.Failed, "failed"
			node.Message = fmt.Sprintf("[FAILED] pod coredns-7db6d8ff4d-%s on 172.18.0.%d is Pending", []string{"8x2kq", "4bcdf"}[i%2], i)
		}
		res.Cases = append(res.Cases, node)
		for col, c := range []byte(r) {
			name := specName(t, col)
			k := junit.Case{Name: name, Classname: suite, Kind: junit.Spec, Status: junit.Passed,
				Duration: time.Duration(col+1) * time.Second * time.Duration(1+i%3)}
			failed := k
			failed.Status, failed.FailureType = junit.Failed, "failed"
			failed.Message = fmt.Sprintf("[FAILED] deployment %q not ready: pod test-rollover-%s on 172.18.0.%d:6443 is Pending\nIn [It] at: k8s.io/kubernetes/test/e2e/apps/deployment.go:%d @ 01/%02d/26 03:21:07.482",
				"test-rollover", []string{"x7k2p", "b4mzq", "9dwtv"}[i%3], 2+i%5, 400+i, i+1)
			if col == 4 {
				failed.Message = hostileMessage(t)
			}
			switch c {
			case 'P':
			case 'F':
				k = failed
			case 'T':
				k = failed
				k.FailureType, k.Message = "timedout", "[TIMEDOUT] A spec timeout occurred"
			case 'K':
				if res.Retried == nil {
					res.Retried = map[junit.ID]junit.Case{}
				}
				res.Retried[k.ID()] = failed
			case 'S':
				k.Status, k.Message, k.Duration = junit.Skipped, "skipped - needs two schedulable nodes", 0
			case '-':
				continue
			default:
				t.Fatalf("run %d: outcome %q", i, c)
			}
			res.Cases = append(res.Cases, k)
		}
		out = append(out, history.Run{
			ID: runID(branch, i), Time: time.Date(2026, time.March, 1, 3, 0, 0, 0, time.UTC).AddDate(0, 0, i),
			Commit: fmt.Sprintf("%02d%038x", i+1, i+1), Candidate: fmt.Sprintf("sha256:%064x", i+1), Result: res,
		})
	}
	return out
}

// recorded appends runs to the history of branch in a real folder store
// and loads it back, as the pipeline does.
func recorded(t testing.TB, branch string, runs ...history.Run) *history.History {
	t.Helper()
	s, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if err := history.Append(t.Context(), s, branch, r); err != nil {
			t.Fatal(err)
		}
	}
	h, err := history.Load(t.Context(), s, branch, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != len(runs) {
		t.Fatalf("loaded %d runs of %s, want %d", len(h.Runs), branch, len(runs))
	}
	return h
}

// The known history of master: B breaks in run 7 and stays broken, E
// (whose name and message are markup) breaks in run 11, C flakes in runs
// 3 and 10 and E in run 6,
// F skips once, run 5 is infra (B's failure there does not count), D is
// not reported in run 2.
var masterGrid = []string{
	"PPPPPP",
	"PPP-PP",
	"PPKPPP",
	"PPPPPS",
	"!PFPPPP",
	"PPPPKP",
	"PFPPPP",
	"PFPPPP",
	"PFPPPP",
	"PFKPPP",
	"PFPPFP",
	"PFPPTP",
}

var releaseGrid = []string{
	"PPPPPP",
	"PPPPPP",
	"PPFPPP",
	"PPPPPP",
	"PPPPPP",
}

// knownInput is the report input of the known histories, with logs and
// the suspect range of B's new failure.
func knownInput(t testing.TB) Input {
	t.Helper()
	master := recorded(t, "master", grid(t, "master", masterGrid...)...)
	release := recorded(t, "release-1.37", grid(t, "release-1.37", releaseGrid...)...)
	logs := map[string]string{}
	for i := range masterGrid {
		logs[runID("master", i)] = fmt.Sprintf("logs/master/%s/log.txt", runID("master", i))
	}
	logs[runID("master", 11)] = "https://logs.example.test/master/12/log.txt?X-Amz-Signature=abc&X-Amz-Expires=3600"
	return Input{
		Title:     "hyperfork test history",
		Generated: time.Date(2026, time.March, 13, 9, 0, 0, 0, time.UTC),
		Branches: []Branch{
			{History: master, Logs: logs, Suspects: map[FailureKey][]Commit{
				{Run: runID("master", 6), Test: junit.ID{Classname: suite, Name: specs['B']}}: {
					{Hash: "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c", Subject: "apps: deployment controller requeues on <conflict>", Side: Upstream},
					{Hash: "aa2e3d4c5b6a79881f2e3d4c5b6a79881f2e3dff", Subject: "carry: our rollout tweak", Side: Carry},
				},
			}},
			{History: release},
		},
	}
}

// large is a generated history of one branch: tests × runs with realistic
// outcomes (most pass, a few flake, now and then a change breaks a test for
// some runs, one run in fifty is infra), built directly rather than
// through the store, so that the report's own cost is what is measured.
func large(t testing.TB, branch string, tests, runs int, seed uint64) *history.History {
	t.Helper()
	names := conformanceNames(t, tests)
	rng := rand.New(rand.NewPCG(seed, 2026))
	h := &history.History{Branch: branch, Clusters: []string{""}}
	for _, n := range names {
		h.Tests = append(h.Tests, history.Test{ID: junit.ID{Classname: suite, Name: n}, Kind: junit.Spec})
	}
	h.Tests = append(h.Tests, history.Test{ID: junit.ID{Classname: suite, Name: "[SynchronizedBeforeSuite]"}, Kind: junit.SuiteNode},
		history.Test{ID: junit.ID{Classname: "kubetest2", Name: "Up"}, Kind: junit.RunnerStep})
	base := make([]time.Duration, tests)
	flaky := make([]float64, tests)
	for i := range base {
		base[i] = time.Duration(math.Min(900, math.Exp(math.Log(8)+rng.NormFloat64())) * float64(time.Second))
		if rng.Float64() < 0.03 {
			flaky[i] = 0.02 + rng.Float64()*0.08
		}
	}
	broken := map[int][2]int{}
	for range 3 {
		first := rng.IntN(runs)
		broken[rng.IntN(tests)] = [2]int{first, first + 2 + rng.IntN(9)}
	}
	for i := range runs {
		h.Clusters = append(h.Clusters, fmt.Sprintf("[FAILED] Told to stop trying after <duration>.\nexpected pod \"pod-<rand>\" in namespace \"e2e-%d\" to be running (cluster %d)", i%7, i%7))
		rec := history.Record{ID: fmt.Sprintf("%s-%03d", branch, i), Time: time.Date(2026, time.January, 1, 3, 0, 0, 0, time.UTC).AddDate(0, 0, i),
			Commit: fmt.Sprintf("%016x%016x%08x", rng.Uint64(), rng.Uint64(), rng.Uint32()), Candidate: fmt.Sprintf("sha256:%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()), Entries: make([]history.Entry, len(h.Tests))}
		rec.Infra = rng.Float64() < 0.02
		if rec.Infra {
			rec.InfraReason = "the cluster did not come up"
			rec.Entries[tests+1] = history.Entry{Outcome: history.Failed, Cluster: 1}
		} else {
			rec.Entries[tests+1] = history.Entry{Outcome: history.Passed, Duration: time.Minute}
		}
		rec.Entries[tests] = history.Entry{Outcome: history.Passed, Duration: 300 * time.Millisecond}
		for t := range tests {
			e := history.Entry{Outcome: history.Passed, Duration: time.Duration(float64(base[t]) * (0.85 + 0.3*rng.Float64())).Round(time.Millisecond)}
			span, isBroken := broken[t]
			switch {
			case isBroken && i >= span[0] && i <= span[1]:
				e.Outcome, e.Cluster = history.Failed, len(h.Clusters)-1-rng.IntN(min(3, i+1))
			case rng.Float64() < flaky[t]:
				e.Retry, e.RetryCluster = history.Failed, 1+rng.IntN(len(h.Clusters)-1)
				if rng.Float64() < 0.1 {
					e.Outcome, e.Cluster, e.Retry, e.RetryCluster = history.Failed, e.RetryCluster, 0, 0
				}
			case t%97 == 0:
				e.Outcome, e.Duration = history.Skipped, 0
			}
			rec.Entries[t] = e
		}
		h.Runs = append(h.Runs, rec)
	}
	return h
}

// conformanceNames are the first n conformance tests of v1.37, as the
// junit package records them.
func conformanceNames(t testing.TB, n int) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "conformance", "junit", "testdata", "conformance-v1.37.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < n {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < n {
		t.Fatalf("only %d conformance names, want %d", len(out), n)
	}
	return out
}
