package history

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// Runs of two months go in and come out as recorded: outcomes, durations to
// the millisecond, normalised messages, kinds; specs the focus left out are
// not recorded, a spec that skipped itself is.
func TestAppendLoad(t *testing.T) {
	s := folder(t)
	r3 := run("r3", 1, fixture(t, "before-suite-failed.xml"))
	r3.Time = time.Date(2026, time.February, 1, 3, 0, 0, 0, time.UTC)
	mustAppend(t, s, "master",
		run("r2", 16, fixture(t, "failures.xml", "junit_runner-test-failed.xml")),
		run("r1", 15, fixture(t, "passing.xml")), // out of order: runs are kept by time
		r3)

	for _, key := range []string{"history/master/index.json", "history/master/2026-01.json.gz", "history/master/2026-02.json.gz"} {
		if _, _, err := s.GetVersioned(t.Context(), key); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}

	h := mustLoad(t, s, "master", 0)
	if got := ids(h); got != "r1 r2 r3" {
		t.Fatalf("runs %s, want r1 r2 r3", got)
	}
	r1, r2 := &h.Runs[0], &h.Runs[1]
	if r1.Commit != "commit-r1" || r1.Candidate != "sha256:r1" || !r1.Time.Equal(day(15)) || r1.Infra || r2.Infra || !h.Runs[2].Infra {
		t.Errorf("records: %+v / %+v / infra %t", r1, r2, h.Runs[2].Infra)
	}

	ro := testIndex(t, h, rollover)
	if e := r1.Entry(ro); e.Outcome != Passed || e.Duration != 21310*time.Millisecond || e.Cluster != 0 {
		t.Errorf("rollover in r1 = %+v", e)
	}
	e := r2.Entry(ro)
	if e.Outcome != Failed || e.Duration != 305019*time.Millisecond {
		t.Errorf("rollover in r2 = %+v", e)
	}
	if msg := h.Message(e.Cluster); !strings.Contains(msg, `pod "test-rollover-deployment-<hash>-<rand>" in namespace "deployment-<n>" (uid <uid>)`) {
		t.Errorf("rollover's message in r2 = %q", msg)
	}
	if e := r2.Entry(testIndex(t, h, secretsEnv)); e.Outcome != Skipped || h.Message(e.Cluster) != "skipped - Only supported for node OS distro [gci ubuntu] (not debian)" {
		t.Errorf("a spec that skipped itself = %+v %q", e, h.Message(e.Cluster))
	}
	if _, ok := h.TestIndex(junit.ID{Classname: suite, Name: serialGC}); ok {
		t.Errorf("a spec the focus left out is recorded")
	}
	n := testIndex(t, h, "[SynchronizedAfterSuite]")
	if h.Tests[n].Kind != junit.SuiteNode || r1.Entry(n).Outcome != Passed || r1.Entry(n).Duration != 0 {
		t.Errorf("suite node = %+v %+v", h.Tests[n], r1.Entry(n))
	}
	step, ok := h.TestIndex(junit.ID{Classname: "kubetest2", Name: "Test"})
	if !ok || h.Tests[step].Kind != junit.RunnerStep || r2.Entry(step).Outcome != Failed || r1.Entry(step).Outcome != Absent {
		t.Errorf("runner step: %t %+v", ok, h.Tests[step])
	}

	// A limit reads the newest runs only.
	if got := ids(mustLoad(t, s, "master", 2)); got != "r2 r3" {
		t.Errorf("limit 2: %s", got)
	}
	if got := ids(mustLoad(t, s, "master", 1)); got != "r3" {
		t.Errorf("limit 1: %s", got)
	}
}

// The same run appended twice writes nothing the second time; a run with a
// recorded ID replaces it.
func TestAppendSameRun(t *testing.T) {
	s := folder(t)
	r := run("r1", 15, fixture(t, "failures.xml"))
	mustAppend(t, s, "master", r)
	key := monthKey("master", "2026-01")
	_, v1, err := s.GetVersioned(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "master", r)
	if _, v2, _ := s.GetVersioned(t.Context(), key); v2 != v1 {
		t.Error("appending the same run again rewrote the month")
	}
	r.Result = fixture(t, "passing.xml")
	mustAppend(t, s, "master", r)
	h := mustLoad(t, s, "master", 0)
	if len(h.Runs) != 1 || h.Runs[0].Entry(testIndex(t, h, rollover)).Outcome != Passed {
		t.Errorf("%d runs; the replaced run says %v", len(h.Runs), h.Runs[0].Entry(testIndex(t, h, rollover)))
	}
}

// Runners that append to one month at the same time lose nothing, on a
// folder and on the real S3 server.
func TestAppendConcurrent(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	srv.Setenv(t)
	s3s, err := store.Open(t.Context(), "s3://state/hf", store.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	result := fixture(t, "failures.xml")
	for name, s := range map[string]store.VersionedStore{"folder": folder(t), "s3": s3s} {
		t.Run(name, func(t *testing.T) {
			const writers, each = 4, 3
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := range writers {
				wg.Go(func() {
					for k := range each {
						id := fmt.Sprintf("w%d-%d", w, k)
						r := Run{ID: id, Time: day(1).Add(time.Duration(w*each+k) * time.Minute), Result: result}
						if err := Append(context.Background(), s, "release/1.37", r); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			h := mustLoad(t, s, "release/1.37", 0)
			if len(h.Runs) != writers*each {
				t.Fatalf("%d runs, want %d: %s", len(h.Runs), writers*each, ids(h))
			}
			for i := 1; i < len(h.Runs); i++ {
				if h.Runs[i].Time.Before(h.Runs[i-1].Time) {
					t.Errorf("runs out of order: %s", ids(h))
				}
			}
			// A branch name with a slash is one key segment.
			if _, _, err := s.GetVersioned(t.Context(), "history/release_2f1.37/index.json"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadNoHistory(t *testing.T) {
	h := mustLoad(t, folder(t), "master", 10)
	if len(h.Runs) != 0 || len(h.Tests) != 0 || h.Branch != "master" {
		t.Errorf("%+v", h)
	}
}

// A damaged month is an error that names it and says what to do; so is a
// month written by a newer format.
func TestLoadDamaged(t *testing.T) {
	s := folder(t)
	mustAppend(t, s, "master", run("r1", 15, fixture(t, "passing.xml")))
	key := monthKey("master", "2026-01")
	put := func(b []byte) {
		_, v, err := s.GetVersioned(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutIf(t.Context(), key, b, v); err != nil {
			t.Fatal(err)
		}
	}
	put([]byte("not gzip"))
	_, err := Load(t.Context(), s, "master", 0)
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "move it aside") || !errors.Is(err, errDamaged) {
		t.Errorf("Load of a damaged month: %v", err)
	}
	if err := Append(t.Context(), s, "master", run("r2", 16, fixture(t, "passing.xml"))); err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("Append to a damaged month: %v", err)
	}

	put(gz(t, `{"v":2,"branch":"master","month":"2026-01"}`))
	if _, err := Load(t.Context(), s, "master", 0); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("Load of a newer format: %v", err)
	}
	put(gz(t, `{"v":1,"classes":["s"],"tests":[{"c":0,"n":"a"}],"clusters":[""],"runs":[{"id":"x","t":"2026-01-01T00:00:00Z","s":"PP"}]}`))
	if _, err := Load(t.Context(), s, "master", 0); !errors.Is(err, errDamaged) {
		t.Errorf("Load of a run with more results than tests: %v", err)
	}
}

func gz(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ids(h *History) string {
	var out []string
	for _, r := range h.Runs {
		out = append(out, r.ID)
	}
	return strings.Join(out, " ")
}
