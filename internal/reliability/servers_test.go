package reliability

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// servers are what every world of the suite shares, as the worlds of one
// company share them: BuildKit, a registry and an S3 server.
type servers struct {
	buildkit string
	// registry is the distribution registry's host, with deletes on.
	registry string
	// builder is the Go toolchain image the builds compile in.
	builder string
	s3      *s3test.Server
}

func startServers(t *testing.T) *servers {
	t.Helper()
	s := &servers{buildkit: needBuildKit(t)}
	s.registry = ocitest.StartDistribution(t, ocitest.DistributionOptions{})
	s.builder = ocitest.PushGoBuilderImage(t, s.registry)
	s.s3 = s3test.Start(t)
	// The S3 server's credentials and endpoint for the checks this process
	// makes; the runs get them through their environment.
	s.s3.Setenv(t)
	return s
}

// gitProxy stands in front of the git server, so a test can act at the
// moment a fetch reaches the server: while it holds the request, the
// client is in the middle of its fetch.
type gitProxy struct {
	url string
	mu  sync.Mutex
	// onFetch, when set, runs for a fetch's object negotiation before it
	// is passed on; it returns whether to pass it on.
	onFetch func() bool
}

func startGitProxy(t *testing.T, target string) *gitProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &gitProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			hook := p.onFetch
			p.mu.Unlock()
			if hook != nil && isFetch(r, body) && !hook() {
				http.Error(w, "held by the test", http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// isFetch reports whether an upload-pack request negotiates objects (a
// protocol v2 fetch command), not an ls-refs.
func isFetch(r *http.Request, body []byte) bool {
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return false
		}
		body, _ = io.ReadAll(zr)
	}
	return bytes.Contains(body, []byte("command=fetch"))
}

func (p *gitProxy) setOnFetch(fn func() bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onFetch = fn
}

// outage is a TCP front for a server that can be taken down and brought
// back on the same address: down, its port refuses connections and the
// connections it carried are cut, as when the server process dies.
type outage struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func startOutage(t *testing.T, target string) *outage {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &outage{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	o.serve(ln)
	t.Cleanup(o.down)
	return o
}

func (o *outage) serve(ln net.Listener) {
	o.mu.Lock()
	o.ln = ln
	o.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go o.pipe(c)
		}
	}()
}

func (o *outage) pipe(c net.Conn) {
	up, err := net.Dial("tcp", o.target)
	if err != nil {
		c.Close()
		return
	}
	o.mu.Lock()
	o.conns[c], o.conns[up] = true, true
	o.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	o.mu.Lock()
	delete(o.conns, c)
	delete(o.conns, up)
	o.mu.Unlock()
}

// down closes the port and cuts every connection.
func (o *outage) down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		o.ln.Close()
		o.ln = nil
	}
	for c := range o.conns {
		c.Close()
	}
}

// up listens on the same address again.
func (o *outage) up() {
	o.t.Helper()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		o.t.Fatalf("outage: listen again on %s: %v", o.addr, err)
	}
	o.serve(ln)
}

// receiver is a webhook endpoint that keeps what it was sent.
type receiver struct {
	url string
	mu  sync.Mutex
	got []delivery
}

// delivery is one POST: its delivery id, event and what it was about.
type delivery struct {
	id, event, branch, commit string
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{id: r.Header.Get("X-Hyperfork-Delivery"), event: m.Event, branch: m.Branch, commit: commitOf(m)})
		rc.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hook"
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}
