package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperfork/hyperfork/internal/testutil/gotool"
)

// s3Server is a versitygw process serving a folder over S3 on loopback,
// started as internal/testutil/s3test starts it (that package needs a
// testing.TB, which a benchmark run by mage has not).
type s3Server struct {
	endpoint             string
	accessKey, secretKey string
	region               string
	dir                  string // the posix backend's root: a folder per bucket
	logPath              string
	cmd                  *exec.Cmd
	exited               chan struct{}
}

// startS3Server builds versitygw with `go tool -n versitygw` in moduleDir
// (a minute the first time, then from the build cache) and starts it on a
// free loopback port with its data under root. It returns once the server
// answers HTTP.
func startS3Server(ctx context.Context, moduleDir, root string, log *slog.Logger) (*s3Server, error) {
	bin, err := gotool.Path(moduleDir, "versitygw", "github.com/versity/versitygw/cmd/versitygw")
	if err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	addr, err := gotool.FreeAddr()
	if err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	s := &s3Server{
		endpoint: "http://" + addr, accessKey: "hyperfork-bench", secretKey: "hyperfork-bench-secret", region: "us-east-1",
		dir: filepath.Join(root, "data"), logPath: filepath.Join(root, "versitygw.log"), exited: make(chan struct{}),
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("versitygw data folder: %w", err)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("versitygw log: %w", err)
	}
	defer logf.Close()
	// Not CommandContext: the server outlives setup's context and is
	// stopped by close.
	s.cmd = exec.Command(bin, "--port", addr, "--region", s.region, "--quiet", "posix", s.dir)
	// Credentials through the environment keep them off the command line.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.accessKey, "ROOT_SECRET_ACCESS_KEY="+s.secretKey)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = releaseChildAttr()
	log.Info("starting versitygw", "endpoint", s.endpoint, "data", s.dir)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(s.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("versitygw exited before it was ready; its log %s:\n%s", s.logPath, lastLines(s.logPath, 20))
		case <-ctx.Done():
			s.close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("versitygw on %s not ready after 30s: %v; its log %s:\n%s", addr, err, s.logPath, lastLines(s.logPath, 20))
		}
	}
}

// close kills the server and waits for it.
func (s *s3Server) close() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// makeBucket creates a bucket. The posix backend keeps a bucket's owner in
// an extended attribute, so a folder made by hand is no bucket: it takes
// a CreateBucket request.
func (s *s3Server) makeBucket(ctx context.Context, name string) error {
	client := s3.New(s3.Options{
		Region: s.region, BaseEndpoint: aws.String(s.endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.accessKey, s.secretKey, ""),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s on %s: %w", name, s.endpoint, err)
	}
	return nil
}

// env is the environment, as KEY=VALUE, that points the AWS SDK at endpoint
// (the server's, or a proxy's in front of it) and nowhere else: its keys and
// region, no shared config or credentials files, no profile, no instance
// metadata.
func (s *s3Server) env(endpoint string) []string {
	none := filepath.Join(filepath.Dir(s.dir), "no-aws-config")
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.accessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.secretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.region,
		"AWS_DEFAULT_REGION=" + s.region,
		"AWS_ENDPOINT_URL_S3=" + endpoint,
		"AWS_ENDPOINT_URL=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + none,
		"AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_ROLE_ARN=",
	}
}

// setProcessEnv sets kvs in this process's environment, where the AWS SDK
// reads them for an in-process run, and returns what puts the old values
// back.
func setProcessEnv(kvs []string) (restore func()) {
	type old struct {
		v   string
		set bool
	}
	saved := map[string]old{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if _, done := saved[k]; !done {
			prev, set := os.LookupEnv(k)
			saved[k] = old{prev, set}
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.set {
				os.Setenv(k, o.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// s3Request is one request the recording proxy passed on, with its start
// and end relative to the recorder's zero.
type s3Request struct {
	Method string
	// Key is the object key without the bucket, e.g.
	// "state/locks/branches/master.json"; empty for a bucket request.
	Key        string
	Start, End time.Duration
	Status     int
}

// s3Recorder is a reverse proxy in front of the S3 server that records
// every request. It keeps the Host header the client signed, so SigV4
// signatures still verify.
type s3Recorder struct {
	srv    *httptest.Server
	bucket string
	mu     sync.Mutex
	zero   time.Time
	reqs   []s3Request
}

func newS3Recorder(target, bucket string) (*s3Recorder, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rec := &s3Recorder{bucket: bucket, zero: time.Now()}
	proxy := httputil.NewSingleHostReverseProxy(u)
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(sw, r)
		end := time.Now()
		key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"+rec.bucket), "/")
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, s3Request{Method: r.Method, Key: key, Start: start.Sub(rec.zero), End: end.Sub(rec.zero), Status: sw.status})
		rec.mu.Unlock()
	}))
	return rec, nil
}

// reset forgets the requests so far and makes now the zero.
func (rec *s3Recorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs, rec.zero = nil, time.Now()
}

// requests returns the requests since reset, in the order they ended.
func (rec *s3Recorder) requests() []s3Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]s3Request(nil), rec.reqs...)
}

func (rec *s3Recorder) close() { rec.srv.Close() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
