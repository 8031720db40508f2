package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"golang.org/x/mod/module"
)

// The checks below return "" when the value is good, else the end of a
// message that says what to write instead. None of them echoes a secret.

var envNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// checkEnvName checks a field that names an environment variable holding a
// secret. A value that looks like the secret itself is called out as such,
// without repeating it, so it does not end up in CI logs a second time.
func checkEnvName(path, v, example string) string {
	switch {
	case v == "" || envNameRE.MatchString(v):
		return ""
	case looksLikeSecret(v):
		return fmt.Sprintf("%s holds what looks like a secret written inline (not repeated here): remove it from the file, revoke it, and write the name of an environment variable that holds it, e.g. %s: %s",
			path, lastKey(path), example)
	default:
		return fmt.Sprintf("%s must name an environment variable (upper case letters, digits and _, e.g. %s), not %q",
			path, example, v)
	}
}

var secretPrefixes = []string{
	"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-",
	"xapp-", "sk-", "AKIA", "ASIA", "Bearer ", "Basic ", "eyJ",
}

// looksLikeSecret is a heuristic for a token pasted where a variable name
// belongs: a known token prefix, a URL (webhook URLs are secrets), or a long
// string mixing lower case and digits that no one would name a variable.
func looksLikeSecret(v string) bool {
	for _, p := range secretPrefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	if strings.Contains(v, "://") {
		return true
	}
	if len(v) < 20 {
		return false
	}
	lower := strings.IndexFunc(v, func(r rune) bool { return r >= 'a' && r <= 'z' }) >= 0
	digit := strings.IndexFunc(v, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0
	return (lower && digit) || !strings.ContainsAny(v, " _-")
}

func lastKey(path string) string {
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		return path[i+1:]
	}
	return path
}

// checkRefName applies the rules of `git check-ref-format --branch`.
func checkRefName(path, v string) string {
	bad := func(why string) string {
		return fmt.Sprintf("%s %q is not a valid git branch name: %s", path, v, why)
	}
	switch {
	case v == "":
		return fmt.Sprintf("%s is required: write the branch name, e.g. master", path)
	case strings.HasPrefix(v, "-"):
		return bad("it must not start with '-'")
	case v == "@" || v == "HEAD":
		return bad("it is reserved by git; choose another name")
	case strings.HasPrefix(v, "refs/"):
		return bad("write the short name without refs/heads/")
	case strings.Contains(v, ".."):
		return bad(`it must not contain ".."`)
	case strings.Contains(v, "@{"):
		return bad(`it must not contain "@{"`)
	case strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.Contains(v, "//"):
		return bad("slashes must separate non-empty parts, as in release/1.34")
	case strings.HasSuffix(v, "."):
		return bad("it must not end with '.'")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return bad(fmt.Sprintf("it must not contain %q (no spaces, ~ ^ : ? * [ or \\)", r))
		}
	}
	for part := range strings.SplitSeq(v, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return bad("no part may start with '.' or end with \".lock\"")
		}
	}
	return ""
}

// knownGOOS and knownGOARCH are the first-class ports of `go tool dist list`.
var (
	knownGOOS = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
		"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	knownGOARCH = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le",
		"mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
	variantRE = map[string]*regexp.Regexp{
		"amd64": regexp.MustCompile(`^v[1-4]$`),
		"arm":   regexp.MustCompile(`^v[5-7]$`),
		"arm64": regexp.MustCompile(`^v(8|9)(\.[0-9])?$`),
	}
)

// checkPlatform accepts os/arch[/variant] with Go's names.
func checkPlatform(path, v string) string {
	parts := strings.Split(v, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Sprintf("%s %q must be os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7", path, v)
	}
	if !slices.Contains(knownGOOS, parts[0]) {
		return fmt.Sprintf("%s %q: unknown os %q%s; write one of %s", path, v, parts[0], didYouMean(parts[0], knownGOOS), strings.Join(knownGOOS, ", "))
	}
	if !slices.Contains(knownGOARCH, parts[1]) {
		return fmt.Sprintf("%s %q: unknown architecture %q%s; write one of %s", path, v, parts[1], didYouMean(parts[1], knownGOARCH), strings.Join(knownGOARCH, ", "))
	}
	if len(parts) == 3 {
		re, ok := variantRE[parts[1]]
		if !ok || !re.MatchString(parts[2]) {
			return fmt.Sprintf("%s %q: %q is not a variant of %s; write e.g. linux/arm/v7, linux/arm64/v8 or linux/amd64/v3, or leave the variant out", path, v, parts[2], parts[1])
		}
	}
	return ""
}

// samePlatform reports whether a and b name the same platform: the same os
// and architecture, and the same variant when both give one (linux/arm64
// is linux/arm64/v8).
func samePlatform(a, b string) bool {
	pa, pb := strings.Split(a, "/"), strings.Split(b, "/")
	if len(pa) < 2 || len(pb) < 2 || pa[0] != pb[0] || pa[1] != pb[1] {
		return false
	}
	return len(pa) == 2 || len(pb) == 2 || pa[2] == pb[2]
}

// containsPlatform reports whether list has a platform that is p.
func containsPlatform(list []string, p string) bool {
	return slices.ContainsFunc(list, func(q string) bool { return samePlatform(p, q) })
}

func didYouMean(v string, known []string) string {
	if s := suggest(v, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

var relTargetRE = regexp.MustCompile(`^\./[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)

// checkTarget accepts a Go package path: ./cmd/x relative to the fork's
// module, or a full import path.
func checkTarget(path, v string) string {
	if strings.Contains(v, "...") {
		return fmt.Sprintf("%s %q: name one command per entry, without ...", path, v)
	}
	if rest, ok := strings.CutPrefix(v, "./vendor/"); ok {
		// go build refuses a vendor folder's path in module mode; the
		// import path builds from that folder.
		return fmt.Sprintf("%s %q: write the import path %s; it builds from the vendor folder", path, v, rest)
	}
	if strings.HasPrefix(v, "./") {
		if !relTargetRE.MatchString(v) || filepath.ToSlash(filepath.Clean(v)) != strings.TrimPrefix(v, "./") {
			return fmt.Sprintf("%s %q is not a clean package path: write it like ./cmd/kubelet", path, v)
		}
		return ""
	}
	if err := module.CheckImportPath(v); err != nil {
		return fmt.Sprintf("%s %q is not a Go package path: write ./cmd/kubelet or k8s.io/kubernetes/cmd/kubelet", path, v)
	}
	return ""
}

// BinaryName is the name of the binary a build target produces: the last
// element of its package path, as `go build` names it.
func BinaryName(target string) string {
	return target[strings.LastIndex(target, "/")+1:]
}

// checkImageRef accepts an image reference such as golang:1.26 or
// registry.example.com/team/img@sha256:...; allowScratch also accepts scratch.
func checkImageRef(path, v string, allowScratch bool) string {
	if allowScratch && v == "scratch" {
		return ""
	}
	if strings.Contains(v, "://") {
		return fmt.Sprintf("%s %q: write an image reference without a scheme, e.g. registry.example.com/team/image:tag", path, v)
	}
	if _, err := reference.ParseNormalizedNamed(v); err != nil {
		return fmt.Sprintf("%s %q is not a valid image reference (%v): write it like golang:1.26 or registry.example.com/team/image:tag", path, v, err)
	}
	return ""
}

// checkRepository accepts a repository without tag or digest.
func checkRepository(path, v string) string {
	if msg := checkImageRef(path, v, false); msg != "" {
		return msg
	}
	named, _ := reference.ParseNormalizedNamed(v)
	if _, ok := named.(reference.Tagged); ok {
		return fmt.Sprintf("%s %q: write the repository without a tag; hyperfork chooses the tags", path, v)
	}
	if _, ok := named.(reference.Digested); ok {
		return fmt.Sprintf("%s %q: write the repository without a digest", path, v)
	}
	return ""
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// checkStore accepts a folder or s3://bucket/prefix.
func checkStore(path, v string) string {
	if !strings.Contains(v, "://") {
		return ""
	}
	if !strings.HasPrefix(v, "s3://") {
		return fmt.Sprintf("%s %q: write a folder (relative to this file or absolute) or s3://bucket/prefix", path, v)
	}
	rest := strings.TrimPrefix(v, "s3://")
	bucket, _, _ := strings.Cut(rest, "/")
	if strings.ContainsAny(rest, "@?#") {
		return fmt.Sprintf("%s: write only s3://bucket/prefix; credentials come from the usual AWS_* environment variables", path)
	}
	if !bucketRE.MatchString(bucket) {
		return fmt.Sprintf("%s %q: %q is not a valid S3 bucket name (3 to 63 lower case letters, digits, '.' and '-'): write s3://bucket/prefix", path, v, bucket)
	}
	return ""
}

// S3Location splits s3://bucket/prefix; ok is false for a folder.
func S3Location(store string) (bucket, prefix string, ok bool) {
	rest, ok := strings.CutPrefix(store, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	return bucket, strings.Trim(prefix, "/"), true
}

var buildkitSchemes = []string{"unix://", "tcp://", "docker-container://", "kube-pod://",
	"podman-container://", "ssh://", "nerdctl-container://"}

// checkBuildKit accepts the addresses buildctl accepts.
func checkBuildKit(path, v string) string {
	for _, s := range buildkitSchemes {
		if rest, ok := strings.CutPrefix(v, s); ok && rest != "" {
			if u, err := url.Parse(v); err == nil && u.User != nil {
				if _, pw := u.User.Password(); pw {
					return fmt.Sprintf("%s has a password written inline (not repeated here): remove it and use an SSH key or a socket", path)
				}
			}
			return ""
		}
	}
	return fmt.Sprintf("%s %q: write a BuildKit address such as unix:///run/buildkit/buildkitd.sock or tcp://127.0.0.1:1234 (schemes: %s), or leave it empty for $BUILDKIT_HOST or the embedded daemon",
		path, v, strings.Join(buildkitSchemes, " "))
}

// checkGoProxy accepts GOPROXY syntax: URLs, direct and off, separated by , or |.
func checkGoProxy(path, v string) string {
	for e := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == '|' }) {
		if e == "direct" || e == "off" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
			return fmt.Sprintf("%s: %q is not a proxy URL: write GOPROXY syntax, e.g. https://proxy.golang.org,direct", path, e)
		}
		if u.User != nil {
			return fmt.Sprintf("%s has credentials written inline (not repeated here): remove them and use a .netrc in the builder", path)
		}
		if u.RawQuery != "" || u.ForceQuery || strings.Contains(e, "#") {
			return fmt.Sprintf("%s has a query string or fragment (not repeated here), where a token would end up in logs: remove it and give the builder a .netrc for a proxy that needs a login", path)
		}
	}
	return ""
}
