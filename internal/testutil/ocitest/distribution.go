package ocitest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/gotool"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// DistributionOptions configure StartDistribution.
type DistributionOptions struct {
	// NoDelete starts the registry as distribution ships, with
	// storage.delete off: every DELETE is answered 405 UNSUPPORTED.
	NoDelete bool
}

// distributionConfig is the registry's configuration: a folder for storage,
// deletes as asked, no upload purging, logs kept short.
const distributionConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: %t
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: ocitest
`

// StartDistribution starts the CNCF distribution registry (v3, pinned in
// go.mod as a tool: `go tool registry`) on a loopback port, its storage in a
// temporary folder, and returns its host, such as "127.0.0.1:41234". It
// stops when the test ends. This is the registry users run; prefer it to
// StartRegistry where its behaviour matters, such as what a DELETE removes.
func StartDistribution(t testing.TB, opts DistributionOptions) string {
	t.Helper()
	bin := distributionBinary(t)
	dir := t.TempDir()
	var lastErr error
	// The port is picked, freed, then bound by the registry: retried in
	// the unlikely case something took it meanwhile.
	for range 3 {
		addr := freeAddr(t)
		cfg := filepath.Join(dir, "config.yml")
		body := fmt.Sprintf(distributionConfig, filepath.Join(dir, "storage"), !opts.NoDelete, addr)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		logf := filepath.Join(dir, "registry.log")
		out, err := os.Create(logf)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Stdout, cmd.Stderr = out, out
		// Its OpenTelemetry exporters would look for a collector.
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none")
		if err := cmd.Start(); err != nil {
			out.Close()
			t.Fatalf("ocitest: start %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
			out.Close()
		}
		if lastErr = waitReady(addr, exited); lastErr == nil {
			t.Cleanup(stop)
			return addr
		}
		stop()
		lastErr = fmt.Errorf("%w; its log:\n%s", lastErr, tail(logf))
	}
	t.Fatalf("ocitest: distribution registry did not start: %v", lastErr)
	return ""
}

// waitReady polls GET /v2/ until it answers 200.
func waitReady(addr string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("it exited: %v", err)
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("GET http://%s/v2/ did not answer 200 within 30 s", addr)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
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
		t.Fatalf("ocitest: %v", err)
	}
	return addr
}

func distributionBinary(t testing.TB) string {
	t.Helper()
	path, err := gotool.Path("", "registry", "github.com/distribution/distribution/v3/cmd/registry")
	if err != nil {
		prereq.Missing(t, "ocitest: %v", err)
	}
	return path
}
