package build

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	// Connection helpers register the docker-container://, kube-pod://
	// and ssh:// schemes with the client.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	_ "github.com/moby/buildkit/client/connhelper/ssh"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	hfexec "github.com/hyperfork/hyperfork/internal/exec"
)

// ErrUnreachable is wrapped by every error Connect returns when the daemon
// does not answer; test with errors.Is.
var ErrUnreachable = errors.New("BuildKit is unreachable")

// UnreachableError says which BuildKit address did not answer and why.
type UnreachableError struct {
	// Addr is the address, with any credentials removed.
	Addr string
	// Err is the cause.
	Err error
}

// Error says which address failed, why, and what to do.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("BuildKit at %s is unreachable: %v; start buildkitd (scripts/ has a helper, or leave the address empty for the embedded daemon) or set BUILDKIT_HOST / build.buildkit to a running one", e.Addr, e.Err)
}

// Unwrap makes both ErrUnreachable and the cause visible to errors.Is.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// connectTimeout bounds the first call: a daemon that is up answers in
// milliseconds, and a wrong address should fail fast, not hang a pipeline.
const connectTimeout = 10 * time.Second

// TLS secures a tcp:// connection, as buildctl's --tlscacert, --tlscert,
// --tlskey and --tlsservername do. Paths are files on this machine.
type TLS struct {
	// CA verifies the daemon's certificate; empty: the system's roots.
	CA string
	// Cert and Key authenticate this client (buildkitd --tlscacert).
	Cert, Key string
	// ServerName is the name the certificate must carry; empty: the host.
	ServerName string
}

// ConnectOption configures Connect.
type ConnectOption func(*connectOptions) error

type connectOptions struct {
	tls *TLS
}

// WithTLS connects to a tcp:// daemon over TLS.
func WithTLS(t TLS) ConnectOption {
	return func(o *connectOptions) error {
		if (t.Cert == "") != (t.Key == "") {
			return errors.New("BuildKit TLS: a client certificate needs its key and the key its certificate")
		}
		for _, f := range []string{t.CA, t.Cert, t.Key} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("BuildKit TLS: %w", err)
			}
		}
		o.tls = &t
		return nil
	}
}

// Connect dials the BuildKit daemon at addr (unix://, tcp://,
// docker-container://, kube-pod://, ssh://) and checks that it answers and has
// a worker. Close the client when done.
func Connect(ctx context.Context, addr string, opts ...ConnectOption) (*client.Client, error) {
	var o connectOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	shown := hfexec.RedactURL(addr)
	if strings.TrimSpace(addr) == "" {
		return nil, &UnreachableError{Addr: `""`, Err: errors.New("no address given")}
	}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return nil, &UnreachableError{Addr: shown, Err: fmt.Errorf("not an address such as unix:///run/buildkit/buildkitd.sock or tcp://host:1234 (%v)", err)}
	}
	// grpc reports a missing socket as a generic dial error; say it plainly.
	if u.Scheme == "unix" {
		if _, err := os.Stat(u.Path); err != nil {
			return nil, &UnreachableError{Addr: shown, Err: fmt.Errorf("no socket at %s", u.Path)}
		}
	}
	var copts []client.ClientOpt
	if o.tls != nil {
		if u.Scheme != "tcp" {
			return nil, fmt.Errorf("BuildKit TLS applies to tcp:// addresses, not %s", shown)
		}
		name := o.tls.ServerName
		if name == "" {
			name = u.Hostname()
		}
		if o.tls.CA != "" {
			copts = append(copts, client.WithServerConfig(name, o.tls.CA))
		} else {
			copts = append(copts, client.WithServerConfigSystem(name))
		}
		if o.tls.Cert != "" {
			copts = append(copts, client.WithCredentials(o.tls.Cert, o.tls.Key))
		}
	}
	c, err := client.New(ctx, addr, copts...)
	if err != nil {
		return nil, &UnreachableError{Addr: shown, Err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if _, err := WorkerPlatforms(cctx, c); err != nil {
		c.Close()
		if cctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %w", connectTimeout, err)
		}
		return nil, &UnreachableError{Addr: shown, Err: err}
	}
	return c, nil
}

// WorkerPlatforms returns the platforms the daemon's workers run natively,
// normalized (linux/amd64, ...), the first worker's first. Compile runs the
// compiler on the first one; target platforms need not be among them since
// Go cross-compiles.
func WorkerPlatforms(ctx context.Context, c *client.Client) ([]string, error) {
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return nil, err
	}
	var ps []ocispecs.Platform
	for _, w := range ws {
		ps = append(ps, w.Platforms...)
	}
	if len(ps) == 0 {
		return nil, errors.New("the daemon has no worker: start buildkitd with --oci-worker=true or a containerd worker")
	}
	return formatPlatforms(ps), nil
}

// formatPlatforms normalizes platforms to os/arch[/variant], without duplicates.
func formatPlatforms(ps []ocispecs.Platform) []string {
	var out []string
	for _, p := range ps {
		s := platforms.Format(platforms.Normalize(p))
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
