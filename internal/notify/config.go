package notify

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Channel types a Spec may name.
const (
	TypeFile          = "file"
	TypeWebhook       = "webhook"
	TypeSlack         = "slack"
	TypeEmail         = "email"
	TypeGitHubSummary = "github-summary"
)

var types = []string{TypeFile, TypeWebhook, TypeSlack, TypeEmail, TypeGitHubSummary}

// Spec describes one channel as branches.yaml's notify list does. It mirrors
// the config package's type without importing it, so that notify stays a
// leaf that config (and its tests) may use.
type Spec struct {
	// Type is one of the Type constants.
	Type string
	// Dir is the folder of a file channel, already resolved against the
	// config file's folder.
	Dir string
	// URLEnv names the environment variable holding the URL of a webhook or
	// a Slack incoming webhook. The URL is a secret (a Slack URL is a
	// credential), so it never appears in the config file.
	URLEnv string
	// SecretEnv names the variable holding a webhook's HMAC secret; empty:
	// the webhook is not signed.
	SecretEnv string
	// TokenEnv names the variable holding a Slack bot token (xoxb-…); with
	// Channel, it makes a slack channel post as an app (SlackBot) instead
	// of through an incoming webhook (URLEnv).
	TokenEnv string
	// Channel is the Slack channel id (C0123ABCD) or name (#builds) for a
	// bot token.
	Channel string
	// SMTP is the mail server as host:port for type email (see
	// EmailSettings.Server); From and To are the addresses.
	SMTP string
	From string
	To   []string
	// UsernameEnv and PasswordEnv name the variables holding the SMTP
	// login; both empty: no AUTH.
	UsernameEnv string
	PasswordEnv string
	// MaxAttachment caps an email's gzipped attachments in bytes; 0:
	// DefaultMaxAttachment.
	MaxAttachment int64
	// Events limits the channel to these events or "<stage>.*" patterns;
	// empty: all events.
	Events []string
}

// New builds a Notifier from specs, reading secrets (and, for
// github-summary, $GITHUB_STEP_SUMMARY) through getenv (nil means
// os.Getenv; tests pass a map's lookup). It reports every invalid spec
// at once, each error saying what to set, and builds nothing if any is
// invalid, so a run never starts with half of its channels. The URLs and
// secrets it reads are added to the Notifier's redactor, so that a message
// that happens to quote them is cleaned too.
func New(specs []Spec, getenv func(string) string, opts ...Option) (*Notifier, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	// Channels share o, with the redactor the caller passed or the default.
	opts = append(opts[:len(opts):len(opts)], WithRedactor(o.redactor))
	var (
		channels []Channel
		errs     []error
	)
	for _, s := range specs {
		ch, err := build(s, getenv, o, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkEvents(s); err != nil {
			errs = append(errs, err)
			continue
		}
		channels = append(channels, Filter(ch, s.Events...))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewNotifier(channels, opts...)
}

// build makes the channel of one spec.
func build(s Spec, getenv func(string) string, o *options, opts []Option) (Channel, error) {
	switch s.Type {
	case TypeFile:
		if s.Dir == "" {
			return nil, configErrorf("notify file: dir is empty; set it to the folder for the message files")
		}
		return NewFile(s.Dir)
	case TypeWebhook:
		url, err := lookup(s.Type, "urlEnv", s.URLEnv, getenv, "the receiver's URL")
		if err != nil {
			return nil, err
		}
		var secret string
		if s.SecretEnv != "" {
			if secret, err = lookup(s.Type, "secretEnv", s.SecretEnv, getenv, "the shared secret, or remove secretEnv to send unsigned"); err != nil {
				return nil, err
			}
		}
		o.redactor.Add(url, secret)
		return NewWebhook(url, secret, opts...)
	case TypeSlack:
		if s.SecretEnv != "" {
			return nil, configErrorf("notify slack: secretEnv is not used by Slack; remove it")
		}
		if s.TokenEnv != "" || s.Channel != "" {
			if s.URLEnv != "" {
				return nil, configErrorf("notify slack: set either urlEnv (an incoming webhook) or tokenEnv and channel (a bot), not both")
			}
			token, err := lookup(s.Type, "tokenEnv", s.TokenEnv, getenv, "the Slack bot token (xoxb-…)")
			if err != nil {
				return nil, err
			}
			o.redactor.Add(token)
			return NewSlackBot(token, s.Channel, opts...)
		}
		url, err := lookup(s.Type, "urlEnv", s.URLEnv, getenv, "the Slack incoming-webhook URL (or set tokenEnv and channel to post as an app)")
		if err != nil {
			return nil, err
		}
		o.redactor.Add(url)
		return NewSlack(url, opts...)
	case TypeEmail:
		es := EmailSettings{Server: s.SMTP, From: s.From, To: s.To, MaxAttachment: s.MaxAttachment}
		if s.UsernameEnv != "" || s.PasswordEnv != "" {
			var err error
			if es.Username, err = lookup(s.Type, "usernameEnv", s.UsernameEnv, getenv, "the SMTP user name"); err != nil {
				return nil, err
			}
			if es.Password, err = lookup(s.Type, "passwordEnv", s.PasswordEnv, getenv, "the SMTP password"); err != nil {
				return nil, err
			}
			o.redactor.Add(es.Password)
		}
		return NewEmail(es, opts...)
	case TypeGitHubSummary:
		return NewGitHubSummary(strings.TrimSpace(getenv(EnvGitHubStepSummary)), opts...)
	case "":
		return nil, configErrorf("notify: a channel has no type; use one of %s", strings.Join(types, ", "))
	default:
		return nil, configErrorf("notify: unknown channel type %q; use one of %s", s.Type, strings.Join(types, ", "))
	}
}

// lookup reads the environment variable named by a spec field.
func lookup(typ, field, name string, getenv func(string) string, what string) (string, error) {
	if name == "" {
		return "", configErrorf("notify %s: %s is empty; name the environment variable that holds %s",
			typ, field, what)
	}
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return "", configErrorf("notify %s: environment variable %s is empty; set it to %s",
			typ, name, what)
	}
	return v, nil
}

// checkEvents rejects an event filter that would never match, which is
// almost always a typo that would silence the channel.
func checkEvents(s Spec) error {
	var bad []string
	for _, e := range s.Events {
		if !ValidEventFilter(e) {
			bad = append(bad, fmt.Sprintf("%q", e))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return configErrorf("notify %s: unknown event %s; known events: %s (or <stage>.*)",
		s.Type, strings.Join(bad, ", "), strings.Join(knownEvents, ", "))
}
