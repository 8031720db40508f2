package notify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// attemptFunc makes one delivery attempt. It returns how long the receiver
// asked us to wait before the next one (Retry-After), if it said.
type attemptFunc func(ctx context.Context) (retryAfter time.Duration, err error)

// retry runs try until it succeeds, fails in a way retryable says another
// attempt cannot fix, runs out of o.attempts, or ctx ends. Between attempts
// it waits with exponential backoff and jitter, or what the receiver asked
// for, up to MaxRetryAfter. Every channel retries through it, so that all
// give up the same way and their errors read alike: the channel's name,
// ErrDelivery, the attempts made and the delivery id.
func retry(ctx context.Context, o *options, name, event, delivery string, try attemptFunc, retryable func(error) bool) error {
	log := o.log.With("channel", name, "event", event, "delivery", delivery)
	var last error
	attempt := 0
	for {
		attempt++
		retryAfter, err := try(ctx)
		if err == nil {
			log.Debug("notify: receiver accepted", "attempt", attempt)
			return nil
		}
		last = err
		if ctx.Err() != nil || !retryable(err) || attempt >= o.attempts {
			break
		}
		wait := backoff(o.baseDelay, attempt)
		if retryAfter > 0 {
			wait = min(retryAfter, MaxRetryAfter)
		}
		log.Warn("notify: delivery attempt failed, retrying", "attempt", attempt, "of", o.attempts, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			last = fmt.Errorf("%w while waiting to retry; last attempt: %w", ctx.Err(), last)
		case <-t.C:
			continue
		}
		break
	}
	return fmt.Errorf("%s: %w: gave up after %d of %d attempts (delivery %s): %w",
		name, ErrDelivery, attempt, o.attempts, delivery, last)
}

// backoff returns the wait after the given failed attempt: the base delay
// doubled each time, with jitter in its upper half so that many runs hit
// by the same outage do not retry in step.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
