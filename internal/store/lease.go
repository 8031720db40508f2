package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrLeaseLost means a lease could not be renewed before it expired, or
// another run took it over: the work it protected must stop.
var ErrLeaseLost = errors.New("lease lost")

// DefaultLeaseTTL is how long a lease lives without renewal. A holder renews
// it every third of that, so a live run keeps it for as long as it runs and
// a killed one loses it within this time.
const DefaultLeaseTTL = 2 * time.Minute

// minLeaseTTL keeps leases longer than the one-second resolution of the
// server timestamps an S3 lease is judged by.
const minLeaseTTL = time.Second

// Holder says who holds a lock, for the message the next run prints.
type Holder struct {
	Host   string    `json:"host"`
	PID    int       `json:"pid"`
	RunID  string    `json:"runId"`
	Target string    `json:"target"`
	Since  time.Time `json:"since"`
}

// NewHolder describes this process running target: its host name, pid, a
// random run id when runID is empty, and the time now.
func NewHolder(runID, target string) Holder {
	return Holder{RunID: runID, Target: target}.withDefaults()
}

func (h Holder) withDefaults() Holder {
	if h.Host == "" {
		h.Host, _ = os.Hostname()
	}
	if h.PID == 0 {
		h.PID = os.Getpid()
	}
	if h.RunID == "" {
		h.RunID = randomID()
	}
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	h.Since = h.Since.UTC().Truncate(time.Second)
	return h
}

// String reads "run ID (target T) on host H, pid P, since S", leaving out
// what is unknown.
func (h Holder) String() string {
	var b strings.Builder
	b.WriteString("run")
	if h.RunID != "" {
		b.WriteString(" " + h.RunID)
	}
	if h.Target != "" {
		fmt.Fprintf(&b, " (target %s)", h.Target)
	}
	if h.Host != "" {
		fmt.Fprintf(&b, " on host %s", h.Host)
	}
	if h.PID != 0 {
		fmt.Fprintf(&b, ", pid %d", h.PID)
	}
	if !h.Since.IsZero() {
		fmt.Fprintf(&b, ", since %s", h.Since.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// LockedError is the refusal of a lock another run holds. It matches
// ErrLocked with errors.Is.
type LockedError struct {
	// Name is the branch (or lock) that is held.
	Name string
	// Holder is the run that holds it, as far as its record tells.
	Holder Holder
	// Expires is when the lease runs out unless its holder renews it; zero
	// for a folder lock, which the kernel releases when its process exits.
	Expires time.Time
	// what is "branch" for LockBranch, "lock" for Store.Lock.
	what string
}

func (e *LockedError) Error() string {
	what := e.what
	if what == "" {
		what = "branch"
	}
	msg := fmt.Sprintf("%s %s is locked by %s; wait for it to finish", what, e.Name, e.Holder)
	if e.Expires.IsZero() {
		return msg + " (a folder lock is released the moment its process exits)"
	}
	return msg + fmt.Sprintf(", or if that process is gone the lock expires at %s and the next run takes it over",
		e.Expires.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Locker takes per-branch leases.
type Locker interface {
	// LockBranch takes the branch's lock for h without waiting. When
	// another live run holds it, the error is a *LockedError naming that
	// run. A lock whose holder died is taken over, and the Lease says so in
	// TookOver. The lease is renewed in the background until Release or
	// until ctx ends.
	LockBranch(ctx context.Context, branch string, h Holder, opts ...LeaseOption) (*Lease, error)
}

// LeaseOption changes how a lease is taken.
type LeaseOption func(*leaseConfig) error

type leaseConfig struct {
	ttl time.Duration
}

// WithTTL sets how long the lease lives without renewal (DefaultLeaseTTL
// when not given); it is renewed every third of that. At least a second.
func WithTTL(d time.Duration) LeaseOption {
	return func(c *leaseConfig) error {
		if d < minLeaseTTL {
			return fmt.Errorf("lease TTL %s: must be at least %s", d, minLeaseTTL)
		}
		c.ttl = d
		return nil
	}
}

func leaseOptions(opts []LeaseOption) (leaseConfig, error) {
	c := leaseConfig{ttl: DefaultLeaseTTL}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Lease is a held lock. It is renewed in the background until Release, or
// until the context it was taken with ends (then it expires unless released,
// and Release still releases it), or until renewal fails: then Done is
// closed and Err says why. A holder that cannot renew gives up at its own
// TTL, measured from before its last successful renewal, which is never
// later than the moment a taker may judge the lock expired.
type Lease struct {
	// Holder is who holds this lease: the caller's Holder with its defaults
	// filled in.
	Holder Holder
	// TookOver is the previous holder when this lease replaced the lock of a
	// run that died without releasing it; nil otherwise.
	TookOver *Holder

	ttl     time.Duration
	renew   func(ctx context.Context) (expires time.Time, err error) // nil: nothing to renew
	release func(ctx context.Context) error

	mu       sync.Mutex
	expires  time.Time
	err      error
	released bool
	done     chan struct{}
	stop     context.CancelFunc
	stopped  chan struct{}
}

// newLease starts the renewal loop when renew is not nil.
func newLease(ctx context.Context, h Holder, tookOver *Holder, ttl time.Duration, expires time.Time,
	renew func(context.Context) (time.Time, error), release func(context.Context) error) *Lease {
	l := &Lease{Holder: h, TookOver: tookOver, ttl: ttl, expires: expires, renew: renew, release: release,
		done: make(chan struct{}), stopped: make(chan struct{})}
	rctx, stop := context.WithCancel(ctx)
	l.stop = stop
	if renew == nil {
		close(l.stopped)
		return l
	}
	go l.renewLoop(rctx)
	return l
}

// renewLoop renews every ttl/3. A failed renewal is retried sooner; when
// the lease would expire before the next try, or another run replaced it,
// the lease is lost.
func (l *Lease) renewLoop(ctx context.Context) {
	defer close(l.stopped)
	every := l.ttl / 3
	retry := max(l.ttl/10, 100*time.Millisecond)
	wait := every
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		expires, err := l.renew(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		switch {
		case err == nil:
			l.expires, wait = expires, every
		case errors.Is(err, ErrLeaseLost):
			l.loseLocked(err)
		case time.Now().Add(retry).After(l.expires):
			l.loseLocked(fmt.Errorf("%w: could not renew it before it expired at %s: %w",
				ErrLeaseLost, l.expires.UTC().Format(time.RFC3339), err))
		default:
			wait = retry
		}
		lost := l.err != nil
		l.mu.Unlock()
		if lost {
			return
		}
	}
}

func (l *Lease) loseLocked(err error) {
	if l.err == nil && !l.released {
		l.err = err
		close(l.done)
	}
}

// Done is closed when the lease is lost or released.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err is nil while the lease is held or after Release; once it is lost, an
// error that matches ErrLeaseLost and says why.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Expires is when the lease runs out unless renewed; zero for a folder
// lock, which lives as long as its process.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Context returns a context that is cancelled, with the lease's error as its
// cause, when the lease is lost: work under the lock stops with it.
func (l *Lease) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-l.done:
			if err := l.Err(); err != nil {
				cancel(err)
			}
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// Release stops renewal and gives the lock up. It runs even when ctx is
// already cancelled (a run stopped by a signal still releases its locks),
// bounded by releaseTimeout. Releasing twice does nothing. A lost lease is
// still released where its record is unchanged (a renewal that came too
// late, with nobody taking the lock meanwhile): the release deletes only
// this run's own record, so the next run need not wait out the lease.
func (l *Lease) Release(ctx context.Context) error {
	l.stop()
	<-l.stopped
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	if l.err == nil {
		close(l.done)
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	return l.release(ctx)
}

// releaseTimeout bounds a release that runs after its run was cancelled.
const releaseTimeout = 30 * time.Second

// abandon stops renewal without releasing: what a killed process leaves.
// Tests use it to make a stale lock inside one process.
func (l *Lease) abandon() {
	l.stop()
	<-l.stopped
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
