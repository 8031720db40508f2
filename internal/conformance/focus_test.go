package conformance

import (
	"regexp"
	"strings"
	"testing"
)

func TestFocusRegexQuotesEveryMetacharacter(t *testing.T) {
	specs := []string{
		`[It] [sig-cli] Kubectl client Guestbook application should create and stop a working application  [Conformance]`,
		`[It] [sig-network] Services should serve endpoints on same port and different protocols (TCP|UDP) $HOME ^x? a+b {1,2} \d [Conformance]`,
		`[sig-storage] no leaf type given`,
		`[It] [sig-cli] Kubectl client Guestbook application should create and stop a working application  [Conformance]`, // twice
	}
	focus, err := FocusRegex(specs)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(focus)
	for _, s := range specs {
		text := "Kubernetes e2e suite " + strings.TrimPrefix(s, "[It] ")
		if !re.MatchString(text) {
			t.Errorf("%q does not match %q", focus, text)
		}
	}
	for _, other := range []string{
		"Kubernetes e2e suite [sig-network] Services should serve endpoints on same port and different protocols (TCP) $HOME ^x? a+b {1,2} \\d [Conformance]",
		"Kubernetes e2e suite [sig-network] Services should serve endpoints on same port and different protocols TCP|UDP $HOME ^x? a+b {1,2} \\d [Conformance]",
		"Kubernetes e2e suite [sig-storage] no leaf type given, and more",
		"Kubernetes e2e suite x[sig-storage] no leaf type given",
		"Kubernetes e2e suite [sig-apps] Deployment works [Conformance]",
	} {
		if re.MatchString(other) {
			t.Errorf("%q also matches %q", focus, other)
		}
	}
	if strings.Count(focus, "Guestbook") != 1 {
		t.Errorf("a spec named twice is in %q twice", focus)
	}
	if again, _ := FocusRegex([]string{specs[2], specs[1], specs[0]}); again != focus {
		t.Errorf("the regex depends on the order of the specs: %q, %q", again, focus)
	}
}

func TestFocusRegexRefusesWhatCannotBeRetried(t *testing.T) {
	for name, specs := range map[string][]string{
		"none":     nil,
		"empty":    {"[It] a", "  "},
		"too many": {strings.Repeat("x", maxFocus)},
	} {
		if focus, err := FocusRegex(specs); err == nil {
			t.Errorf("%s: FocusRegex = %q, want an error", name, focus)
		}
	}
}
