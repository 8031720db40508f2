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
	TypeEmail         = "email"          // planned
	TypeGitHubSummary = "github-summary" // planned
)

// Spec describes one channel as branches.yaml's notify list does. It mirrors
// the config package's type without importing it, so that notify stays a
// leaf that config (and its tests) may use.
type Spec struct {
	// Type is file, webhook or slack.
	Type string
	// Dir is the folder of a file channel, already resolved against the
	// config file's folder.
	Dir string
	// URLEnv names the environment variable holding the URL of a webhook or
	// Slack channel. The URL is a secret (a Slack URL is a credential), so
	// it never appears in the config file.
	URLEnv string
	// SecretEnv names the variable holding a webhook's HMAC secret; empty:
	// the webhook is not signed.
	SecretEnv string
	// Events limits the channel to these events or "<stage>.*" patterns;
	// empty: all events.
	Events []string
}

// New builds a Notifier from specs, reading secrets through getenv (nil
// means os.Getenv; tests pass a map's lookup). It reports every invalid spec
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
		url, err := lookup(s.Type, "urlEnv", s.URLEnv, getenv, "the Slack incoming-webhook URL")
		if err != nil {
			return nil, err
		}
		if s.SecretEnv != "" {
			return nil, configErrorf("notify slack: secretEnv is not used by Slack; remove it")
		}
		o.redactor.Add(url)
		return NewSlack(url, opts...)
	case TypeEmail, TypeGitHubSummary:
		return nil, fmt.Errorf("notify %s: channel type %q is %w; use %s, %s or %s",
			s.Type, s.Type, ErrUnsupported, TypeFile, TypeWebhook, TypeSlack)
	case "":
		return nil, configErrorf("notify: a channel has no type; use %s, %s or %s", TypeFile, TypeWebhook, TypeSlack)
	default:
		return nil, configErrorf("notify: unknown channel type %q; use %s, %s or %s", s.Type, TypeFile, TypeWebhook, TypeSlack)
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
