package build

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// writeCert issues a certificate signed by parent (self-signed when nil)
// and writes cert and key as PEM files named base.crt and base.key.
func writeCert(t *testing.T, dir, base string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, base+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, base+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// TestConnectTLS starts a buildkitd that listens on tcp:// with mutual TLS
// and checks that Connect gets in only with the right files.
func TestConnectTLS(t *testing.T) {
	prereq.Slow(t, "needs buildkitd")
	if os.Geteuid() != 0 {
		skipOrFail(t, "buildkitd with runc needs root")
	}
	if _, err := checkPrerequisites(); err != nil {
		skipOrFail(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildkitdBinary(ctx, "../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "buildkitd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "hyperfork"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	otherDir := t.TempDir()
	writeCert(t, otherDir, "ca", &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	p := func(n string) string { return filepath.Join(dir, n) }
	cmd := osexec.CommandContext(ctx, bin, "--root", p("root"), "--addr", addr,
		"--tlscert", p("server.crt"), "--tlskey", p("server.key"), "--tlscacert", p("ca.crt"),
		"--oci-worker=true", "--containerd-worker=false", "--oci-worker-snapshotter=native")
	logf, _ := os.Create(p("buildkitd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	good := TLS{CA: p("ca.crt"), Cert: p("client.crt"), Key: p("client.key")}
	var c interface{ Close() error }
	for i := 0; ; i++ {
		cl, err := Connect(ctx, addr, WithTLS(good))
		if err == nil {
			c = cl
			break
		}
		if i > 50 {
			log, _ := os.ReadFile(p("buildkitd.log"))
			t.Fatalf("connect with TLS: %v\n%s", err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Close()

	for name, opts := range map[string][]ConnectOption{
		"no TLS":         nil,
		"wrong CA":       {WithTLS(TLS{CA: filepath.Join(otherDir, "ca.crt"), Cert: p("client.crt"), Key: p("client.key")})},
		"no client cert": {WithTLS(TLS{CA: p("ca.crt")})},
	} {
		short, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := Connect(short, addr, opts...)
		cancel()
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: %v, want an unreachable error naming %s", name, err, addr)
		}
	}
	if _, err := Connect(ctx, addr, WithTLS(TLS{CA: p("ca.crt"), Cert: p("client.crt")})); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("a certificate without its key: %v", err)
	}
}
