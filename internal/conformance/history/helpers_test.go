package history

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
	"github.com/hyperfork/hyperfork/internal/store"
)

// Spec names of the junit package's recorded fixtures.
const (
	suite         = "Kubernetes e2e suite"
	basicEndpoint = "[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]"
	rollover      = "[It] [sig-apps] Deployment deployment should support rollover [Conformance]"
	podsSubmitted = "[It] [sig-node] Pods should be submitted and removed [Conformance] [NodeConformance]"
	secretsEnv    = "[It] [sig-node] Secrets should be consumable from pods in env vars [Conformance] [NodeConformance]"
	serialGC      = "[It] [sig-api-machinery] Garbage collector should keep the rc around until all its pods are deleted if the deleteOptions says so [Conformance] [Serial]"
)

// fixture parses the junit package's recorded fixtures, merged in order.
func fixture(t testing.TB, files ...string) *junit.Result {
	t.Helper()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join("..", "junit", "testdata", f))
	}
	r, err := junit.ParseFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rerun is the pass that reran the given specs.
func rerun(statuses map[string]junit.Status) *junit.Result {
	r := &junit.Result{}
	r.Cases = append(r.Cases, junit.Case{Name: "[SynchronizedBeforeSuite]", Classname: suite, Status: junit.Passed, Kind: junit.SuiteNode})
	for name, s := range statuses {
		c := junit.Case{Name: name, Classname: suite, Status: s, Kind: junit.Spec, Duration: 3 * time.Second, File: "junit_retry.xml"}
		if s == junit.Failed {
			c.FailureType, c.Message = "failed", "[FAILED] again at 10.0.0.9:443"
		}
		r.Cases = append(r.Cases, c)
	}
	return r
}

func day(d int) time.Time { return time.Date(2026, time.January, d, 3, 0, 0, 0, time.UTC) }

func run(id string, d int, r *junit.Result) Run {
	return Run{ID: id, Time: day(d), Commit: "commit-" + id, Candidate: "sha256:" + id, Result: r}
}

func folder(t testing.TB) *store.Dir {
	t.Helper()
	d, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustAppend(t testing.TB, s store.VersionedStore, branch string, runs ...Run) {
	t.Helper()
	for _, r := range runs {
		if err := Append(t.Context(), s, branch, r); err != nil {
			t.Fatal(err)
		}
	}
}

func mustLoad(t testing.TB, s store.VersionedStore, branch string, limit int) *History {
	t.Helper()
	h, err := Load(t.Context(), s, branch, limit)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func testIndex(t testing.TB, h *History, name string) int {
	t.Helper()
	i, ok := h.TestIndex(junit.ID{Classname: suite, Name: name})
	if !ok {
		t.Fatalf("no test %q in the history", name)
	}
	return i
}

// synthetic builds a history of specs A, B, … from one string per run: a
// letter per spec, P passed, F failed, K failed then passed on the rerun
// (a flake), S skipped, - absent; a leading '!' makes the run infra.
func synthetic(runs ...string) *History {
	h := &History{Branch: "master", Clusters: []string{""}, index: map[junit.ID]int{}}
	for i, r := range runs {
		rec := Record{ID: fmt.Sprintf("r%d", i+1), Time: day(1).Add(time.Duration(i) * time.Hour), Commit: fmt.Sprintf("c%d", i+1)}
		if strings.HasPrefix(r, "!") {
			rec.Infra, r = true, r[1:]
		}
		for len(h.Tests) < len(r) {
			id := junit.ID{Classname: suite, Name: string(rune('A' + len(h.Tests)))}
			h.index[id] = len(h.Tests)
			h.Tests = append(h.Tests, Test{ID: id, Kind: junit.Spec})
		}
		rec.Entries = make([]Entry, len(r))
		for t, c := range r {
			switch c {
			case 'P':
				rec.Entries[t].Outcome = Passed
			case 'F':
				rec.Entries[t].Outcome = Failed
			case 'K':
				rec.Entries[t] = Entry{Outcome: Passed, Retry: Failed}
			case 'S':
				rec.Entries[t].Outcome = Skipped
			}
		}
		h.Runs = append(h.Runs, rec)
	}
	return h
}
