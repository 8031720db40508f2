package notify

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// DefaultMaxAttachment is how many gzipped bytes of attachments a mail may
// carry. 5 MiB, base64 included, stays under the 10 MiB that the common
// hosted mail services accept.
const DefaultMaxAttachment = 5 << 20

// smtpsPort is the port of SMTP over implicit TLS (RFC 8314); every other
// port speaks plain SMTP and must offer STARTTLS.
const smtpsPort = 465

// EmailSettings are what an Email channel needs.
type EmailSettings struct {
	// Server is host:port of the mail server; without a port, 587. Port
	// 465 is TLS from the first byte; any other port must offer STARTTLS,
	// which is required: the login and the log never cross in clear.
	Server string
	// From is the sender address, To the recipients.
	From string
	To   []string
	// Username and Password are the SMTP login; both empty: no AUTH.
	Username, Password string
	// MaxAttachment caps the gzipped attachments; 0: DefaultMaxAttachment.
	// Attachments that would pass it are left out and the mail links the
	// message's LogURL instead.
	MaxAttachment int64
}

// Email is a channel that mails each message: a plain text part and an HTML
// part with the same content, and the attachments (the test log) gzipped,
// as long as they fit under MaxAttachment.
//
// The Message-ID is derived from the message's delivery id, so the same
// event has the same Message-ID on every attempt and every run: SMTP cannot
// ask whether a mail was already accepted (an answer lost after DATA looks
// like a failure), but mail stores and clients that see the Message-ID
// twice keep one copy. Temporary failures (4xx, a dropped connection) are
// retried with backoff; a 5xx answer, a refused login or a certificate
// that does not verify is final.
type Email struct {
	s        EmailSettings
	host     string
	port     int
	o        *options
	redactor *exec.Redactor
}

var _ Channel = (*Email)(nil)

// WithTLSConfig sets the TLS configuration of the email channel, for a
// mail server whose certificate is signed by a private CA (RootCAs). The
// server name is always the configured host.
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) error {
		if c == nil {
			return configErrorf("notify: WithTLSConfig: nil config")
		}
		o.tlsConfig = c
		return nil
	}
}

// NewEmail returns an Email channel, or an ErrConfig error saying what to
// fix in s.
func NewEmail(s EmailSettings, opts ...Option) (*Email, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	host, port, err := splitServer(s.Server)
	if err != nil {
		return nil, err
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return nil, configErrorf("notify email: from %q is not a mail address; write e.g. hyperfork@example.com", s.From)
	}
	if len(s.To) == 0 {
		return nil, configErrorf("notify email: no recipients; list them in to")
	}
	for _, to := range s.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return nil, configErrorf("notify email: recipient %q is not a mail address", to)
		}
	}
	if (s.Username == "") != (s.Password == "") {
		return nil, configErrorf("notify email: a login needs both a username and a password; set both usernameEnv and passwordEnv, or neither")
	}
	if s.MaxAttachment < 0 {
		return nil, configErrorf("notify email: maxAttachment %d is negative", s.MaxAttachment)
	}
	if s.MaxAttachment == 0 {
		s.MaxAttachment = DefaultMaxAttachment
	}
	s.To = append([]string(nil), s.To...)
	return &Email{s: s, host: host, port: port, o: o, redactor: exec.NewRedactor(s.Password)}, nil
}

// splitServer reads host[:port].
func splitServer(server string) (string, int, error) {
	if server == "" {
		return "", 0, configErrorf("notify email: the mail server is empty; write smtp: host:port")
	}
	host, portStr, err := net.SplitHostPort(server)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return server, gomail.DefaultPortTLS, nil
		}
		return "", 0, configErrorf("notify email: mail server %q is not host:port", server)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, configErrorf("notify email: mail server %q is not host:port", server)
	}
	return host, port, nil
}

// Name returns "email host:port".
func (e *Email) Name() string { return "email " + net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// Send mails m to the recipients.
func (e *Email) Send(ctx context.Context, m Message) error {
	delivery := DeliveryID(m)
	mail, err := e.compose(m, delivery)
	if err != nil {
		return fmt.Errorf("%s: compose %s message: %w", e.Name(), m.Event, err)
	}
	return retry(ctx, e.o, e.Name(), m.Event, delivery, func(ctx context.Context) (time.Duration, error) {
		return 0, e.attempt(ctx, mail)
	}, smtpRetryable)
}

// attempt connects, secures the connection, logs in and sends, once.
func (e *Email) attempt(ctx context.Context, msg *gomail.Msg) error {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.o.tlsConfig != nil {
		tlsConf = e.o.tlsConfig.Clone()
	}
	tlsConf.ServerName = e.host
	opts := []gomail.Option{
		gomail.WithPort(e.port),
		gomail.WithTimeout(e.o.timeout),
		gomail.WithTLSConfig(tlsConf),
	}
	if e.port == smtpsPort {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if e.s.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(e.s.Username), gomail.WithPassword(e.s.Password))
	}
	c, err := gomail.NewClient(e.host, opts...)
	if err != nil {
		return &smtpError{err: errors.New(e.redactor.String(err.Error())), final: true}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		// The library's errors never quote the password, but a server's
		// answer might echo what it was sent; redact to be sure.
		return &smtpError{err: errors.New(e.redactor.String(err.Error())), final: !smtpRetryableCause(err)}
	}
	return nil
}

// smtpError is one failed attempt, its cause flattened to redacted text and
// its verdict kept.
type smtpError struct {
	err   error
	final bool
}

func (e *smtpError) Error() string { return e.err.Error() }
func (e *smtpError) Unwrap() error { return e.err }

func smtpRetryable(err error) bool {
	se, ok := errors.AsType[*smtpError](err)
	return ok && !se.final
}

// smtpRetryableCause says whether another attempt can help: a temporary
// answer (4xx) or a connection that failed or dropped. A permanent answer
// (5xx: a refused login, an unknown recipient) or a certificate that does
// not verify will be the same next time.
func smtpRetryableCause(err error) bool {
	if se, ok := errors.AsType[*gomail.SendError](err); ok {
		code := se.ErrorCode()
		switch {
		case se.IsTemp() || (code >= 400 && code < 500):
			return true
		case code >= 500:
			return false
		}
		// No code: the connection failed while sending.
		return se.Reason != gomail.ErrGetSender && se.Reason != gomail.ErrGetRcpts
	}
	if te, ok := errors.AsType[*textproto.Error](err); ok {
		return te.Code >= 400 && te.Code < 500
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return false
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return false
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return false
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// compose builds the mail for m.
func (e *Email) compose(m Message, delivery string) (*gomail.Msg, error) {
	v := newView(m)
	msg := gomail.NewMsg()
	if err := msg.From(e.s.From); err != nil {
		return nil, err
	}
	if err := msg.To(e.s.To...); err != nil {
		return nil, err
	}
	msg.Subject(v.Title)
	msg.SetMessageIDWithValue(MessageID(delivery, e.s.From))
	t := m.Time
	if t.IsZero() {
		t = e.o.now()
	}
	msg.SetDateWithValue(t)
	msg.SetUserAgent("hyperfork")
	msg.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	msg.SetGenHeader(gomail.Header(HeaderEvent), m.Event)
	msg.SetGenHeader(gomail.Header(HeaderDelivery), delivery)

	var notes []string
	budget := e.s.MaxAttachment
	for _, a := range m.Attachments {
		name, data, err := gzipped(a)
		if err != nil {
			return nil, fmt.Errorf("gzip %s: %w", a.Name, err)
		}
		if int64(len(data)) > budget {
			note := fmt.Sprintf("%s (%s gzipped) is over the %s limit for attachments, so it is not attached", a.Name, sizeString(int64(len(data))), sizeString(e.s.MaxAttachment))
			if m.LogURL != "" {
				note += ": " + m.LogURL
			} else {
				note += "; it is kept with the run's logs"
			}
			notes = append(notes, note)
			continue
		}
		budget -= int64(len(data))
		if err := msg.AttachReader(name, bytes.NewReader(data), gomail.WithFileContentType("application/gzip")); err != nil {
			return nil, err
		}
	}
	v.Notes = notes
	var html strings.Builder
	if err := emailHTML.Execute(&html, v); err != nil {
		return nil, err
	}
	msg.SetBodyString(gomail.TypeTextPlain, v.plain())
	msg.AddAlternativeString(gomail.TypeTextHTML, html.String())
	return msg, nil
}

// MessageID returns the Message-ID (without angle brackets) that the email
// channel gives the event with this delivery id, sent from from: the same
// for every copy, in the sender's domain so that it is globally unique.
func MessageID(delivery, from string) string {
	domain := "hyperfork.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	return "hyperfork." + delivery + "@" + domain
}

// gzipped returns the attachment's name and bytes as mailed: gzipped, with
// ".gz" added, unless it already is gzip.
func gzipped(a Attachment) (string, []byte, error) {
	if bytes.HasPrefix(a.Data, []byte{0x1f, 0x8b}) {
		return a.Name, a.Data, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Name = a.Name
	if _, err := zw.Write(a.Data); err != nil {
		return "", nil, err
	}
	if err := zw.Close(); err != nil {
		return "", nil, err
	}
	return a.Name + ".gz", buf.Bytes(), nil
}

// sizeString writes n bytes for people: 812 B, 3.4 KiB, 12.0 MiB.
func sizeString(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// emailHTML is the HTML part. Styles are inline: mail clients drop <style>.
var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif; font-size: 14px;">
<h2 style="font-size: 16px;">{{.Title}}</h2>
{{- if .Facts}}
<table style="border-collapse: collapse;">
{{- range .Facts}}
<tr><td style="padding: 2px 12px 2px 0; color: #555;">{{.Label}}</td><td style="padding: 2px 0;">
{{- if .Link}}<a href="{{.Value}}">{{.Value}}</a>{{else if .Code}}<code>{{.Value}}</code>{{else}}{{.Value}}{{end -}}
</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .Failures}}
<h3 style="font-size: 14px;">New failures ({{.FailureCount}})</h3>
<ul>
{{- range .Failures}}
<li><code>{{.Test}}</code>{{if .Message}}<br>{{.Message}}{{end}}
{{- if .Suspects}}
<ul>
{{- range .Suspects}}
<li><code>{{printf "%.12s" .Hash}}</code> {{.Side}}: {{.Subject}}</li>
{{- end}}
{{- if .MoreSuspects}}<li>and {{.MoreSuspects}} more</li>{{end}}
</ul>
{{- end}}
</li>
{{- end}}
{{- if .MoreFailures}}<li>and {{.MoreFailures}} more</li>{{end}}
</ul>
{{- end}}
{{- if .Text}}
<pre style="background: #f6f8fa; padding: 8px;">{{.Text}}</pre>
{{- end}}
{{- range .Notes}}
<p>{{.}}</p>
{{- end}}
<p style="color: #888; font-size: 12px;">hyperfork, delivery {{.Delivery}}</p>
</body></html>
`))
