package s3test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// The state store's compare-and-swap rests on these answers: a create-only
// PUT (If-None-Match: *) and a replace-if (If-Match: etag) must be refused
// with 412 when their condition fails, and so must a DELETE with If-Match.
func TestServerHonoursConditionalWrites(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	s.MakeBucket("cas")
	c := s.Client()
	put := func(body string, ifNoneMatch, ifMatch *string) (string, error) {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cas"), Key: aws.String("k"),
			Body: strings.NewReader(body), IfNoneMatch: ifNoneMatch, IfMatch: ifMatch})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	}
	e1, err := put("one", aws.String("*"), nil)
	if err != nil {
		t.Fatalf("create-only PUT of a new key: %v", err)
	}
	if _, err := put("two", aws.String("*"), nil); !isPreconditionFailed(err) {
		t.Fatalf("create-only PUT of an existing key: %v, want 412 PreconditionFailed", err)
	}
	if _, err := put("two", nil, aws.String(`"0123456789abcdef0123456789abcdef"`)); !isPreconditionFailed(err) {
		t.Fatalf("PUT If-Match a wrong etag: %v, want 412", err)
	}
	e2, err := put("two", nil, aws.String(e1))
	if err != nil {
		t.Fatalf("PUT If-Match the current etag: %v", err)
	}
	if _, err := put("three", nil, aws.String(e1)); !isPreconditionFailed(err) {
		t.Fatalf("PUT If-Match a replaced etag: %v, want 412", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cas"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "two" || aws.ToString(out.ETag) != e2 {
		t.Fatalf("object = %q etag %s, want \"two\" etag %s", b, aws.ToString(out.ETag), e2)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("cas"), Key: aws.String("k"), IfMatch: aws.String(e1)}); !isPreconditionFailed(err) {
		t.Fatalf("DELETE If-Match a replaced etag: %v, want 412", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("cas"), Key: aws.String("k"), IfMatch: aws.String(e2)}); err != nil {
		t.Fatalf("DELETE If-Match the current etag: %v", err)
	}
}

// Stop and Start keep the port and the data.
func TestServerRestartsOnSamePortAndData(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	s.MakeBucket("keep")
	c := s.Client()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("keep"), Key: aws.String("a/b"), Body: bytes.NewReader([]byte("kept"))}); err != nil {
		t.Fatal(err)
	}
	endpoint := s.Endpoint
	s.Stop()
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("keep")}); err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Start()
	if s.Endpoint != endpoint {
		t.Fatalf("endpoint moved from %s to %s", endpoint, s.Endpoint)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("keep"), Key: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "kept" {
		t.Fatalf("after restart: %q", b)
	}
}

func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed"
}
