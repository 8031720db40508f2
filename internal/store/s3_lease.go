package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// LockBranch implements Locker with a lock object,
// locks/branches/<EncodeName(branch)>.json, that holds the holder's record:
//
//   - taking it is a create-only PUT (If-None-Match: *), so of two runs at
//     once exactly one wins;
//   - it is renewed every TTL/3 by a PUT with If-Match on its ETag;
//   - it has expired when the server's clock (the Date of a response) is
//     more than TTL (plus a second for the headers' resolution) past the
//     object's LastModified, both set by the server, so runners' clocks
//     need not agree;
//   - an expired lock is taken over by a PUT with If-Match on the stale
//     ETag, so of two takers exactly one wins;
//   - release is a DELETE with If-Match on the ETag; a server that does not
//     implement conditional DELETE gets a HEAD, a compare and a DELETE,
//     which leaves a window of one round trip in which a run that took the
//     lock over (only possible after this lease expired) loses it.
func (s *S3) LockBranch(ctx context.Context, branch string, h Holder, opts ...LeaseOption) (*Lease, error) {
	return s.lease(ctx, "branch", branch, branchLockKey(branch)+".json", h, opts)
}

// leaseAttempts bounds the loop of create, read, take over: each turn
// means the lock object changed under us.
const leaseAttempts = 5

func (s *S3) lease(ctx context.Context, what, name, key string, h Holder, opts []LeaseOption) (*Lease, error) {
	cfg, err := leaseOptions(opts)
	if err != nil {
		return nil, err
	}
	h = h.withDefaults()
	ok, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	// The nonces this call wrote: a conditional PUT that the SDK retried
	// after it had landed fails its own condition, and the record read back
	// is then ours, not another run's.
	mine := map[string]time.Time{}
	var prev *Holder
	for range leaseAttempts {
		start := time.Now()
		nonce := randomID()
		mine[nonce] = start
		etag, err := s.putLock(ctx, ok, h, cfg.ttl, start, "", nonce)
		if err == nil {
			return s.newLease(ctx, ok, h, nil, cfg.ttl, etag, start), nil
		}
		if !isConflict(err) {
			return nil, s.fail("lock "+what+" "+name+":", ok, err)
		}
		cur, err := s.readLock(ctx, ok)
		if errors.Is(err, ErrNotFound) {
			continue // released in between: try to create it again
		}
		if err != nil {
			return nil, err
		}
		if at, ours := mine[cur.rec.Nonce]; ours {
			return s.newLease(ctx, ok, h, prev, cfg.ttl, cur.etag, at), nil
		}
		if !cur.expired() {
			return nil, &LockedError{Name: name, Holder: cur.rec.Holder, Expires: cur.expires(), what: what}
		}
		start = time.Now()
		nonce = randomID()
		mine[nonce] = start
		stale := cur.rec.Holder
		prev = &stale
		etag, err = s.putLock(ctx, ok, h, cfg.ttl, start, cur.etag, nonce)
		if err == nil {
			return s.newLease(ctx, ok, h, prev, cfg.ttl, etag, start), nil
		}
		if !isConflict(err) && !isNotFound(err) {
			return nil, s.fail("take over stale lock of "+what+" "+name+":", ok, err)
		}
		// Another taker won, or the holder renewed at the last moment: look again.
	}
	return nil, fmt.Errorf("lock %s %s: %s changed %d times while it was being taken; try again", what, name, s.url(ok), leaseAttempts)
}

// putLock writes a lock record: create-only when ifMatch is "", else a
// replace of the object with that ETag.
func (s *S3) putLock(ctx context.Context, objectKey string, h Holder, ttl time.Duration, now time.Time, ifMatch, nonce string) (string, error) {
	b, _ := json.Marshal(lockRecord{Holder: h, TTLSeconds: ttl.Seconds(), Expires: now.Add(ttl).UTC(), Nonce: nonce})
	var im, inm *string
	if ifMatch == "" {
		inm = aws.String("*")
	} else {
		im = aws.String(ifMatch)
	}
	return s.putObject(ctx, objectKey, b, im, inm)
}

// lockState is a lock object as read, with the server's clock at the time.
type lockState struct {
	rec          lockRecord
	etag         string
	lastModified time.Time
	serverNow    time.Time
}

func (l lockState) ttl() time.Duration {
	if l.rec.TTLSeconds > 0 {
		return time.Duration(l.rec.TTLSeconds * float64(time.Second))
	}
	return DefaultLeaseTTL
}

// clockSlack covers the one-second resolution of LastModified and Date:
// each is truncated, so their difference can read up to a second long.
const clockSlack = time.Second

func (l lockState) expires() time.Time { return l.lastModified.Add(l.ttl() + clockSlack) }

func (l lockState) expired() bool { return l.serverNow.After(l.expires()) }

func (s *S3) readLock(ctx context.Context, objectKey string) (lockState, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(objectKey)})
	if err != nil {
		if isNotFound(err) {
			return lockState{}, ErrNotFound
		}
		return lockState{}, s.fail("read lock", objectKey, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return lockState{}, s.fail("read lock", objectKey, err)
	}
	st := lockState{etag: aws.ToString(out.ETag), lastModified: aws.ToTime(out.LastModified), serverNow: time.Now()}
	if t, ok := awsmiddleware.GetServerTime(out.ResultMetadata); ok {
		st.serverNow = t
	}
	// A record that does not decode is still a lock: its holder is unknown
	// and it expires after the default TTL.
	_ = json.Unmarshal(b, &st.rec)
	return st, nil
}

// newLease starts the renewal of a lock object this process holds.
func (s *S3) newLease(ctx context.Context, objectKey string, h Holder, tookOver *Holder, ttl time.Duration, etag string, start time.Time) *Lease {
	var mu sync.Mutex // guards etag and mine between renewal and release
	// mine holds the nonces of renewals since the last one known to have
	// landed: a renewal whose request timed out, or that the SDK retried,
	// may have landed all the same, and then the lock is still this run's
	// under an ETag it never saw.
	mine := map[string]time.Time{}
	renew := func(ctx context.Context) (time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		start := time.Now()
		nonce := randomID()
		mine[nonce] = start
		next, err := s.putLock(ctx, objectKey, h, ttl, start, etag, nonce)
		if err != nil {
			if isConflict(err) || isNotFound(err) {
				why := "another run took it over"
				if cur, rerr := s.readLock(ctx, objectKey); rerr == nil {
					if at, ours := mine[cur.rec.Nonce]; ours {
						etag = cur.etag
						clear(mine)
						return at.Add(ttl), nil
					}
					why = "it was taken over by " + cur.rec.Holder.String()
				} else if errors.Is(rerr, ErrNotFound) {
					why = "its lock object was deleted"
				}
				return time.Time{}, fmt.Errorf("%w: %s: %s", ErrLeaseLost, s.url(objectKey), why)
			}
			return time.Time{}, s.fail("renew lock", objectKey, err)
		}
		etag = next
		clear(mine)
		// The holder judges its own expiry by its own clock, from before
		// the request: never later than the server's view.
		return start.Add(ttl), nil
	}
	release := func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if len(mine) > 0 {
			// The last renewal failed; if it landed, the record is ours
			// under another ETag, and the next run must not wait for it.
			if cur, err := s.readLock(ctx, objectKey); err == nil {
				if _, ours := mine[cur.rec.Nonce]; ours {
					etag = cur.etag
				}
			}
		}
		return s.deleteLock(ctx, objectKey, etag)
	}
	return newLease(ctx, h, tookOver, ttl, start.Add(ttl), renew, release)
}

// deleteLock deletes the lock object if it still has etag.
func (s *S3) deleteLock(ctx context.Context, objectKey, etag string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(objectKey), IfMatch: aws.String(etag)})
	if err == nil || isConflict(err) || isNotFound(err) {
		return nil // released, or no longer ours to release
	}
	if code, status := apiCode(err); code != "NotImplemented" && status != 501 {
		return s.fail("release lock", objectKey, err)
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(objectKey)})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return s.fail("release lock", objectKey, err)
	}
	if aws.ToString(head.ETag) != etag {
		return nil
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(objectKey)}); err != nil {
		return s.fail("release lock", objectKey, err)
	}
	return nil
}
