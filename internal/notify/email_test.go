package notify

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

const (
	testSMTPUser     = "hyperfork-bot"
	testSMTPPassword = "smtp-Pa55-word-that-must-never-leak"
)

// mimePart is one leaf part of a received mail, its transfer encoding
// undone.
type mimePart struct {
	contentType string
	filename    string
	data        []byte
}

// parseMail reads a mail as a mail client would and returns its header and
// leaf parts, walking nested multiparts.
func parseMail(t *testing.T, raw []byte) (mail.Header, []mimePart) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read mail: %v\n%s", err, raw)
	}
	var parts []mimePart
	var walk func(contentType, encoding, disposition string, body io.Reader)
	walk = func(contentType, encoding, disposition string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			t.Fatalf("content type %q: %v", contentType, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				// multipart undoes quoted-printable itself and drops the header.
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p)
			}
		}
		if strings.EqualFold(encoding, "base64") {
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		data, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("part %s: %v", mt, err)
		}
		var filename string
		if disposition != "" {
			if _, dp, err := mime.ParseMediaType(disposition); err == nil {
				filename = dp["filename"]
			}
		}
		parts = append(parts, mimePart{contentType: mt, filename: filename, data: data})
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body)
	return msg.Header, parts
}

func partOf(parts []mimePart, contentType string) *mimePart {
	for i := range parts {
		if parts[i].contentType == contentType {
			return &parts[i]
		}
	}
	return nil
}

// TestEmailSTARTTLSAuthDeliversBothPartsAndGzippedLog builds the channel
// from a Spec as the pipeline does and sends a failed candidate's message
// to a real SMTP server that allows AUTH only after STARTTLS.
func TestEmailSTARTTLSAuthDeliversBothPartsAndGzippedLog(t *testing.T) {
	ms := newMailServer(t, testSMTPUser, testSMTPPassword, mailOptions{})
	var logs bytes.Buffer
	n, err := New([]Spec{{
		Type: TypeEmail, SMTP: ms.addr, From: "Hyperfork <hyperfork@example.com>", To: []string{"platform@example.com", "oncall@example.com"},
		UsernameEnv: "SMTP_USER", PasswordEnv: "SMTP_PASSWORD",
	}}, env(map[string]string{"SMTP_USER": testSMTPUser, "SMTP_PASSWORD": testSMTPPassword}),
		ms.tlsOption(), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	log := testLog(300 << 10)
	m := failedMessage(log)
	if err := n.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	mails, auths, _ := ms.received()
	if len(mails) != 1 {
		t.Fatalf("server received %d mails, want 1", len(mails))
	}
	if len(auths) != 1 || !auths[0].ok || !auths[0].tls || auths[0].user != testSMTPUser {
		t.Errorf("AUTH attempts %+v, want one good login over TLS", auths)
	}
	got := mails[0]
	if !got.tls || got.from != "hyperfork@example.com" || strings.Join(got.to, ",") != "platform@example.com,oncall@example.com" {
		t.Errorf("envelope from %q to %v (tls %v)", got.from, got.to, got.tls)
	}
	h, parts := parseMail(t, got.data)
	if id, want := h.Get("Message-Id"), "<"+MessageID(DeliveryID(m), "hyperfork@example.com")+">"; id != want {
		t.Errorf("Message-ID %q, want %q", id, want)
	}
	if !strings.HasSuffix(h.Get("Message-Id"), "@example.com>") {
		t.Errorf("Message-ID %q is not in the sender's domain", h.Get("Message-Id"))
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if subject != m.Title {
		t.Errorf("Subject %q, want %q", subject, m.Title)
	}
	if h.Get(HeaderEvent) != EventTestFailed || h.Get(HeaderDelivery) != DeliveryID(m) {
		t.Errorf("headers %s=%q %s=%q", HeaderEvent, h.Get(HeaderEvent), HeaderDelivery, h.Get(HeaderDelivery))
	}
	text, html := partOf(parts, "text/plain"), partOf(parts, "text/html")
	if text == nil || html == nil {
		t.Fatalf("parts %v: want text/plain and text/html", parts)
	}
	for _, want := range []string{
		m.NewFailures[0].Test, "timed out waiting for the condition", "111111111111  upstream  kube-proxy: reorder <nft> rules & chains",
		"222222222222  carry", "410 passed, 2 failed, 1 flaky, 37 skipped", "no: 2 new failures", m.Image, m.ForkCommit, m.LogURL,
		"New failures (2)", "Rerun: go tool mage release", DeliveryID(m),
	} {
		if !bytes.Contains(text.data, []byte(want)) {
			t.Errorf("text part lacks %q:\n%s", want, text.data)
		}
	}
	for _, want := range []string{"<code>" + m.NewFailures[0].Test + "</code>", "kube-proxy: reorder &lt;nft&gt; rules &amp; chains", `<a href="` + m.LogURL + `">`, "carry: our iptables patch"} {
		if !bytes.Contains(html.data, []byte(want)) {
			t.Errorf("HTML part lacks %q:\n%s", want, html.data)
		}
	}
	att := partOf(parts, "application/gzip")
	if att == nil || att.filename != "test.log.gz" {
		t.Fatalf("no gzipped test.log attachment in %v", parts)
	}
	zr, err := gzip.NewReader(bytes.NewReader(att.data))
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, log) {
		t.Errorf("attachment gunzips to %d bytes that differ from the %d-byte log", len(back), len(log))
	}
	if strings.Contains(logs.String(), testSMTPPassword) || bytes.Contains(got.data, []byte(testSMTPPassword)) {
		t.Error("the SMTP password reached a log or the mail")
	}
}

func TestEmailLogOverMaxAttachmentIsLinkedNotAttached(t *testing.T) {
	ms := newMailServer(t, testSMTPUser, testSMTPPassword, mailOptions{})
	e, err := NewEmail(EmailSettings{Server: ms.addr, From: "hyperfork@example.com", To: []string{"platform@example.com"},
		Username: testSMTPUser, Password: testSMTPPassword, MaxAttachment: 16 << 10}, ms.tlsOption())
	if err != nil {
		t.Fatal(err)
	}
	log := make([]byte, 64<<10) // random bytes: gzip cannot bring them under 16 KiB
	_, _ = rand.Read(log)
	m := failedMessage(log)
	if err := e.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	mails, _, _ := ms.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	_, parts := parseMail(t, mails[0].data)
	if att := partOf(parts, "application/gzip"); att != nil {
		t.Errorf("a %d-byte attachment was sent over the 16 KiB limit", len(att.data))
	}
	text, html := partOf(parts, "text/plain"), partOf(parts, "text/html")
	// Random bytes gzip to a little more than themselves.
	want := " KiB gzipped) is over the 16.0 KiB limit for attachments, so it is not attached: " + m.LogURL
	if text == nil || !bytes.Contains(text.data, []byte(want)) {
		t.Errorf("text part lacks %q:\n%s", want, text.data)
	}
	if html == nil || !bytes.Contains(html.data, []byte("is over the 16.0 KiB limit")) {
		t.Error("HTML part lacks the note about the log")
	}
}

// TestEmailRetriesTemporaryFailureWithSameMessageID: a 451 at DATA is
// retried, and the retry is the same mail, so a store that kept the first
// copy after all can drop the second.
func TestEmailRetriesTemporaryFailureWithSameMessageID(t *testing.T) {
	ms := newMailServer(t, testSMTPUser, testSMTPPassword, mailOptions{})
	ms.failData = func(n int) error {
		if n == 1 {
			return errTemporary
		}
		return nil
	}
	e, err := NewEmail(EmailSettings{Server: ms.addr, From: "hyperfork@example.com", To: []string{"platform@example.com"},
		Username: testSMTPUser, Password: testSMTPPassword}, append(fast(3), ms.tlsOption())...)
	if err != nil {
		t.Fatal(err)
	}
	m := failedMessage(testLog(1000))
	if err := e.Send(background(t), m); err != nil {
		t.Fatalf("Send after a 451: %v", err)
	}
	mails, _, datas := ms.received()
	if datas != 2 || len(mails) != 1 {
		t.Fatalf("server saw %d DATA and kept %d mails, want 2 and 1", datas, len(mails))
	}
	h, _ := parseMail(t, mails[0].data)
	if h.Get("Message-Id") != "<"+MessageID(DeliveryID(m), "hyperfork@example.com")+">" {
		t.Errorf("retry has Message-ID %q", h.Get("Message-Id"))
	}
	// A second run announcing the same event sends the same Message-ID.
	if err := e.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	mails, _, _ = ms.received()
	h2, _ := parseMail(t, mails[1].data)
	if h2.Get("Message-Id") != h.Get("Message-Id") {
		t.Errorf("the same event got Message-IDs %q and %q", h.Get("Message-Id"), h2.Get("Message-Id"))
	}
}

func TestEmailWrongPasswordIsFinalAndNeverShown(t *testing.T) {
	ms := newMailServer(t, testSMTPUser, "the-right-password", mailOptions{})
	var logs bytes.Buffer
	e, err := NewEmail(EmailSettings{Server: ms.addr, From: "hyperfork@example.com", To: []string{"platform@example.com"},
		Username: testSMTPUser, Password: testSMTPPassword},
		append(fast(3), ms.tlsOption(), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))...)
	if err != nil {
		t.Fatal(err)
	}
	err = e.Send(background(t), failedMessage(nil))
	if err == nil {
		t.Fatal("Send succeeded with a wrong password")
	}
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "1 of 3 attempts") || !strings.Contains(err.Error(), "535") {
		t.Errorf("error %q: want ErrDelivery, a 535 and no retry", err)
	}
	if _, auths, _ := ms.received(); len(auths) != 1 || auths[0].ok {
		t.Errorf("AUTH attempts %+v, want one refused", auths)
	}
	if strings.Contains(err.Error(), testSMTPPassword) || strings.Contains(logs.String(), testSMTPPassword) {
		t.Errorf("the password is in the error or the log:\n%v\n%s", err, logs.String())
	}
	if !strings.HasPrefix(err.Error(), e.Name()+": ") {
		t.Errorf("error %q does not start with the channel's name", err)
	}
}

// TestEmailRefusesServerWithoutSTARTTLS: a server that offers no STARTTLS
// never sees the login.
func TestEmailRefusesServerWithoutSTARTTLS(t *testing.T) {
	ms := newMailServer(t, testSMTPUser, testSMTPPassword, mailOptions{noTLS: true})
	e, err := NewEmail(EmailSettings{Server: ms.addr, From: "hyperfork@example.com", To: []string{"platform@example.com"},
		Username: testSMTPUser, Password: testSMTPPassword}, fast(2)...)
	if err != nil {
		t.Fatal(err)
	}
	err = e.Send(background(t), failedMessage(nil))
	if err == nil {
		t.Fatal("Send succeeded over a connection without TLS")
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("error %q does not say STARTTLS is missing", err)
	}
	if mails, auths, _ := ms.received(); len(auths) != 0 || len(mails) != 0 {
		t.Errorf("server got %d logins and %d mails in clear", len(auths), len(mails))
	}
	if strings.Contains(err.Error(), testSMTPPassword) {
		t.Error("the password is in the error")
	}
}

func TestNewEmailRejectsBadSettings(t *testing.T) {
	for name, s := range map[string]EmailSettings{
		"server":   {Server: "smtp.example.com:smtp", From: "a@example.com", To: []string{"b@example.com"}},
		"from":     {Server: "smtp.example.com:587", From: "not an address", To: []string{"b@example.com"}},
		"to":       {Server: "smtp.example.com:587", From: "a@example.com"},
		"login":    {Server: "smtp.example.com:587", From: "a@example.com", To: []string{"b@example.com"}, Username: "u"},
		"negative": {Server: "smtp.example.com:587", From: "a@example.com", To: []string{"b@example.com"}, MaxAttachment: -1},
	} {
		if _, err := NewEmail(s); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: error %v, want ErrConfig", name, err)
		}
	}
	e, err := NewEmail(EmailSettings{Server: "smtp.example.com", From: "a@example.com", To: []string{"b@example.com"}})
	if err != nil || e.Name() != "email smtp.example.com:587" {
		t.Errorf("a server without a port: %v, %v; want port 587", e, err)
	}
}
