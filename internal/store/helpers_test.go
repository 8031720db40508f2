package store

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// s3Store opens a store on srv's bucket through the SDK's standard
// sources: the server's AWS_* variables are set for the test.
func s3Store(t *testing.T, srv *s3test.Server, bucket string, extra ...func(*s3.Options)) *S3 {
	t.Helper()
	srv.Setenv(t)
	st, err := openS3(context.Background(), bucket, "hf/state", S3Options{PartSize: 5 << 20}, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// backends gives each test a folder store and an S3 store on a fresh bucket.
func backends(t *testing.T) map[string]Backend {
	t.Helper()
	dir, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	return map[string]Backend{"folder": dir, "s3": s3Store(t, srv, "state")}
}

// doerFunc lets a test see each request the SDK sends to the real server.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// interceptRequests wraps the client's HTTP client with fn.
func interceptRequests(fn func(r *http.Request, next s3.HTTPClient) (*http.Response, error)) func(*s3.Options) {
	return func(o *s3.Options) {
		next := o.HTTPClient
		o.HTTPClient = doerFunc(func(r *http.Request) (*http.Response, error) { return fn(r, next) })
	}
}
