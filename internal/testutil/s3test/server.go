// Package s3test runs a real S3-compatible server for tests: versitygw with
// its posix backend, pinned in go.mod as a tool, on a free loopback port, with
// its data in a temporary folder. The server can be stopped (SIGKILL, as a
// crash would) and started again on the same port and data, so tests can
// take it away in the middle of a write.
//
// Under CI=true a missing prerequisite (go, or a versitygw that does not
// build) fails the test; elsewhere it skips it.
package s3test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperfork/hyperfork/internal/testutil/gotool"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// Server is one versitygw process and the folder it serves.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root account's test credentials.
	AccessKey, SecretKey string
	// Region is the region the server answers for.
	Region string
	// Dir is the posix backend's root: one folder per bucket.
	Dir string

	t    testing.TB
	addr string
	bin  string
	logf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// Start runs a server for the rest of the test; it is stopped by the test's
// cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binary(t)
	root := t.TempDir()
	s := &Server{
		AccessKey: "hyperfork-test",
		SecretKey: "hyperfork-test-secret",
		Region:    "us-east-1",
		Dir:       filepath.Join(root, "data"),
		t:         t,
		addr:      freeAddr(t),
		bin:       bin,
		logf:      filepath.Join(root, "versitygw.log"),
	}
	s.Endpoint = "http://" + s.addr
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server again after Stop, on the same port and data. It
// returns once the server answers HTTP.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("s3test: Start: the server is already running")
	}
	logf, err := os.OpenFile(s.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "--port", s.addr, "--region", s.Region, "--quiet", "posix", s.Dir)
	// Credentials through the environment keep them off the command line.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("s3test: start versitygw: %v", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exit:
			s.cmd = nil
			s.t.Fatalf("s3test: versitygw exited before it was ready: %s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("s3test: versitygw on %s not ready after 30s: %v\n%s", s.addr, err, s.logTail())
		}
	}
}

// Stop kills the server with SIGKILL, as a crash would, and waits until its
// port is closed. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// MakeBucket creates a bucket; it fails the test if the bucket cannot be made.
func (s *Server) MakeBucket(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
}

// Client is an S3 client with the server's endpoint and credentials, for
// checks a test makes beside the code under test.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Env is the environment, as KEY=VALUE, that points the AWS SDK at this
// server and nowhere else: its endpoint, region and keys, no shared config
// or credentials files, no profile, no instance metadata.
func (s *Server) Env() []string {
	none := filepath.Join(filepath.Dir(s.Dir), "no-aws-config")
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_ENDPOINT_URL=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + none,
		"AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_ROLE_ARN=",
	}
}

// Setenv sets Env in this process for the rest of the test (t.Setenv), so
// code that reads the SDK's standard sources finds this server.
func (s *Server) Setenv(t testing.TB) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logf)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freeAddr picks a free loopback port.
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := gotool.FreeAddr()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return addr
}

func binary(t testing.TB) string {
	t.Helper()
	path, err := gotool.Path("", "versitygw", "github.com/versity/versitygw/cmd/versitygw")
	if err != nil {
		prereq.Missing(t, "s3test: %v", err)
	}
	return path
}
