package pipeline_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// dyingS3 sits in front of the real S3 server and, once armed, lets the
// first upload of a test log send a little of its body, then drops the
// connection and answers nothing more, as a server that dies mid-upload;
// a real server cannot be stopped at exactly that byte on demand.
type dyingS3 struct {
	armed, down atomic.Bool
	proxy       *httputil.ReverseProxy
}

func (d *dyingS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.armed.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/logs/test/") {
		d.down.Store(true)
		io.CopyN(io.Discard, r.Body, 512)
	}
	if d.down.Load() {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	d.proxy.ServeHTTP(w, r)
}

// TestTestLogsSurviveS3DyingMidUpload: S3 dies while a run's test log
// uploads. The run fails with exit 1 and says so; the runs kept before are
// all still there, byte for byte in the listing (nothing half-pruned), and
// nothing is recorded, so the next run, with S3 back, tests again and
// converges on logs.keep.
func TestTestLogsSurviveS3DyingMidUpload(t *testing.T) {
	addr := needBuildKit(t)
	srv := s3test.Start(t)
	srv.MakeBucket("hyperfork")
	srv.Setenv(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	fault := &dyingS3{proxy: httputil.NewSingleHostReverseProxy(target)}
	front := &http.Server{Handler: fault}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(ln)
	t.Cleanup(func() { front.Close() })
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://"+ln.Addr().String())

	w, _ := buildWorld(t, addr)
	w.store = "s3://hyperfork/state"
	// The dying run cannot release its lease; a short one expires soon.
	w.lease = "4s"
	w.yaml = strings.Replace(w.yaml, "platforms: [linux/amd64, linux/arm64]", "platforms: [linux/amd64]", 1)
	w.yaml += "logs:\n  keep: 1\n"
	// Listings straight from the real server, past the proxy.
	direct, err := store.Open(context.Background(), "s3://hyperfork/state/logs", store.S3Options{Endpoint: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		t.Helper()
		objs, err := direct.List(context.Background(), "test/master/")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.Key)
		}
		return out
	}

	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	if code != 0 || w.branch(rep, "master").Test.Status != report.TestPassed {
		t.Fatalf("first release: exit %d\n%s", code, out)
	}
	before := listing()
	if len(before) == 0 {
		t.Fatal("the first run kept no test log")
	}

	w.upstreamCommit("master", "upstream: alpha change", map[string]string{"cmd/alpha/more.go": "package main\n\nconst more = 1\n"})
	fault.armed.Store(true)
	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master")
	if !fault.down.Load() {
		t.Fatalf("no test log upload reached S3\n%s", out)
	}
	m := w.branch(rep, "master")
	if code != report.ExitFailed || m.Test == nil || m.Test.Status != report.TestError || !strings.Contains(m.Test.Reason, "the tests passed, but their result could not be recorded") ||
		!strings.Contains(m.Test.Reason, "cannot reach the S3 endpoint") {
		t.Fatalf("release with S3 dying mid-upload: exit %d, want 1; test %+v, error %q\n%s", code, m.Test, m.Error, out)
	}
	if m.Publish != nil && m.Publish.Status == report.PublishPublished {
		t.Fatalf("published while its test record failed: %+v", m.Publish)
	}
	t.Logf("the run while S3 died:\n%s", grepLines(out, "master:"))
	if after := listing(); !slices.Equal(after, before) {
		t.Fatalf("the kept logs changed while S3 was down:\nbefore %q\nafter  %q", before, after)
	}

	// S3 is back: once the dead run's lease expired, the candidate is
	// tested again (nothing was recorded) and only its run is kept.
	fault.armed.Store(false)
	fault.down.Store(false)
	time.Sleep(5 * time.Second)
	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master")
	m = w.branch(rep, "master")
	if code != 0 || m.Test.Status != report.TestPassed || strings.Contains(m.Test.Reason, "was tested") {
		t.Fatalf("release with S3 back: exit %d, test %+v\n%s", code, m.Test, out)
	}
	after := listing()
	if len(after) == 0 || !strings.Contains(after[0], "-"+m.Build.Commit[:12]+"-passed/") || slices.ContainsFunc(after, func(k string) bool { return slices.Contains(before, k) }) {
		t.Fatalf("after S3 came back the kept logs are %q (before %q), want only the current candidate's", after, before)
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
