package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// DaemonOptions configures the embedded buildkitd.
type DaemonOptions struct {
	// StateDir holds the daemon's folder, buildkitd/: its state (images,
	// Go build cache), socket, config, pid file and log.
	StateDir string
	// InsecureRegistries are registry hosts (host:port) BuildKit reaches
	// over plain HTTP. Loopback registries always are.
	InsecureRegistries []string
	// Logger receives one line per lifecycle event; nil discards.
	Logger *slog.Logger
	// ModuleDir is a folder of a module that pins buildkitd as a tool
	// (`go tool -n buildkitd` is run there). Empty: buildkitd from PATH.
	ModuleDir string
	// KeepRunning makes Close leave the daemon running so that the next
	// run reuses it and its warm cache; stop it with StopDaemon.
	KeepRunning bool
}

// Daemon is a buildkitd started (or found running) by StartDaemon.
type Daemon struct {
	addr    string
	dir     string
	logger  *slog.Logger
	proc    *os.Process
	exited  chan struct{}
	keep    bool
	reused  bool
	logFile *os.File
}

// Addr returns the daemon's address, for Connect.
func (d *Daemon) Addr() string { return d.addr }

// LogFile returns the path of the daemon's log, for error messages.
func (d *Daemon) LogFile() string { return filepath.Join(d.dir, "buildkitd.log") }

// Reused reports whether StartDaemon found the daemon already running.
func (d *Daemon) Reused() bool { return d.reused }

// Close stops the daemon if this process started it and KeepRunning is off:
// SIGTERM, then SIGKILL after a grace period. A reused or kept daemon is left
// running.
func (d *Daemon) Close() error {
	if d == nil || d.proc == nil {
		return nil
	}
	defer d.logFile.Close()
	if d.keep {
		d.logger.Info("leaving buildkitd running for the next run", "addr", d.addr, "pid", d.proc.Pid)
		return d.proc.Release()
	}
	d.logger.Info("stopping buildkitd", "pid", d.proc.Pid)
	err := stopProcess(d.proc, d.exited)
	os.Remove(filepath.Join(d.dir, "buildkitd.pid"))
	return err
}

// stopGrace is how long buildkitd gets to unmount and flush its databases.
const stopGrace = 15 * time.Second

func stopProcess(p *os.Process, exited <-chan struct{}) error {
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop buildkitd (pid %d): %w", p.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopGrace):
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill buildkitd (pid %d): %w", p.Pid, err)
	}
	<-exited
	return nil
}

// StopDaemon stops a daemon left running under stateDir by KeepRunning,
// using its pid file. It does nothing if none runs.
func StopDaemon(stateDir string) error {
	pidFile := filepath.Join(stateDir, "buildkitd", "buildkitd.pid")
	dt, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop buildkitd: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(dt)))
	if err != nil {
		return fmt.Errorf("stop buildkitd: bad pid file %s: %w", pidFile, err)
	}
	p, _ := os.FindProcess(pid)
	if err := p.Signal(syscall.Signal(0)); err != nil {
		os.Remove(pidFile)
		return nil
	}
	exited := make(chan struct{})
	go func() {
		// Not our child: poll until it is gone.
		for p.Signal(syscall.Signal(0)) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		close(exited)
	}()
	err = stopProcess(p, exited)
	os.Remove(pidFile)
	return err
}

// startTimeout bounds the wait for a fresh daemon's first answer.
const startTimeout = 60 * time.Second

// StartDaemon starts buildkitd with the OCI worker and runc, or reuses the one
// already answering on its socket under StateDir. It needs root and runc; when
// either is missing the error says what to install or set instead.
func StartDaemon(ctx context.Context, opts DaemonOptions) (*Daemon, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.StateDir == "" {
		return nil, errors.New("start buildkitd: no state folder given (DaemonOptions.StateDir)")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("start buildkitd: state folder: %w", err)
	}
	runc, err := checkPrerequisites()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(stateDir, "buildkitd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start buildkitd: %w", err)
	}
	sock, err := socketPath(dir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{addr: "unix://" + sock, dir: dir, logger: logger, keep: opts.KeepRunning}

	// Two runs starting at once must not both launch a daemon on one root.
	unlock, err := lockFile(ctx, filepath.Join(dir, "start.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	snapshotter := "native"
	if err := overlaySupported(dir); err == nil {
		snapshotter = "overlayfs"
	} else {
		logger.Info("overlayfs unavailable, using the slower native snapshotter", "reason", err)
	}
	cfg := filepath.Join(dir, "buildkitd.toml")
	// The trace socket's name is as long as buildkitd.sock's, so it fits
	// wherever socketPath put that one.
	want := daemonConfig(runc, snapshotter, filepath.Join(filepath.Dir(sock), "otel-grpc.sock"), opts.InsecureRegistries)
	if answers(ctx, d.addr) {
		// A kept daemon runs with the options of the run that started it;
		// one with other insecure registries could not pull this run's images.
		have, _ := os.ReadFile(cfg)
		if bytes.Equal(have, want) {
			logger.Info("reusing running buildkitd", "addr", d.addr)
			d.reused = true
			return d, nil
		}
		logger.Info("restarting buildkitd: its configuration changed", "addr", d.addr)
		if err := StopDaemon(stateDir); err != nil {
			return nil, err
		}
		if answers(ctx, d.addr) {
			return nil, fmt.Errorf("start buildkitd: a daemon not started by hyperfork answers on %s with another configuration: stop it, or set BUILDKIT_HOST to use it as it is", d.addr)
		}
	}
	os.Remove(sock) // stale, from a daemon that died

	bin, err := buildkitdBinary(ctx, opts.ModuleDir)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg, want, 0o644); err != nil {
		return nil, fmt.Errorf("start buildkitd: write config: %w", err)
	}
	logFile, err := os.OpenFile(d.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start buildkitd: open log: %w", err)
	}
	args := []string{
		"--config", cfg,
		"--root", filepath.Join(dir, "root"),
		"--addr", d.addr,
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-snapshotter", snapshotter,
		"--oci-worker-binary", runc,
	}
	fmt.Fprintf(logFile, "\n=== %s %s\n", time.Now().UTC().Format(time.RFC3339), hfexec.Quote(bin, args...))
	// Not CommandContext: the daemon is meant to outlive the context
	// (and, with KeepRunning, this process); Close stops it.
	cmd := osexec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The allow-listed environment every child gets (PATH to find runc's
	// helpers, HOME, XDG_RUNTIME_DIR, proxies and CA files for pulls), not
	// ours: a kept daemon outlives this run, and would carry whatever
	// variables the run that started it happened to have.
	cmd.Env = hfexec.BaseEnv(os.Getenv)
	// Its own process group keeps a Ctrl-C at the terminal from killing it
	// halfway through writing its state.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start buildkitd %s: %w", bin, err)
	}
	d.proc, d.logFile, d.exited = cmd.Process, logFile, make(chan struct{})
	go func() { cmd.Wait(); close(d.exited) }()
	os.WriteFile(filepath.Join(dir, "buildkitd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	logger.Info("starting buildkitd", "addr", d.addr, "pid", cmd.Process.Pid, "snapshotter", snapshotter, "log", d.LogFile())

	if err := d.waitReady(ctx); err != nil {
		stopProcess(d.proc, d.exited)
		logFile.Close()
		return nil, err
	}
	return d, nil
}

// waitReady polls the socket until the daemon answers, exits or times out.
func (d *Daemon) waitReady(ctx context.Context) error {
	deadline := time.After(startTimeout)
	for {
		if answers(ctx, d.addr) {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("buildkitd exited during start; its log %s ends with:\n%s", d.LogFile(), tail(d.LogFile(), 20))
		case <-deadline:
			return fmt.Errorf("buildkitd did not answer on %s within %s; its log %s ends with:\n%s", d.addr, startTimeout, d.LogFile(), tail(d.LogFile(), 20))
		case <-ctx.Done():
			return fmt.Errorf("start buildkitd: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// answers reports whether a daemon with a worker answers on addr.
func answers(ctx context.Context, addr string) bool {
	if !strings.HasPrefix(addr, "unix://") {
		return false
	}
	if _, err := os.Stat(strings.TrimPrefix(addr, "unix://")); err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.New(cctx, addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = WorkerPlatforms(cctx, c)
	return err == nil
}

// checkPrerequisites returns runc's path, or an error saying what to install.
func checkPrerequisites() (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the embedded buildkitd needs root (it runs build steps with runc): run as root, or start a BuildKit daemon yourself (e.g. rootless buildkitd, or `docker buildx create --driver docker-container`) and set BUILDKIT_HOST or build.buildkit to its address")
	}
	if p, err := osexec.LookPath("runc"); err == nil {
		return p, nil
	}
	// sbin is often missing from PATH in CI shells although runc is there.
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("the embedded buildkitd needs runc, which is not on PATH: install it (Debian/Ubuntu: apt-get install -y runc), or set BUILDKIT_HOST or build.buildkit to a running BuildKit daemon")
}

// buildkitdBinary finds buildkitd: the version pinned in the module's tools
// first, so the daemon matches this client, else the one on PATH.
func buildkitdBinary(ctx context.Context, moduleDir string) (string, error) {
	var toolErr error
	if moduleDir != "" {
		// The first call compiles buildkitd (about 90 s); later ones hit the cache.
		out, err := hfexec.Run(ctx, hfexec.Cmd{Name: "go", Args: []string{"tool", "-n", "buildkitd"}, Dir: moduleDir})
		if p := strings.TrimSpace(string(out)); err == nil && p != "" {
			return p, nil
		}
		toolErr = err
	}
	if p, err := osexec.LookPath("buildkitd"); err == nil {
		return p, nil
	}
	if toolErr != nil {
		return "", fmt.Errorf("find buildkitd: `go tool -n buildkitd` in %s failed and buildkitd is not on PATH (check that go.mod pins github.com/moby/buildkit/cmd/buildkitd as a tool): %w", moduleDir, toolErr)
	}
	return "", errors.New("find buildkitd: not on PATH and no module folder given: set DaemonOptions.ModuleDir to the repository root, or install buildkitd")
}

// maxSocketPath is the longest socket path buildkitd accepts: sun_path holds
// 107 bytes on Linux, but buildkitd creates its sockets through containerd's
// CreateUnixSocket, which refuses anything over 104 (the BSDs' limit).
const maxSocketPath = 104

// socketPath returns <dir>/buildkitd.sock, or, when that is too long for a
// unix socket, a short path under /run (or the temp folder) derived from dir,
// so that the same state folder always gets the same socket.
func socketPath(dir string) (string, error) {
	p := filepath.Join(dir, "buildkitd.sock")
	if len(p) <= maxSocketPath {
		return p, nil
	}
	short := "hyperfork-" + digest.FromString(dir).Encoded()[:12]
	for _, base := range []string{"/run", os.TempDir()} {
		d := filepath.Join(base, short)
		if err := os.MkdirAll(d, 0o700); err == nil {
			return filepath.Join(d, "buildkitd.sock"), nil
		}
	}
	return "", fmt.Errorf("start buildkitd: socket path %s is longer than %d bytes and neither /run nor %s is writable: use a shorter state folder", p, maxSocketPath, os.TempDir())
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	dt, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(dt), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
