package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrConflict means a conditional write lost a race: the key changed (or
// came into existence) since it was read. Read it again and re-apply.
var ErrConflict = errors.New("changed by another writer")

// VersionedStore is a store whose writes can be made conditional on what
// was read, so two runners never lose each other's records.
type VersionedStore interface {
	// GetVersioned returns the bytes under key and their version, or
	// ErrNotFound.
	GetVersioned(ctx context.Context, key string) (data []byte, version string, err error)
	// PutIf writes data under key if the key's version is still ifVersion;
	// ifVersion "" means the key must not exist yet. It returns the new
	// version, or ErrConflict when the condition failed.
	PutIf(ctx context.Context, key string, data []byte, ifVersion string) (version string, err error)
}

// updateAttempts bounds the re-reads of Update: past this many lost races
// something is writing the key in a loop.
const updateAttempts = 10

// Update reads key, calls fn with its bytes (nil when the key is missing)
// and writes what fn returns if nobody wrote the key meanwhile; when someone
// did, it reads again and calls fn again, a bounded number of times. fn
// must therefore be a function of old alone. When fn returns old unchanged
// nothing is written.
func Update(ctx context.Context, s VersionedStore, key string, fn func(old []byte) ([]byte, error)) error {
	var lastErr error
	for attempt := range updateAttempts {
		old, version, err := s.GetVersioned(ctx, key)
		if errors.Is(err, ErrNotFound) {
			old, version = nil, ""
		} else if err != nil {
			return err
		}
		data, err := fn(old)
		if err != nil {
			return err
		}
		if version != "" && bytes.Equal(data, old) {
			return nil
		}
		_, err = s.PutIf(ctx, key, data, version)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		lastErr = err
		// A retried request whose first try did land reads as a conflict
		// with our own write; re-applying fn would apply it twice.
		if cur, _, gerr := s.GetVersioned(ctx, key); gerr == nil && bytes.Equal(cur, data) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff(attempt)):
		}
	}
	return fmt.Errorf("update %s: %d writers in a row got there first: %w; try again", key, updateAttempts, lastErr)
}

// backoff is a short jittered wait, so racing writers spread out.
func backoff(attempt int) time.Duration {
	d := time.Duration(10<<min(attempt, 6)) * time.Millisecond
	return d/2 + rand.N(d/2+1)
}

// UpdateJSON is Update for a JSON document: fn changes *v in place; found
// is false when the key held nothing, and v is then the zero value.
func UpdateJSON[T any](ctx context.Context, s VersionedStore, key string, fn func(v *T, found bool) error) error {
	return Update(ctx, s, key, func(old []byte) ([]byte, error) {
		var v T
		if old != nil {
			if err := json.Unmarshal(old, &v); err != nil {
				return nil, fmt.Errorf("decode state %s: %w; delete it to start afresh", key, err)
			}
		}
		if err := fn(&v, old != nil); err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode state %s: %w", key, err)
		}
		b = append(b, '\n')
		if old != nil && bytes.Equal(b, old) {
			return old, nil
		}
		return b, nil
	})
}
