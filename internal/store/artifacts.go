package store

import (
	"context"
	"io"
	"time"
)

// Object is one artifact in a listing.
type Object struct {
	// Key is the artifact's key in its store.
	Key string
	// Size is its length in bytes.
	Size int64
	// Time is when the store recorded it: S3's LastModified, or the time a
	// folder store wrote in its record (a copied file keeps it).
	Time time.Time
}

// Artifacts keeps files too big to hold in memory (build and test logs,
// JUnit, server tarballs) under slash-separated keys.
type Artifacts interface {
	// PutStream stores what r yields under key, reading it once, in parts,
	// never whole into memory. The artifact appears whole or not at all: a
	// failed upload leaves nothing visible under key (and an old artifact
	// under key stays as it was).
	PutStream(ctx context.Context, key string, r io.Reader) (Object, error)
	// Open returns the artifact under key as a stream, or ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the artifacts whose keys start with prefix, by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the artifact under key; a missing key is no error.
	Delete(ctx context.Context, key string) error
	// Link is a URL a person can open to read the artifact: a presigned
	// GET valid for ttl for S3 (ttl <= 0: DefaultLinkTTL), a file:// URL
	// for a folder.
	Link(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// DefaultLinkTTL is how long a presigned link stays valid: a week, the
// longest SigV4 allows, so a link in the morning's notification still works.
// Temporary credentials (web identity, SSO) end a link sooner: when they do.
const DefaultLinkTTL = 7 * 24 * time.Hour

// Backend is what a store location gives: documents with compare-and-swap,
// leases, and artifacts. Both Dir and S3 are one.
type Backend interface {
	Store
	VersionedStore
	Locker
	Artifacts
}

var (
	_ Backend = (*Dir)(nil)
	_ Backend = (*S3)(nil)
)
