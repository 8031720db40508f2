package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Options override what the AWS SDK reads from its standard sources
// (AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, profiles). Credentials
// have no override: they come from the environment, a profile, or web
// identity, never from branches.yaml.
type S3Options struct {
	// Region is the bucket's region; empty: the SDK's, else us-east-1 for
	// an S3-compatible endpoint.
	Region string
	// Endpoint is an S3-compatible server's URL, such as http://127.0.0.1:7070.
	Endpoint string
	// PathStyle forces path-style (true) or virtual-hosted (false)
	// addressing; nil: path-style when the endpoint's host is an IP
	// address, localhost or a name without a dot.
	PathStyle *bool
	// PartSize is the part size of multipart artifact uploads, at least
	// 5 MiB; 0: DefaultPartSize.
	PartSize int64
}

// DefaultPartSize is the part size of artifact uploads: a multipart upload
// holds at most 10,000 parts, so this allows artifacts up to about 78 GiB.
const DefaultPartSize = 8 << 20

const minPartSize = 5 << 20

// S3 is a store in an S3 bucket under a key prefix: state documents with
// conditional writes, leases as lock objects, and artifacts.
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	prefix   string // no leading or trailing "/"; may be empty
	endpoint string // for messages, without credentials or query
	partSize int64
}

var (
	_ Store          = (*S3)(nil)
	_ VersionedStore = (*S3)(nil)
	_ Locker         = (*S3)(nil)
	_ Artifacts      = (*S3)(nil)
)

// ParseS3URL splits "s3://bucket/prefix" into its bucket and prefix (no
// leading or trailing slash, possibly empty).
func ParseS3URL(location string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(location, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix URL", location)
	}
	// Parse by hand: url.Parse would put a secret before an "@" in the
	// message of its error, and a bucket is no host name.
	if strings.ContainsAny(rest, "@?#") {
		return "", "", errors.New("an s3:// location is s3://bucket/prefix, without credentials, query or fragment; credentials come from AWS_* variables, a profile or web identity")
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !validBucket(bucket) {
		return "", "", fmt.Errorf("s3://%s: %q is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')", rest, bucket)
	}
	prefix = strings.Trim(path.Clean("/"+prefix), "/")
	return bucket, prefix, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// OpenS3 opens "s3://bucket/prefix" with the SDK's standard configuration
// and opts. It resolves credentials now, so a missing key is reported here,
// but makes no request to the bucket (Check does).
func OpenS3(ctx context.Context, location string, opts S3Options) (*S3, error) {
	bucket, prefix, err := ParseS3URL(location)
	if err != nil {
		return nil, err
	}
	return openS3(ctx, bucket, prefix, opts)
}

// openS3 takes extra client options, which tests use to put a fault between
// the client and a real server.
func openS3(ctx context.Context, bucket, prefix string, opts S3Options, extra ...func(*s3.Options)) (*S3, error) {
	where := "s3://" + path.Join(bucket, prefix)
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < minPartSize {
		return nil, fmt.Errorf("%s: part size %d is below S3's minimum of 5 MiB", where, opts.PartSize)
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: endpoint %s is not an http:// or https:// URL", where, redactURL(opts.Endpoint))
		}
		if u.User != nil {
			return nil, fmt.Errorf("%s: endpoint %s holds credentials; give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead", where, redactURL(opts.Endpoint))
		}
	}
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("%s: load the AWS configuration: %w; check AWS_PROFILE, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE", where, err)
	}
	var endpoint string
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// The SDK has already resolved AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL
		// and the profile's endpoint into BaseEndpoint; the option wins.
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		endpoint = aws.ToString(o.BaseEndpoint)
		o.UsePathStyle = pathStyle(opts.PathStyle, endpoint)
		if o.Region == "" && endpoint != "" {
			o.Region = "us-east-1"
		}
		for _, f := range extra {
			f(o)
		}
	})
	if client.Options().Region == "" {
		return nil, fmt.Errorf("%s: no AWS region: set AWS_REGION, or state.s3.region, to the bucket's region", where)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%s: no AWS credentials: %s", where, credentialsHint)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("%s: no usable AWS credentials: %w; %s", where, err, credentialsHint)
	}
	s := &S3{client: client, presign: s3.NewPresignClient(client), bucket: bucket, prefix: prefix,
		endpoint: redactURL(endpoint), partSize: opts.PartSize}
	if s.endpoint == "" {
		s.endpoint = "AWS S3 in " + client.Options().Region
	}
	return s, nil
}

const credentialsHint = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or a web identity (AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE, as GitHub Actions OIDC and IRSA give)"

// pathStyle: a bucket cannot be a subdomain of an IP address, and
// "bucket.localhost" or "bucket.minio" rarely resolve.
func pathStyle(force *bool, endpoint string) bool {
	if force != nil {
		return *force
	}
	if endpoint == "" {
		return false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	return host == "localhost" || net.ParseIP(host) != nil || !strings.Contains(host, ".")
}

// redactURL keeps scheme, host and path of a URL for a message.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// String is the store's location, s3://bucket/prefix.
func (s *S3) String() string { return "s3://" + path.Join(s.bucket, s.prefix) }

// Bucket is the store's bucket.
func (s *S3) Bucket() string { return s.bucket }

// Prefix is the key prefix the store keeps its objects under, without
// slashes at either end; empty for the whole bucket.
func (s *S3) Prefix() string { return s.prefix }

// objectKey maps a store key to the object's key in the bucket. Keys are
// cleaned like a folder store's, so the two stores agree on every key.
func (s *S3) objectKey(key string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+key), "/")
	if clean == "" || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid state key %q", key)
	}
	if s.prefix == "" {
		return clean, nil
	}
	return s.prefix + "/" + clean, nil
}

// storeKey is the inverse of objectKey.
func (s *S3) storeKey(objectKey string) string {
	if s.prefix == "" {
		return objectKey
	}
	return strings.TrimPrefix(objectKey, s.prefix+"/")
}

// Check makes one request to the bucket, so a wrong endpoint, region,
// credentials or bucket name is reported before any work starts.
func (s *S3) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		return s.fail("reach", "", err)
	}
	return nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	b, _, err := s.GetVersioned(ctx, key)
	return b, err
}

// GetVersioned implements VersionedStore; the version is the object's ETag.
func (s *S3) GetVersioned(ctx context.Context, key string) ([]byte, string, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return nil, "", err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(ok)})
	if err != nil {
		if isNotFound(err) {
			return nil, "", fmt.Errorf("state %s: %w", s.url(ok), ErrNotFound)
		}
		return nil, "", s.fail("read", ok, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", s.fail("read", ok, err)
	}
	return b, aws.ToString(out.ETag), nil
}

// Put implements Store: a plain PUT, which S3 applies whole or not at all.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	ok, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := s.putObject(ctx, ok, data, nil, nil); err != nil {
		return s.fail("write", ok, err)
	}
	return nil
}

// PutIf implements VersionedStore with If-None-Match: * (ifVersion "") or
// If-Match: ifVersion.
func (s *S3) PutIf(ctx context.Context, key string, data []byte, ifVersion string) (string, error) {
	ok, err := s.objectKey(key)
	if err != nil {
		return "", err
	}
	var ifMatch, ifNoneMatch *string
	if ifVersion == "" {
		ifNoneMatch = aws.String("*")
	} else {
		ifMatch = aws.String(ifVersion)
	}
	etag, err := s.putObject(ctx, ok, data, ifMatch, ifNoneMatch)
	if err != nil {
		if isConflict(err) {
			return "", fmt.Errorf("write state %s: %w", s.url(ok), ErrConflict)
		}
		// If-Match on a key that is gone is a 404 NoSuchKey.
		if ifMatch != nil && isNotFound(err) {
			return "", fmt.Errorf("write state %s: it was deleted since it was read: %w", s.url(ok), ErrConflict)
		}
		return "", s.fail("write", ok, err)
	}
	return etag, nil
}

func (s *S3) putObject(ctx context.Context, objectKey string, data []byte, ifMatch, ifNoneMatch *string) (string, error) {
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(objectKey), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), IfMatch: ifMatch, IfNoneMatch: ifNoneMatch,
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// Lock implements Store with a lease (see LockBranch) on
// locks/<EncodeName(name)>.json, held by this process.
func (s *S3) Lock(ctx context.Context, name string) (func(), error) {
	l, err := s.lease(ctx, "lock", name, "locks/"+EncodeName(name)+".json", NewHolder("", ""), nil)
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Release(ctx) }, nil
}

func (s *S3) url(objectKey string) string { return "s3://" + s.bucket + "/" + objectKey }
