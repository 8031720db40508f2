package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

func TestParseS3URLAndOpen(t *testing.T) {
	for _, tc := range []struct{ in, bucket, prefix string }{
		{"s3://bucket", "bucket", ""},
		{"s3://bucket/", "bucket", ""},
		{"s3://my.bucket-1/team/hyperfork/", "my.bucket-1", "team/hyperfork"},
		{"s3://bucket//a/../b", "bucket", "b"},
	} {
		b, p, err := ParseS3URL(tc.in)
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseS3URL(%q) = %q %q %v, want %q %q", tc.in, b, p, err, tc.bucket, tc.prefix)
		}
	}
	for _, bad := range []string{"s3://", "s3://B", "s3://ab", "s3://AKIAEXAMPLE:hunter2secret@bucket/p", "s3://bucket/p?token=hunter2secret", "/tmp/x"} {
		_, _, err := ParseS3URL(bad)
		if err == nil {
			t.Errorf("ParseS3URL(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("ParseS3URL(%q) error shows the secret: %v", bad, err)
		}
	}
	ctx := context.Background()
	if _, err := Open(ctx, "gs://bucket/x", S3Options{}); err == nil {
		t.Error("Open accepted gs://")
	}
	if _, err := Open(ctx, "", S3Options{}); err == nil {
		t.Error("Open accepted an empty location")
	}
	b, err := Open(ctx, t.TempDir()+"/state", S3Options{})
	if _, ok := b.(*Dir); err != nil || !ok {
		t.Errorf("Open(folder) = %T, %v", b, err)
	}
	srv := s3test.Start(t)
	srv.Setenv(t)
	b, err = Open(ctx, "s3://any-bucket/team/x", S3Options{})
	if s, ok := b.(*S3); err != nil || !ok || s.Bucket() != "any-bucket" || s.Prefix() != "team/x" || s.String() != "s3://any-bucket/team/x" {
		t.Errorf("Open(s3) = %v, %v", b, err)
	}
	if _, err := Open(ctx, "s3://bucket/x", S3Options{Endpoint: "http://AKIA:hunter2secret@127.0.0.1:9"}); err == nil || strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("an endpoint with credentials: %v", err)
	}
}

func TestPathStyle(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		endpoint string
		force    *bool
		want     bool
	}{
		{"", nil, false},
		{"https://s3.eu-west-1.amazonaws.com", nil, false},
		{"http://127.0.0.1:7070", nil, true},
		{"http://[::1]:7070", nil, true},
		{"http://localhost:9000", nil, true},
		{"http://minio:9000", nil, true},
		{"https://storage.example.com", nil, false},
		{"https://storage.example.com", &yes, true},
		{"http://127.0.0.1:7070", &no, false},
	} {
		if got := pathStyle(tc.force, tc.endpoint); got != tc.want {
			t.Errorf("pathStyle(%v, %q) = %v, want %v", tc.force, tc.endpoint, got, tc.want)
		}
	}
}

// The endpoint option wins over AWS_ENDPOINT_URL_S3.
func TestS3EndpointOptionOverridesEnvironment(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	srv.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9") // nothing listens there
	st, err := OpenS3(ctx, "s3://state/p", S3Options{Endpoint: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// Each failure names the bucket and key, says what to do, and shows no secret.
func TestS3ErrorsSayWhatToDo(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	good := s3Store(t, srv, "state")

	noBucket := s3Store(t, srv, "no-such-bucket")
	err := noBucket.Put(ctx, "branches/master/state.json", []byte("{}"))
	wantS3Error(t, "missing bucket", err, "no-such-bucket", "hf/state/branches/master/state.json", "does not exist", false)
	wantS3Error(t, "missing bucket (Check)", noBucket.Check(ctx), "no-such-bucket", "", "does not exist", false)

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-hunter2")
	badKey, err := openS3(ctx, "state", "hf/state", S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = badKey.Get(ctx, "branches/master/state.json")
	wantS3Error(t, "wrong secret", err, "state", "hf/state/branches/master/state.json", "refused the credentials", false)
	if strings.Contains(err.Error(), "wrong-secret-hunter2") || strings.Contains(err.Error(), srv.SecretKey) {
		t.Errorf("the error shows a secret: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, err := openS3(ctx, "state", "p", S3Options{}); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials: %v", err)
	}

	srv.Stop()
	_, err = good.Get(ctx, "branches/master/state.json")
	wantS3Error(t, "server down", err, "state", "hf/state/branches/master/state.json", "cannot reach the S3 endpoint "+srv.Endpoint, true)
}

func wantS3Error(t *testing.T, what string, err error, bucket, key, hint string, retryable bool) {
	t.Helper()
	var se *S3Error
	if !errors.As(err, &se) {
		t.Fatalf("%s: %v, want an *S3Error", what, err)
	}
	msg := err.Error()
	t.Logf("%s: %s", what, msg)
	if !strings.Contains(msg, "s3://"+bucket+"/"+key) || !strings.Contains(msg, hint) || se.Retryable != retryable {
		t.Errorf("%s: %s (retryable %v), want s3://%s/%s, %q, retryable %v", what, msg, se.Retryable, bucket, key, hint, retryable)
	}
}

// The server dies while a state document is on the wire: the write fails
// with an error naming the bucket and key, the previous document is intact
// when the server is back, and the next write goes through.
func TestS3ServerStoppedMidWrite(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	key := "branches/master/state.json"
	var armed sync.Once
	var arm bool
	st := s3Store(t, srv, "state", interceptRequests(func(r *http.Request, next s3.HTTPClient) (*http.Response, error) {
		if arm && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+key) && r.Body != nil {
			r.Body = &stopAfterFirstRead{ReadCloser: r.Body, stop: func() { armed.Do(srv.Stop) }}
		}
		return next.Do(r)
	}))
	old := bytes.Repeat([]byte("o"), 256<<10)
	v1, err := st.PutIf(ctx, key, old, "")
	if err != nil {
		t.Fatal(err)
	}
	arm = true
	_, err = st.PutIf(ctx, key, bytes.Repeat([]byte("n"), 256<<10), v1)
	if errors.Is(err, ErrConflict) {
		t.Fatalf("a dead server read as a conflict: %v", err)
	}
	wantS3Error(t, "server stopped mid-write", err, "state", "hf/state/"+key, "cannot reach the S3 endpoint", true)
	arm = false
	srv.Start()
	got, v, err := st.GetVersioned(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) || v != v1 {
		t.Fatalf("after the restart the document is %d bytes starting %q, version %s; want the previous one, %s", len(got), got[:1], v, v1)
	}
	if _, err := st.PutIf(ctx, key, []byte("next run"), v1); err != nil {
		t.Fatalf("the next write after the restart: %v", err)
	}
}

// stopAfterFirstRead takes the server away once the first bytes of the body
// are on their way.
type stopAfterFirstRead struct {
	io.ReadCloser
	stop func()
	n    int
}

func (s *stopAfterFirstRead) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	s.n += n
	if s.n > 0 {
		s.stop()
	}
	return n, err
}

// A lock held through Store.Lock on S3 (the folder store's old API, for the
// pipeline as it is) excludes a second one.
func TestS3StoreLock(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	st := s3Store(t, srv, "state")
	unlock, err := st.Lock(ctx, "branch-master")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lock(ctx, "branch-master"); !errors.Is(err, ErrLocked) || !strings.HasPrefix(err.Error(), "lock branch-master is locked by run") {
		t.Fatalf("second Lock: %v", err)
	}
	unlock()
	again, err := st.Lock(ctx, "branch-master")
	if err != nil {
		t.Fatal(err)
	}
	again()
	out, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("state"), Prefix: aws.String("hf/state/locks/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 0 {
		t.Errorf("released locks left %d objects, first %s", len(out.Contents), aws.ToString(out.Contents[0].Key))
	}
}
