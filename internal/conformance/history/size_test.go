package history

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// TestYearOfHistorySize appends a year of daily runs of 4 branches × 460
// conformance tests, with realistic outcomes, to a real folder store and
// prints what the history takes on disk, beside the same runs as plain
// JSON records (name, status, duration, message per test and run: what a
// store of test results would keep without this format).
//
//	go test -run YearOfHistorySize -v ./internal/conformance/history/
func TestYearOfHistorySize(t *testing.T) {
	const (
		branchCount = 4
		testCount   = 460
		days        = 365
	)
	raw, err := os.ReadFile(filepath.Join("..", "junit", "testdata", "conformance-v1.37.txt"))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(strings.TrimSpace(string(raw)), "\n")[:testCount]
	s := folder(t)
	branches := []string{"master", "release-1.37", "release-1.36", "release-1.35"}[:branchCount]
	rng := rand.New(rand.NewPCG(9, 2026))
	gen := newGenerator(rng, names)

	start := time.Now()
	var naive int64
	runs, specResults := 0, 0
	for _, branch := range branches {
		g := gen.branch(days)
		for d := range days {
			r := g.run(d)
			mustAppend(t, s, branch, Run{
				ID:        fmt.Sprintf("%s-%03d", branch, d),
				Time:      time.Date(2026, time.January, 1, 3, 0, 0, 0, time.UTC).AddDate(0, 0, d),
				Commit:    fmt.Sprintf("%040x", rng.Uint64()),
				Candidate: fmt.Sprintf("sha256:%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()),
				Result:    r,
			})
			naive += naiveSize(t, r)
			runs++
			specResults += r.Counts().Executed()
		}
	}
	appendTime := time.Since(start)

	var stored int64
	files := 0
	err = filepath.WalkDir(filepath.Join(s.Root(), "history"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		stored += info.Size()
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	h := mustLoad(t, s, branches[0], 0)
	loadTime := time.Since(start)
	if len(h.Runs) != days {
		t.Fatalf("loaded %d runs of %s, want %d", len(h.Runs), branches[0], days)
	}
	flaky := h.Flakiest(0)

	t.Logf("a year of history: %d branches × %d tests × %d daily runs = %d runs, %d spec results", branchCount, testCount, days, runs, specResults)
	t.Logf("stored: %d bytes (%.2f MB) in %d files: %.0f bytes a run, %.2f bytes a spec result, %.2f MB a branch-year",
		stored, float64(stored)/1e6, files, float64(stored)/float64(runs), float64(stored)/float64(specResults), float64(stored)/1e6/branchCount)
	t.Logf("the same runs as plain JSON records: %d bytes (%.1f MB), %.0f× larger", naive, float64(naive)/1e6, float64(naive)/float64(stored))
	t.Logf("appending %d runs took %v (%v a run); loading a branch-year and its flakiness: %v, %d flaky tests",
		runs, appendTime.Round(time.Millisecond), (appendTime / time.Duration(runs)).Round(time.Microsecond), loadTime.Round(time.Millisecond), len(flaky))

	// Not a timing: a bound that catches a format that stopped being
	// compact.
	if stored > 20<<20 {
		t.Errorf("a year of history takes %d bytes", stored)
	}
}

// naiveSize is one run as a JSON array of records, one per test.
func naiveSize(t *testing.T, r *junit.Result) int64 {
	type rec struct {
		Name       string `json:"name"`
		Classname  string `json:"classname"`
		Status     string `json:"status"`
		DurationMs int64  `json:"durationMs"`
		Message    string `json:"message,omitempty"`
	}
	var recs []rec
	for _, c := range r.Cases {
		if c.Status == junit.Skipped && c.Kind == junit.Spec && leftOut(c.Message) {
			continue
		}
		recs = append(recs, rec{c.Name, c.Classname, string(c.Status), c.Duration.Milliseconds(), c.Message})
	}
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// generator makes runs that look like a conformance job's: most tests pass
// every day with durations that vary around their own typical time; a few
// tests flake; now and then a change breaks a test for some days; one run
// in fifty is lost to the infrastructure (the cluster does not come up, or
// the suite's BeforeSuite fails).
type generator struct {
	rng   *rand.Rand
	names []string
	base  []float64 // typical seconds per test
	flaky []float64 // chance of failing a first attempt
}

func newGenerator(rng *rand.Rand, names []string) *generator {
	g := &generator{rng: rng, names: names, base: make([]float64, len(names)), flaky: make([]float64, len(names))}
	for i := range names {
		// Median 8 s, a long tail to several minutes.
		g.base[i] = math.Min(900, math.Exp(math.Log(8)+rng.NormFloat64()))
		if rng.Float64() < 0.03 {
			g.flaky[i] = 0.02 + rng.Float64()*0.08
		}
	}
	return g
}

type branchGen struct {
	*generator
	broken map[int][2]int // test → [first day, last day] of a breakage
}

func (g *generator) branch(days int) *branchGen {
	b := &branchGen{generator: g, broken: map[int][2]int{}}
	for range 3 {
		first := g.rng.IntN(days)
		b.broken[g.rng.IntN(len(g.names))] = [2]int{first, first + 2 + g.rng.IntN(9)}
	}
	return b
}

func (b *branchGen) run(day int) *junit.Result {
	rng := b.rng
	const suite = "Kubernetes e2e suite"
	step := func(name string, st junit.Status, secs float64) junit.Case {
		c := junit.Case{Name: name, Classname: "kubetest2", Kind: junit.RunnerStep, Status: st, Duration: time.Duration(secs * float64(time.Second))}
		if st == junit.Failed {
			c.FailureType, c.Message = "failed", "exit status 1"
		}
		return c
	}
	r := &junit.Result{}
	switch x := rng.Float64(); {
	case x < 0.01: // the cluster did not come up: no e2e JUnit at all
		r.Cases = append(r.Cases, step("Up", junit.Failed, 300), step("Down", junit.Passed, 11))
		return r
	case x < 0.02: // BeforeSuite failed: every spec left out
		r.Cases = append(r.Cases, step("Up", junit.Passed, 58), step("Test", junit.Failed, 601), step("Down", junit.Passed, 10),
			junit.Case{Name: "[SynchronizedBeforeSuite]", Classname: suite, Kind: junit.SuiteNode, Status: junit.Failed, FailureType: "failed",
				Duration: 600 * time.Second, Message: fmt.Sprintf("[FAILED] Error waiting for all pods to be running and ready: pod coredns-%s-%s on %s is Pending\nIn [SynchronizedBeforeSuite] at: k8s.io/kubernetes/test/e2e/e2e.go:262 @ %s\n",
					b.hash(), b.rand5(), b.ip(), b.stamp(day))})
		return r
	}
	failed := false
	for _, n := range []string{"[SynchronizedBeforeSuite]", "[SynchronizedAfterSuite]", "[ReportAfterSuite] Kubernetes e2e suite report"} {
		r.Cases = append(r.Cases, junit.Case{Name: n, Classname: suite, Kind: junit.SuiteNode, Status: junit.Passed, Duration: time.Duration(rng.IntN(500)) * time.Millisecond})
	}
	for i, name := range b.names {
		c := junit.Case{Name: name, Classname: suite, Kind: junit.Spec, Status: junit.Passed,
			Duration: time.Duration(b.base[i] * (0.85 + 0.3*rng.Float64()) * float64(time.Second))}
		span, isBroken := b.broken[i]
		switch {
		case isBroken && day >= span[0] && day <= span[1]:
			b.fail(&c, i, day)
			failed = true
		case rng.Float64() < b.flaky[i]:
			first := c
			b.fail(&first, i, day)
			if rng.Float64() < 0.1 { // failed on the rerun too
				c = first
				failed = true
			}
			if r.Retried == nil {
				r.Retried = map[junit.ID]junit.Case{}
			}
			r.Retried[c.ID()] = first
		}
		r.Cases = append(r.Cases, c)
	}
	testStatus := junit.Passed
	if failed {
		testStatus = junit.Failed
	}
	r.Cases = append(r.Cases, step("Up", junit.Passed, 55+rng.Float64()*10), step("Test", testStatus, 3600+rng.Float64()*600), step("Down", junit.Passed, 10))
	return r
}

// fail makes c a failure with one of the messages Kubernetes' e2e tests
// typically end with, its volatile parts fresh.
func (b *branchGen) fail(c *junit.Case, test, day int) {
	rng := b.rng
	ns := fmt.Sprintf("%s-%d", strings.Fields(strings.TrimPrefix(c.Name, "[It] "))[1], rng.IntN(10000))
	ns = strings.ToLower(strings.Trim(ns, "[]"))
	at := fmt.Sprintf("In [It] at: k8s.io/kubernetes/test/e2e/framework/pod/wait.go:%d @ %s\n", 400+rng.IntN(60), b.stamp(day))
	c.Status, c.FailureType = junit.Failed, "failed"
	switch (test + day/30) % 4 {
	case 0:
		c.Message = fmt.Sprintf("[FAILED] Told to stop trying after %d.%03ds.\nexpected pod \"pod-%s\" in namespace %q to be running: pod is Pending (uid %s)\n%s",
			300, rng.IntN(1000), b.rand5(), ns, b.uid(), at)
	case 1:
		c.Message = fmt.Sprintf("[FAILED] failed to get pod webserver-pod-%s in namespace %s: Get \"https://%s:6443/api/v1/namespaces/%s/pods/webserver-pod-%s\": dial tcp %s:6443: connect: connection refused\n%s",
			b.rand5(), ns, b.ip(), ns, b.rand5(), b.ip(), at)
	case 2:
		c.FailureType = "timedout"
		c.Message = fmt.Sprintf("[TIMEDOUT] A spec timeout occurred\n%s\nThis is the Progress Report generated when the spec timeout occurred:\n  %s (Spec Runtime: 10m0.%03ds)\n",
			at, strings.TrimPrefix(c.Name, "[It] "), rng.IntN(1000))
	default:
		c.Message = fmt.Sprintf("[FAILED] error waiting for deployment \"test-%s\" status: deployment status: v1.DeploymentStatus{ObservedGeneration:2, Replicas:2, UpdatedReplicas:1, ReadyReplicas:1}; pod test-%s-%s-%s on node %s\n%s",
			ns, ns, b.hash(), b.rand5(), b.ip(), at)
	}
}

const alphabet = "bcdfghjklmnpqrstvwxz2456789"

func (b *generator) randN(n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[b.rng.IntN(len(alphabet))]
	}
	return string(out)
}

func (b *generator) rand5() string { return b.randN(5) }
func (b *generator) hash() string  { return b.randN(10) }
func (b *generator) ip() string    { return fmt.Sprintf("172.18.0.%d", 2+b.rng.IntN(5)) }
func (b *generator) uid() string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", b.rng.Uint32(), b.rng.IntN(1<<16), b.rng.IntN(1<<16), b.rng.IntN(1<<16), b.rng.Uint64()&(1<<48-1))
}

func (b *generator) stamp(day int) string {
	return time.Date(2026, time.January, 1, 3, 0, 0, 0, time.UTC).AddDate(0, 0, day).
		Add(time.Duration(b.rng.IntN(3600*1000)) * time.Millisecond).Format("01/02/06 15:04:05.000")
}
