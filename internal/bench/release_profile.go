package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/store"
)

// ReleaseProfile is where one no-op release with state in S3 spent its
// time, told by the S3 requests it made, which went through a recording
// proxy. Times are from the start of the pipeline.Main call.
type ReleaseProfile struct {
	// Total is the duration of the call.
	Total time.Duration
	// Requests are the S3 requests in the order they started.
	Requests []ReleaseRequest
	// Phases are the requests merged into runs of the same kind, with the
	// stretches in which no S3 request was in flight between them.
	Phases []ReleasePhase
	// Kinds are the requests added up by kind, in the order each kind
	// first appeared.
	Kinds []ReleaseKind
	// OpenS3 is store.Open of the S3 state store alone, a few times: the
	// AWS SDK's configuration and credentials, before any request. A run
	// opens two stores, state and logs.
	OpenS3 Samples
}

// ReleaseRequest is one S3 request of the profiled release.
type ReleaseRequest struct {
	// What is the request's kind for people, e.g. "lease take".
	What   string
	Method string
	// Key is the object key below the bucket.
	Key        string
	Start, End time.Duration
	Status     int
}

// ReleasePhase is a run of S3 requests of one kind, or, with What empty, a
// stretch with no S3 request in flight: hyperfork's own work, git, or the
// S3 client's.
type ReleasePhase struct {
	What       string
	Start, End time.Duration
	Requests   int
}

// ReleaseKind is every S3 request of one kind added up; Busy is the sum of
// their durations, which overlap when branches ran at once.
type ReleaseKind struct {
	What     string
	Requests int
	Busy     time.Duration
}

// phaseGap is the shortest stretch without a request that ends a phase:
// below it, the gap between two requests of one kind is the S3 client's own
// time between them and belongs to the phase.
const phaseGap = 2 * time.Millisecond

// openS3Rounds is how often the profile opens the S3 store alone.
const openS3Rounds = 5

// profile runs one more no-op release with state in S3, in-process, with
// the SDK pointed at a recording proxy in front of the server.
func (rw *releaseWorld) profile(ctx context.Context) (*ReleaseProfile, error) {
	rec, err := newS3Recorder(rw.s3.endpoint, releaseBucket)
	if err != nil {
		return nil, err
	}
	defer rec.close()
	restore := setProcessEnv(rw.s3.env(rec.srv.URL))
	defer restore()
	rec.reset()
	zero := time.Now()
	rep, start, d, err := rw.inProcess(ctx, storeS3)
	if err != nil {
		return nil, fmt.Errorf("profiled release: %w", err)
	}
	if err := rw.checkNoop(rep); err != nil {
		return nil, fmt.Errorf("profiled release: %w", err)
	}
	reqs := rec.requests()
	if len(reqs) == 0 {
		return nil, fmt.Errorf("profiled release: no S3 request reached the recording proxy at %s: the AWS SDK did not read AWS_ENDPOINT_URL_S3", rec.srv.URL)
	}
	shift := start.Sub(zero)
	p := &ReleaseProfile{Total: d}
	for _, r := range reqs {
		p.Requests = append(p.Requests, ReleaseRequest{What: requestKind(r.Method, r.Key), Method: r.Method, Key: r.Key,
			Start: r.Start - shift, End: r.End - shift, Status: r.Status})
	}
	slices.SortStableFunc(p.Requests, func(a, b ReleaseRequest) int { return int(a.Start - b.Start) })
	p.Phases, p.Kinds = phases(p.Requests, d)
	for range openS3Rounds {
		start := time.Now()
		if _, err := store.Open(ctx, "s3://"+releaseBucket+"/state", store.S3Options{}); err != nil {
			return nil, fmt.Errorf("open the S3 state store: %w", err)
		}
		p.OpenS3 = append(p.OpenS3, time.Since(start))
	}
	return p, nil
}

// requestKind names what a state-store request is for, from its method and
// key (see internal/store: locks/, branches/, reports/).
func requestKind(method, key string) string {
	_, rest, _ := strings.Cut(key, "/") // below the store's prefix
	switch {
	case strings.HasPrefix(rest, "locks/") && method == "PUT":
		return "lease take (PUT If-None-Match)"
	case strings.HasPrefix(rest, "locks/") && method == "DELETE":
		return "lease release (DELETE If-Match)"
	case strings.HasPrefix(rest, "locks/"):
		return "lease read (" + method + ")"
	case strings.HasPrefix(rest, "branches/") && (method == "GET" || method == "HEAD"):
		return "branch record read (" + method + ")"
	case strings.HasPrefix(rest, "branches/") && method == "PUT":
		return "branch record write (PUT If-Match)"
	case strings.HasPrefix(rest, "reports/branches/") && method == "PUT":
		return "branch report write (PUT)"
	case strings.HasPrefix(rest, "reports/") && method == "PUT":
		return "report write (PUT)"
	}
	return method + " " + key
}

// phases merges requests (sorted by start) into runs of one kind and the
// stretches between them, and adds them up by kind.
func phases(reqs []ReleaseRequest, total time.Duration) ([]ReleasePhase, []ReleaseKind) {
	var out []ReleasePhase
	var kinds []ReleaseKind
	idle := func(from, to time.Duration) {
		if to > from {
			out = append(out, ReleasePhase{Start: from, End: to})
		}
	}
	cur := -1             // index in out of the phase the last request joined
	var end time.Duration // the latest end so far
	for _, r := range reqs {
		i := slices.IndexFunc(kinds, func(k ReleaseKind) bool { return k.What == r.What })
		if i < 0 {
			kinds = append(kinds, ReleaseKind{What: r.What})
			i = len(kinds) - 1
		}
		kinds[i].Requests++
		kinds[i].Busy += r.End - r.Start
		if cur >= 0 && out[cur].What == r.What && r.Start-end < phaseGap {
			out[cur].End, out[cur].Requests = max(out[cur].End, r.End), out[cur].Requests+1
		} else {
			if cur < 0 {
				idle(0, r.Start)
			} else if r.Start-end >= phaseGap {
				idle(end, r.Start)
			}
			out = append(out, ReleasePhase{What: r.What, Start: r.Start, End: r.End, Requests: 1})
			cur = len(out) - 1
		}
		end = max(end, r.End)
	}
	idle(end, total)
	return out, kinds
}
