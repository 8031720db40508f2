package conformance

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// maxFocus bounds the focus regex: Linux refuses a single argument or
// environment variable longer than 128 KiB (MAX_ARG_STRLEN), and a retry
// of that many specs is a broken build, not a flake hunt.
const maxFocus = 100 << 10

// FocusRegex returns a ginkgo focus regex that matches exactly the named
// specs and no other. Names are JUnit testcase names as Kubernetes writes
// them: a leading "[It] " (the leaf node type ginkgo adds) is dropped, the
// rest is the spec's full text, quoted literally.
//
// Ginkgo matches a focus regex against the suite's description, a space
// and the spec's full text, so the regex is anchored at the end and
// starts at a space: "[sig-apps] Deployment works" does not also select
// "[sig-apps] Deployment works well", nor a spec that merely contains it.
func FocusRegex(specs []string) (string, error) {
	var names []string
	for _, s := range specs {
		s = strings.TrimPrefix(s, "[It] ")
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("retry: an empty spec name in %q", specs)
		}
		names = append(names, regexp.QuoteMeta(s))
	}
	if len(names) == 0 {
		return "", errors.New("retry: no specs to retry")
	}
	slices.Sort(names)
	names = slices.Compact(names)
	re := `\s(?:` + strings.Join(names, "|") + `)$`
	if len(re) > maxFocus {
		return "", fmt.Errorf("retry: the focus regex for %d specs is %d bytes, more than a command line takes (%d): too many failures to retry one by one", len(names), len(re), maxFocus)
	}
	return re, nil
}
