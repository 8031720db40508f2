package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Rate limits. A registry that answers 429 says in Retry-After when to come
// back; go-containerregistry's retry backs off on its own schedule instead
// (1 s, then 3 s), which either asks again too early or waits too long. Waits
// longer than maxRetryAfter are not waited for: the operation fails with
// ErrUnreachable, and the next run tries again.
const (
	maxRateLimitRetries = 3
	maxRetryAfter       = 30 * time.Second
	// defaultRetryAfter is the wait when a 429 has no Retry-After.
	defaultRetryAfter = time.Second
)

// retryBackoff is the schedule server errors and dropped connections are
// retried on by promotion and retention: 0.5 s, then 1.5 s.
var retryBackoff = transport.Backoff{Duration: 500 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}

// retryStatus are the answers worth a retry after a backoff; 429 is left to
// rateLimited, which reads Retry-After.
var retryStatus = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// rateLimited retries a request the registry answered with 429 Too Many
// Requests after the wait its Retry-After header asks for.
type rateLimited struct {
	inner http.RoundTripper
	log   *slog.Logger
}

func (t *rateLimited) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || attempt == maxRateLimitRetries {
			return resp, err
		}
		wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			wait = defaultRetryAfter
		}
		if wait > maxRetryAfter || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		t.log.Info("registry rate limited: waiting as Retry-After asks", "request", req.Method+" "+req.URL.Path,
			"wait", wait, "attempt", attempt+1)
		timer := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		case <-timer.C:
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// parseRetryAfter reads a Retry-After value: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// retryable reports a failure worth another attempt: a connection reset or
// dropped mid-answer, a timeout, or a server error the registry calls
// temporary. A cancelled context is not, and neither is a rate limit, which
// rateLimited has already waited on as long as Retry-After asked.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if te := (*transport.Error)(nil); errors.As(err, &te) {
		return te.StatusCode != http.StatusTooManyRequests && te.Temporary()
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout())
}

// baseTransport is the unauthenticated stack under every promotion and
// retention call: user agent, retry of server errors and dropped
// connections, Retry-After, then the network.
func baseTransport(log *slog.Logger) http.RoundTripper {
	var t http.RoundTripper = &rateLimited{inner: remote.DefaultTransport, log: log}
	t = transport.NewRetry(t, transport.WithRetryBackoff(retryBackoff), transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(retryStatus...))
	return transport.NewUserAgent(t, userAgent)
}
