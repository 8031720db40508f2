package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailServer is a real SMTP server (emersion/go-smtp) on loopback that
// offers STARTTLS with a self-signed certificate and AUTH PLAIN, only after
// STARTTLS, and records what it received.
type mailServer struct {
	addr string
	// roots trusts the server's certificate, for WithTLSConfig.
	roots *x509.CertPool

	user, password string
	// failData, if set, answers the n-th DATA (from 1) instead of accepting.
	failData func(n int) error

	mu    sync.Mutex
	auths []mailAuth
	mails []receivedMail
	datas int
}

type mailAuth struct {
	user string
	tls  bool
	ok   bool
}

type receivedMail struct {
	from string
	to   []string
	data []byte
	tls  bool
}

type mailOptions struct {
	noTLS bool // offer no STARTTLS, and allow AUTH in clear
}

func newMailServer(t *testing.T, user, password string, mo mailOptions) *mailServer {
	t.Helper()
	ms := &mailServer{user: user, password: password}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{ms: ms, c: c}, nil
	}))
	s.Domain = "localhost"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.MaxMessageBytes = 32 << 20
	if mo.noTLS {
		s.AllowInsecureAuth = true
	} else {
		cert, roots := selfSigned(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ms.roots = roots
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = l.Addr().String()
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return ms
}

// tlsOption trusts the server's certificate.
func (ms *mailServer) tlsOption() Option {
	return WithTLSConfig(&tls.Config{RootCAs: ms.roots, MinVersion: tls.VersionTLS12})
}

func (ms *mailServer) received() ([]receivedMail, []mailAuth, int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]receivedMail(nil), ms.mails...), append([]mailAuth(nil), ms.auths...), ms.datas
}

type mailSession struct {
	ms     *mailServer
	c      *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *mailSession) tls() bool {
	_, ok := s.c.TLSConnectionState()
	return ok
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		ok := user == s.ms.user && password == s.ms.password
		s.ms.mu.Lock()
		s.ms.auths = append(s.ms.auths, mailAuth{user: user, tls: s.tls(), ok: ok})
		s.ms.mu.Unlock()
		if !ok {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	s.ms.datas++
	n := s.ms.datas
	s.ms.mu.Unlock()
	if s.ms.failData != nil {
		if err := s.ms.failData(n); err != nil {
			return err
		}
	}
	s.ms.mu.Lock()
	s.ms.mails = append(s.ms.mails, receivedMail{from: s.from, to: s.to, data: data, tls: s.tls()})
	s.ms.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hyperfork test mail server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// errTemporary is a 451 answer: "try again later".
var errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailbox busy, try again"}
