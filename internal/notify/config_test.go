package notify

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNewMissingWebhookURL(t *testing.T) {
	_, err := New([]Spec{{Type: TypeWebhook, URLEnv: "HYPERFORK_WEBHOOK_URL"}}, env(nil))
	const want = "notify webhook: environment variable HYPERFORK_WEBHOOK_URL is empty; set it to the receiver's URL"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("error %v: want errors.Is(err, ErrConfig)", err)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New([]Spec{
		{Type: TypeFile},
		{Type: TypeWebhook, URLEnv: "URL", SecretEnv: "SECRET"},
		{Type: TypeSlack},
		{Type: TypeSlack, TokenEnv: "SLACK_TOKEN"},
		{Type: TypeSlack, URLEnv: "URL", TokenEnv: "SLACK_TOKEN", Channel: "#builds"},
		{Type: TypeEmail},
		{Type: TypeEmail, SMTP: "smtp.example.com:587", From: "hyperfork@example.com", To: []string{"team@example.com"}, UsernameEnv: "SMTP_USER", PasswordEnv: "SMTP_PASSWORD"},
		{Type: "pager"},
		{Type: ""},
		{Type: TypeFile, Dir: "x", Events: []string{"sync.confict"}},
	}, env(map[string]string{"URL": "https://example.com/hook", "SLACK_TOKEN": "xoxb-1-2-token", "SMTP_USER": "hyperfork"}))
	if err == nil {
		t.Fatal("New accepted invalid specs")
	}
	msg := err.Error()
	for _, want := range []string{
		"notify file: dir is empty",
		"notify webhook: environment variable SECRET is empty; set it to the shared secret",
		"notify slack: urlEnv is empty",
		"notify slack: channel is empty",
		"notify slack: set either urlEnv (an incoming webhook) or tokenEnv and channel (a bot), not both",
		"notify email: the mail server is empty",
		"notify email: environment variable SMTP_PASSWORD is empty; set it to the SMTP password",
		`notify: unknown channel type "pager"`,
		"notify: a channel has no type",
		`notify file: unknown event "sync.confict"; known events: sync.conflict`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("error %v: want ErrConfig in the chain", err)
	}
	if strings.Contains(msg, "example.com/hook") || strings.Contains(msg, "xoxb-") {
		t.Errorf("error shows a secret read from the environment: %s", msg)
	}
}

// TestNewEndToEnd builds every supported channel from specs and delivers one
// message to real receivers.
func TestNewEndToEnd(t *testing.T) {
	const secret = "webhook-shared-secret"
	hook := newReceiver(t, nil)
	slack := newReceiver(t, func(n int, w http.ResponseWriter) { _, _ = w.Write([]byte("ok")) })
	dir := t.TempDir()
	n, err := New([]Spec{
		{Type: TypeFile, Dir: dir},
		{Type: TypeWebhook, URLEnv: "HYPERFORK_WEBHOOK_URL", SecretEnv: "HYPERFORK_WEBHOOK_SECRET"},
		{Type: TypeSlack, URLEnv: "SLACK_URL"},
	}, env(map[string]string{
		"HYPERFORK_WEBHOOK_URL":    hook.URL + "/hook",
		"HYPERFORK_WEBHOOK_SECRET": secret,
		"SLACK_URL":                slack.URL + "/services/T000/B000/XXXXXXXXXXXXXXXX",
	}), fast(2)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(n.Channels()); got != 3 {
		t.Fatalf("%d channels, want 3", got)
	}
	m := conflictMessage()
	// A message that quotes the webhook URL has it redacted everywhere.
	m.Text += "debug: posting to " + hook.URL + "/hook\n"
	if err := n.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	hr := hook.requests()
	if len(hr) != 1 || hr[0].header.Get(HeaderSignature) != Sign([]byte(secret), hr[0].body) {
		t.Fatalf("webhook receiver got %d requests, or a bad signature", len(hr))
	}
	var got Message
	if err := json.Unmarshal(hr[0].body, &got); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.Text, hook.URL+"/hook") || !strings.Contains(got.Text, "[REDACTED]") {
		t.Errorf("webhook URL not redacted from the text: %q", got.Text)
	}
	if sr := slack.requests(); len(sr) != 1 || !strings.Contains(string(sr[0].body), `"text":`) {
		t.Errorf("Slack receiver got %v", sr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("file channel wrote %d files, want 1", len(entries))
	}
}
