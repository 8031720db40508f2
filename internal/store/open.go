package store

import (
	"context"
	"fmt"
	"strings"
)

// Open opens the store at location: "s3://bucket/prefix" is an S3 store
// configured by the SDK's standard sources and opts; anything else without a
// "scheme://" is a folder, created if missing. opts does not apply to a
// folder.
func Open(ctx context.Context, location string, opts S3Options) (Backend, error) {
	if location == "" {
		return nil, fmt.Errorf("no store location: give a folder or s3://bucket/prefix")
	}
	if strings.HasPrefix(location, "s3://") {
		return OpenS3(ctx, location, opts)
	}
	if i := strings.Index(location, "://"); i > 0 && !strings.ContainsAny(location[:i], `/\`) {
		return nil, fmt.Errorf("store %s://…: only a folder or s3://bucket/prefix is supported", location[:i])
	}
	return NewDir(location)
}

// IsS3 reports whether location names an S3 store rather than a folder.
func IsS3(location string) bool { return strings.HasPrefix(location, "s3://") }
