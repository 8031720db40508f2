package config

import (
	"slices"
	"testing"
)

func TestNotifyChannelsOfValidFull(t *testing.T) {
	p, err := Load("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var bot, email *Notifier
	for i, n := range p.Notify {
		switch {
		case n.Type == NotifySlack && n.TokenEnv != "":
			bot = &p.Notify[i]
		case n.Type == NotifyEmail:
			email = &p.Notify[i]
		}
	}
	if bot == nil || bot.TokenEnv != "SLACK_BOT_TOKEN" || bot.Channel != "#builds" {
		t.Errorf("slack bot notifier %+v", bot)
	}
	if email == nil || email.MaxAttachmentBytes() != 10<<20 {
		t.Errorf("email notifier %+v: want maxAttachment 10 MiB", email)
	}
	env := map[string]string{"SLACK_BOT_TOKEN": "xoxb-secret-token"}
	if !slices.Contains(p.Secrets(func(k string) string { return env[k] }), "xoxb-secret-token") {
		t.Error("Secrets does not include the Slack bot token, so it would not be redacted")
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "5MiB": 5 << 20, "512KiB": 512 << 10, "10MB": 10_000_000, "1GiB": 1 << 30, "1048576": 1 << 20, "2 MiB": 2 << 20, "300B": 300,
	} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"5 megs", "0", "-1MiB", "1.5MiB", "5mib", "99999999999GiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) accepted", in)
		}
	}
}
