package ocitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Faults injects into a registry's handler what a real registry does only
// on its own terms: rate limiting (429 with Retry-After), a server error,
// refusing to delete tags (405 UNSUPPORTED), a connection dropped before or
// in the middle of an answer. Every request no Fault selects reaches the
// registry untouched. Use it through StartRegistryWith or Proxy.
type Faults struct {
	mu     sync.Mutex
	faults []*Fault
	hits   []string
}

// Fault is one misbehaviour.
type Fault struct {
	// Method selects requests by method; "" selects every method.
	Method string
	// URL is a regular expression matched against the request's path and
	// query, such as `/tags/list\?.*last=` for every page but the first.
	URL string
	// Skip lets this many selected requests through before the fault
	// starts; Times is how many it answers, 0 meaning all that follow.
	Skip, Times int

	// Status answers with this HTTP status and an OCI error body of Code
	// (default: a code that fits the status).
	Status int
	Code   string
	// RetryAfter is sent as the Retry-After header, such as "1".
	RetryAfter string
	// Drop closes the connection without answering.
	Drop bool
	// Truncate lets the registry answer, then sends its status, headers
	// and half of its body, and closes the connection.
	Truncate bool

	re       *regexp.Regexp
	selected int
	injected int
}

// TagDeleteRefused is the fault of a registry that deletes manifests by
// digest only: DELETE /v2/<name>/manifests/<tag> is answered 405
// UNSUPPORTED, as distribution answers every delete when deletes are off.
func TagDeleteRefused() Fault {
	return Fault{Method: http.MethodDelete, URL: `/manifests/[A-Za-z0-9_][A-Za-z0-9_.-]*$`, Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED"}
}

// RateLimited answers the next times requests whose URL matches url with
// 429 TOOMANYREQUESTS and Retry-After: after (whole seconds).
func RateLimited(url string, times int, after time.Duration) Fault {
	return Fault{URL: url, Times: times, Status: http.StatusTooManyRequests, Code: "TOOMANYREQUESTS",
		RetryAfter: strconv.Itoa(int(after.Seconds()))}
}

// Add adds a fault, checked before the ones added earlier are.
func (f *Faults) Add(t testing.TB, fl Fault) {
	t.Helper()
	re, err := regexp.Compile(fl.URL)
	if err != nil {
		t.Fatalf("ocitest: fault URL %q: %v", fl.URL, err)
	}
	fl.re = re
	f.mu.Lock()
	f.faults = append([]*Fault{&fl}, f.faults...)
	f.mu.Unlock()
}

// Clear removes every fault; what was injected stays counted.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// Injected returns the requests a fault answered, as "METHOD path?query".
func (f *Faults) Injected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hits)
}

// pick returns the fault for req, if any, and counts it.
func (f *Faults) pick(req *http.Request) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.faults {
		if fl.Method != "" && fl.Method != req.Method || !fl.re.MatchString(req.URL.RequestURI()) {
			continue
		}
		fl.selected++
		if fl.selected <= fl.Skip || (fl.Times > 0 && fl.injected >= fl.Times) {
			continue
		}
		fl.injected++
		f.hits = append(f.hits, req.Method+" "+req.URL.RequestURI())
		return fl
	}
	return nil
}

// Wrap returns h with the faults injected.
func (f *Faults) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fl := f.pick(req)
		switch {
		case fl == nil:
			h.ServeHTTP(w, req)
		case fl.Drop:
			hangUp(w)
		case fl.Truncate:
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			truncate(w, rec)
		default:
			if fl.RetryAfter != "" {
				w.Header().Set("Retry-After", fl.RetryAfter)
			}
			ociError(w, fl.Status, fl.Code)
		}
	})
}

// hangUp closes the connection without a word.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("ocitest: the server does not let a handler drop its connection")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

// truncate sends rec's status and headers, announcing the whole body, and
// half of it, then closes the connection: the client sees the answer cut
// short.
func truncate(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("ocitest: the server does not let a handler drop its connection")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	body := rec.Body.Bytes()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
	rec.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_ = rec.Header().Write(buf)
	buf.WriteString("\r\n")
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
}

// ociError answers with status and an OCI distribution error body.
func ociError(w http.ResponseWriter, status int, code string) {
	if code == "" {
		switch {
		case status == http.StatusTooManyRequests:
			code = "TOOMANYREQUESTS"
		case status == http.StatusMethodNotAllowed:
			code = "UNSUPPORTED"
		case status == http.StatusNotFound:
			code = "MANIFEST_UNKNOWN"
		default:
			code = "UNKNOWN"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": "injected by ocitest"}}})
}

var tagsListRE = regexp.MustCompile(`^/v2/(.+)/tags/list$`)

// Paginate returns a wrapper that answers tag listings n tags at a time,
// with a Link header to the next page (?n=…&last=…), as Docker Hub and GHCR
// do unasked and distribution does when given n. go-containerregistry's
// registry never sends a Link header.
func Paginate(n int) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			m := tagsListRE.FindStringSubmatch(req.URL.Path)
			if req.Method != http.MethodGet || m == nil {
				h.ServeHTTP(w, req)
				return
			}
			q := req.URL.Query()
			last := q.Get("last")
			whole := req.Clone(req.Context())
			whole.URL = &url.URL{Path: req.URL.Path}
			whole.RequestURI = req.URL.Path
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, whole)
			var list struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			}
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
				copyRecorded(w, rec)
				return
			}
			slices.Sort(list.Tags)
			i := 0
			if last != "" {
				i, _ = slices.BinarySearch(list.Tags, last)
				if i < len(list.Tags) && list.Tags[i] == last {
					i++
				}
			}
			page := list.Tags[i:]
			if len(page) > n {
				page = page[:n]
				next := url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1]}}
				w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"name": list.Name, "tags": page})
		})
	}
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Proxy starts a reverse proxy on loopback in front of the registry at host,
// with its handler wrapped by wrap, and returns the proxy's host: the way to
// inject faults in front of a registry that runs as its own process.
func Proxy(t testing.TB, host string, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: host}
	rp := httputil.NewSingleHostReverseProxy(target)
	// Error pages of the proxy itself would hide what happened.
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		ociError(w, http.StatusBadGateway, "UNKNOWN")
		t.Logf("ocitest proxy: %v", err)
	}
	var h http.Handler = rp
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
