package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// S3Error is a failed request to an S3 store. Its message names the bucket
// and key and says what to do; it never holds a credential.
type S3Error struct {
	// Op is what was being done: "read", "write", "delete", "list", ...
	Op string
	// Bucket and Key name the object (Key is empty for the bucket itself).
	Bucket, Key string
	// Hint says what to do next.
	Hint string
	// Retryable is true when the same request may succeed later: the
	// server was unreachable, overloaded or failed.
	Retryable bool
	// Err is the SDK's error.
	Err error
}

func (e *S3Error) Error() string {
	return fmt.Sprintf("%s s3://%s/%s: %s; %s", e.Op, e.Bucket, e.Key, shortCause(e.Err), e.Hint)
}

// shortCause is the part of an SDK error a person needs: the S3 error code
// and message, or the network failure. The whole error (request ids,
// attempts) stays available through Unwrap.
func shortCause(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		_, status := apiCode(err)
		msg := ae.ErrorCode()
		if status != 0 {
			msg += fmt.Sprintf(" (HTTP %d)", status)
		}
		if m := ae.ErrorMessage(); m != "" {
			msg += ": " + m
		}
		return msg
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		var ma *retry.MaxAttemptsError
		if errors.As(err, &ma) {
			return fmt.Sprintf("%v (%d attempts)", oe, ma.Attempt)
		}
		return oe.Error()
	}
	return err.Error()
}

// Unwrap gives the SDK's error.
func (e *S3Error) Unwrap() error { return e.Err }

// fail turns an SDK error into an S3Error with advice. Context ends pass
// through as themselves, wrapped with the object's name.
func (s *S3) fail(op, objectKey string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, s.url(objectKey), err)
	}
	e := &S3Error{Op: op, Bucket: s.bucket, Key: objectKey, Err: err}
	code, status := apiCode(err)
	switch {
	case code == "NoSuchBucket" || (objectKey == "" && status == http.StatusNotFound):
		e.Hint = fmt.Sprintf("the bucket %s does not exist at %s: create it, or fix the bucket in state.store / logs.store", s.bucket, s.endpoint)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" || code == "InvalidToken":
		e.Hint = "the server refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile or web identity they come from) and that they are not expired"
	case code == "AccessDenied" || status == http.StatusForbidden:
		e.Hint = fmt.Sprintf("access denied: the credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on %s", s.bucket)
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || code == "IllegalLocationConstraintException" || status == http.StatusMovedPermanently:
		e.Hint = "the bucket is in another region: set AWS_REGION, or state.s3.region, to the bucket's region"
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		e.Hint = fmt.Sprintf("the server at %s does not implement this request; hyperfork needs an S3-compatible server that honours If-Match and If-None-Match", s.endpoint)
	case status >= 500 || code == "SlowDown" || code == "RequestTimeout":
		e.Retryable = true
		e.Hint = fmt.Sprintf("the server at %s failed or is overloaded; run again later", s.endpoint)
	case status == 0 && isNetwork(err):
		e.Retryable = true
		e.Hint = fmt.Sprintf("cannot reach the S3 endpoint %s: check that it is up and that AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or state.s3.endpoint name it", s.endpoint)
		if op == "write" {
			e.Hint += "; S3 replaces an object whole or not at all, so it holds its previous value or, if the write landed unconfirmed, the new one"
		}
	default:
		e.Hint = fmt.Sprintf("the request to %s failed", s.endpoint)
	}
	return e
}

// apiCode is the S3 error code and HTTP status of err, when it has them.
func apiCode(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func isNotFound(err error) bool {
	code, status := apiCode(err)
	return code == "NoSuchKey" || code == "NotFound" || status == http.StatusNotFound && code != "NoSuchBucket"
}

// isConflict: 412 is a failed condition; AWS answers 409
// ConditionalRequestConflict to a conditional write racing another.
func isConflict(err error) bool {
	code, status := apiCode(err)
	return code == "PreconditionFailed" || code == "ConditionalRequestConflict" ||
		status == http.StatusPreconditionFailed || (status == http.StatusConflict && code == "ConditionalRequestConflict")
}
