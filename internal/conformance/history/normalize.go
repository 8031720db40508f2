package history

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits of a normalised message: a failure's head says what went wrong,
// and a message of megabytes kept for ever, once per cluster per month,
// would be most of the history.
const (
	normalizeInput = 64 << 10
	maxMessage     = 4 << 10
)

// The random alphabet of Kubernetes' generated names
// (k8s.io/apimachinery/pkg/util/rand: no vowels, no 0, 1, 3).
const safeAlphabet = "[bcdfghjklmnpqrstvwxz2456789]"

// rule is one rewrite of a volatile part.
type rule struct {
	re   *regexp.Regexp
	repl string
	keep func(match string) bool // when set and true, the match stays
}

// rules run in this order: times before anything that looks at digits and
// colons, UIDs before the suffixes they contain, addresses before ports,
// generated names before the hex IDs their hashes look like.
var rules = []rule{
	// Colour codes (their ESC became U+FFFD when the JUnit was read).
	{re: regexp.MustCompile(`(?:\x1b|\x{FFFD})\[[0-9;]*m`), repl: ""},
	// 2026-01-15T03:19:00.123Z, 2026-01-15 03:19:00.123 +0000 UTC m=+1.2
	{re: regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?: [+-]\d{4})?(?: [A-Z]{2,5})?(?: m=[+-]\d+\.\d+)?`), repl: "<time>"},
	// ginkgo's "@ 01/15/26 03:21:07.482"
	{re: regexp.MustCompile(`\b\d{2}/\d{2}/\d{2,4} \d{2}:\d{2}:\d{2}(?:\.\d+)?`), repl: "<time>"},
	// klog's "I0115 03:19:00.091823      18 util.go:453]": time and thread
	{re: regexp.MustCompile(`\b([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ `), repl: "$1<time> <pid> "},
	// Go's time.Date(2026, time.January, 15, 3, 20, 11, 0, time.Local)
	{re: regexp.MustCompile(`time\.Date\([^)]*\)`), repl: "time.Date(<time>)"},
	{re: regexp.MustCompile(`\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b`), repl: "<time>"},
	{re: regexp.MustCompile(`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`), repl: "<uid>"},
	// IPv6, full or with "::"; kept unless it holds a digit and two colons.
	{re: regexp.MustCompile(`(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?:\b[0-9a-f]{1,4}:)*(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:)*(?:[0-9a-f]{1,4}\b)?`), repl: "<ip>",
		keep: func(m string) bool { return strings.Count(m, ":") < 2 || !strings.ContainsAny(m, "0123456789") }},
	{re: regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`), repl: "<ip>"},
	// Source lines move with every change to the file.
	{re: regexp.MustCompile(`\.go:\d+\b`), repl: ".go:<n>"},
	// Ports after an address or a host name with a dot or a hyphen; a
	// struct field such as Replicas:2 has neither.
	{re: regexp.MustCompile(`(<ip>\]?|\blocalhost|\b[a-zA-Z0-9][a-zA-Z0-9-]*[-.][a-zA-Z0-9.-]*[a-zA-Z0-9]):\d{2,5}\b`), repl: "$1:<port>"},
	{re: regexp.MustCompile(`(?i)\b((?:node|host|target|container)?port)([: =]+)\d{2,5}\b`), repl: "$1$2<port>"},
	// Generated names: ReplicaSet pod-template hash then the random
	// suffix (coredns-7db6d8ff4d-8x2kq), the random suffix alone
	// (webserver-pod-9xk2f, e2e-tests-foo-x7k2p).
	{re: regexp.MustCompile(`([a-z0-9])-` + safeAlphabet + `{6,10}-` + safeAlphabet + `{5}\b`), repl: "$1-<hash>-<rand>"},
	{re: regexp.MustCompile(`([a-z0-9])-` + safeAlphabet + `{5}\b`), repl: "$1-<rand>"},
	{re: regexp.MustCompile(`\b0x[0-9a-fA-F]+\b`), repl: "0x<hex>"},
	// Digests, container IDs, commits: hex of 8 or more with a digit and
	// a letter.
	{re: regexp.MustCompile(`\b(?:sha256:)?[0-9a-f]{8,}\b`), repl: "<hex>",
		keep: func(m string) bool {
			m = strings.TrimPrefix(m, "sha256:")
			return !strings.ContainsAny(m, "0123456789") || !strings.ContainsAny(m, "abcdef")
		}},
	// Go durations: 300.001s, 2m7.269s, 122ms, 10m0s.
	{re: regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))*\b`), repl: "<duration>"},
	// e2e namespaces: the base name and a number (services-8204).
	// Not a version: release-1.34 stays.
	{re: regexp.MustCompile(`\b([a-z][a-z0-9-]*[a-z0-9])-\d{1,5}([^.0-9]|$)`), repl: "$1-<n>$2"},
	{re: regexp.MustCompile(`\bgoroutine \d+\b`), repl: "goroutine <n>"},
	// Resource versions, epoch times, other long counters.
	{re: regexp.MustCompile(`(?i)\b(resourceVersion|rv)(["':= ]+)\d+\b`), repl: "$1$2<n>"},
	{re: regexp.MustCompile(`\b\d{6,}\b`), repl: "<n>"},
}

// Normalize rewrites the volatile parts of a failure message — times,
// durations, UIDs, IPv4 and IPv6 addresses, ports, hex IDs, generated pod
// and namespace names, source line numbers — to placeholders such as
// <time> and <ip>, so that the same failure in two runs reads the same and
// clusters. It reads at most the first 64 KiB and returns at most 4 KiB.
func Normalize(msg string) string {
	if len(msg) > normalizeInput {
		msg = truncate(msg, normalizeInput)
	}
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	for _, r := range rules {
		if r.keep == nil {
			msg = r.re.ReplaceAllString(msg, r.repl)
			continue
		}
		msg = r.re.ReplaceAllStringFunc(msg, func(m string) string {
			if r.keep(m) {
				return m
			}
			return r.re.ReplaceAllString(m, r.repl)
		})
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessage {
		msg = truncate(msg, maxMessage-len("…")) + "…"
	}
	return msg
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
