package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// maxLinkTTL is the longest a SigV4 presigned URL can be valid.
const maxLinkTTL = 7 * 24 * time.Hour

// PutStream implements Artifacts. An artifact no bigger than one part is
// one PUT; a bigger one is a multipart upload of parts read one at a time
// (memory: one part), completed only when r is exhausted and aborted on any
// error, so nothing appears under key unless all of it arrived.
func (s *S3) PutStream(ctx context.Context, key string, r io.Reader) (Object, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return Object{}, err
	}
	buf := make([]byte, s.partSize)
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		if _, err := s.putObject(ctx, ok, buf[:n], nil, nil); err != nil {
			return Object{}, s.fail("upload", ok, err)
		}
		return Object{Key: s.storeKey(ok), Size: int64(n), Time: time.Now().UTC()}, nil
	}
	if err != nil {
		return Object{}, fmt.Errorf("upload %s: read the artifact: %w", s.url(ok), err)
	}
	return s.multipart(ctx, ok, r, buf)
}

func (s *S3) multipart(ctx context.Context, objectKey string, r io.Reader, buf []byte) (Object, error) {
	create, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(objectKey), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		return Object{}, s.fail("upload", objectKey, err)
	}
	id := create.UploadId
	abort := func(cause error) (Object, error) {
		// Abort even when ctx was cancelled: that is when it matters most.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(objectKey), UploadId: id})
		if aerr != nil {
			return Object{}, fmt.Errorf("%w (nothing was stored under the key, but the incomplete upload %s could not be aborted: %v; "+
				"a lifecycle rule AbortIncompleteMultipartUpload on the bucket removes such leftovers)", cause, aws.ToString(id), aerr)
		}
		return Object{}, cause
	}
	var parts []types.CompletedPart
	var size int64
	n := len(buf)
	for part := int32(1); ; part++ {
		up, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.bucket), Key: aws.String(objectKey), UploadId: id,
			PartNumber: aws.Int32(part), Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return abort(s.fail(fmt.Sprintf("upload part %d of", part), objectKey, err))
		}
		parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(part), ChecksumCRC32: up.ChecksumCRC32})
		size += int64(n)
		n, err = io.ReadFull(r, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return abort(fmt.Errorf("upload %s: read the artifact: %w", s.url(objectKey), err))
		}
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(objectKey), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return abort(s.fail("complete upload of", objectKey, err))
	}
	return Object{Key: s.storeKey(objectKey), Size: size, Time: time.Now().UTC()}, nil
}

// Open implements Artifacts: the object's body, read as it arrives.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(ok)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("artifact %s: %w", s.url(ok), ErrNotFound)
		}
		return nil, s.fail("read", ok, err)
	}
	return out.Body, nil
}

// List implements Artifacts with ListObjectsV2; an object's time is its
// LastModified.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	full := prefix
	if s.prefix != "" {
		full = s.prefix + "/" + prefix
	}
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(full)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail("list", full+"*", err)
		}
		for _, o := range page.Contents {
			out = append(out, Object{Key: s.storeKey(aws.ToString(o.Key)), Size: aws.ToInt64(o.Size), Time: aws.ToTime(o.LastModified).UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Artifacts.
func (s *S3) Delete(ctx context.Context, key string) error {
	ok, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(ok)}); err != nil && !isNotFound(err) {
		return s.fail("delete", ok, err)
	}
	return nil
}

// Link implements Artifacts with a presigned GET, valid for ttl (at most a
// week). It signs locally and makes no request.
func (s *S3) Link(ctx context.Context, key string, ttl time.Duration) (string, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	ttl = min(ttl, maxLinkTTL)
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(ok)}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("link %s: %w", s.url(ok), err)
	}
	return req.URL, nil
}
