package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hyperfork/hyperfork/internal/loopback"
)

// gitURLForms is the list of remotes hyperfork drives git with, for
// messages. Anything else is refused when the config is read, not by git in
// the middle of a run.
const gitURLForms = "https://host/org/repo.git, http://localhost:PORT/repo.git (loopback only), " +
	"ssh://git@host/org/repo.git, git@host:org/repo.git, file:///absolute/path/repo.git or /absolute/path/repo.git"

var (
	scpLikeRE = regexp.MustCompile(`^(?:([^@/]+)@)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):([^/:].*|/.+)$`)
	// helperRE is git's "<transport>::<address>" syntax, which hands the
	// address to a program (git-remote-<transport>): ext:: runs any command.
	helperRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+.-]*::`)
	// gitSchemes are the schemes a user may mean; written in upper case
	// git looks for a helper named after them and fails at run time.
	gitSchemes = []string{"https", "http", "ssh", "file", "git"}
)

// checkGitURL accepts what git fetches from and pushes to here: https://,
// http:// (loopback only), ssh://, git@host:path, file:// and absolute paths.
// Credentials have no place in any of them, not as user:password, not as a
// token in the user name, not in a query string or a fragment: tokenPath is
// the *Env key to point at instead. No message repeats what it refuses,
// since the value may be a secret.
func checkGitURL(path, v, tokenPath string) string {
	inline := fmt.Sprintf("%s has a secret written inline (not repeated here): remove it from the URL, revoke it, and set %s to the name of an environment variable holding it", path, tokenPath)
	inQuery := func(what string) string {
		return fmt.Sprintf("%s has %s (not repeated here): whatever it holds ends up in logs and in git's config, and a token does not belong there: remove it, revoke the token if it is one, and set %s to the name of an environment variable holding it",
			path, what, tokenPath)
	}
	if m := helperRE.FindString(v); m != "" {
		return fmt.Sprintf("%s uses git's remote-helper syntax %s, which runs a program instead of fetching: write one of %s", path, m, gitURLForms)
	}
	scheme, _, hasScheme := strings.Cut(v, "://")
	if hasScheme && scheme != strings.ToLower(scheme) && slices.Contains(gitSchemes, strings.ToLower(scheme)) {
		return fmt.Sprintf("%s: write the scheme in lower case, %s://...: git looks for a transport named %q and finds none", path, strings.ToLower(scheme), scheme)
	}
	switch {
	case hasScheme && (scheme == "https" || scheme == "http" || scheme == "ssh"):
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			switch {
			case strings.Contains(v, "@"):
				return inline // a password with odd characters does not parse: still a secret
			case strings.ContainsAny(v, "?#"):
				return inQuery("a query string or fragment")
			}
			return fmt.Sprintf("%s is not a valid URL: write it like https://github.com/org/repo.git", path)
		}
		if u.User != nil {
			_, hasPassword := u.User.Password()
			if u.Scheme != "ssh" || hasPassword || looksLikeSecret(u.User.Username()) {
				return inline
			}
		}
		if msg := queryOrFragment(v, u, inQuery); msg != "" {
			return msg
		}
		if strings.HasPrefix(u.Hostname(), "-") || (u.User != nil && strings.HasPrefix(u.User.Username(), "-")) {
			return fmt.Sprintf("%s: a host or user name cannot start with '-' (ssh would read it as an option): write one of %s", path, gitURLForms)
		}
		if u.Scheme == "http" && !loopback.Host(u.Host) {
			return fmt.Sprintf("%s uses plain http:// to a remote host, which sends the token in clear text and lets anyone on the way change the code: write https://%s%s (http:// is accepted only for localhost)",
				path, u.Host, u.Path)
		}
		return ""
	case hasScheme && scheme == "file":
		u, err := url.Parse(v)
		if err == nil {
			if msg := queryOrFragment(v, u, inQuery); msg != "" {
				return msg
			}
		}
		if err != nil || (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
			return fmt.Sprintf("%s is not a valid file URL: write file:///absolute/path/to/repo.git", path)
		}
		return ""
	case filepath.IsAbs(v):
		return ""
	case hasScheme && scheme == "git":
		// git:// has no authentication and no encryption: it cannot push,
		// and anyone on the way can change what is fetched.
		return fmt.Sprintf("%s uses a scheme git is not driven with here: git:// is unauthenticated and unencrypted, so it cannot push and anyone on the way can change the code; write the same repository as one of %s", path, gitURLForms)
	case hasScheme:
		return fmt.Sprintf("%s uses a scheme git is not driven with here: write one of %s", path, gitURLForms)
	}
	if m := scpLikeRE.FindStringSubmatch(v); m != nil {
		switch {
		case strings.Contains(m[1], ":") || looksLikeSecret(m[1]):
			return inline
		case strings.HasPrefix(m[1], "-"):
			return fmt.Sprintf("%s: a user name cannot start with '-' (ssh would read it as an option): write one of %s", path, gitURLForms)
		case strings.ContainsAny(m[3], "?#"):
			return inQuery("a query string or fragment (git@host:path takes neither)")
		}
		return ""
	}
	return fmt.Sprintf("%s is not a git URL: write https://host/org/repo.git, ssh://git@host/org/repo.git, git@host:org/repo.git, file:///path or an absolute path (a relative path is ambiguous)", path)
}

// queryOrFragment refuses a query string or fragment in u, parsed from v;
// even an empty one ("repo.git?") is refused, as it is never meant.
func queryOrFragment(v string, u *url.URL, msg func(what string) string) string {
	switch {
	case u.RawQuery != "" || u.ForceQuery:
		return msg("a query string")
	case u.Fragment != "" || strings.Contains(v, "#"):
		return msg("a fragment (#...)")
	}
	return ""
}

// sameRepository reports whether two URLs that checkGitURL accepted name
// the same repository: scheme and host compared without case, a default
// port left out, user names ignored, and a trailing slash or ".git" taken
// off the path. ssh:// and git@host:path are one transport, as are file://
// and an absolute path; paths keep their case, since servers may not.
func sameRepository(a, b string) bool {
	ka, oka := repositoryKey(a)
	kb, okb := repositoryKey(b)
	return oka && okb && ka == kb
}

// repositoryKey is "transport host:port path" for a URL checkGitURL accepted.
func repositoryKey(v string) (string, bool) {
	trim := func(p string) string {
		p = strings.TrimRight(p, "/")
		p = strings.TrimSuffix(p, ".git")
		return strings.TrimRight(p, "/")
	}
	// On ssh servers (GitHub, GitLab, Gitea) host:org/repo and
	// ssh://host/org/repo are the same; ~/ is the home both start from.
	sshPath := func(p string) string {
		p = strings.TrimPrefix(p, "/")
		p = strings.TrimPrefix(p, "~/")
		return trim(p)
	}
	hostPort := func(host, port, def string) string {
		if port == "" {
			port = def
		}
		return net.JoinHostPort(strings.TrimSuffix(strings.ToLower(host), "."), port)
	}
	scheme, _, hasScheme := strings.Cut(v, "://")
	switch {
	case hasScheme && (strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "ssh")):
		u, err := url.Parse(v)
		if err != nil {
			return "", false
		}
		def := map[string]string{"https": "443", "http": "80", "ssh": "22"}[u.Scheme]
		if u.Scheme == "ssh" {
			return "ssh " + hostPort(u.Hostname(), u.Port(), def) + " " + sshPath(u.Path), true
		}
		return u.Scheme + " " + hostPort(u.Hostname(), u.Port(), def) + " " + trim(u.Path), true
	case hasScheme && strings.EqualFold(scheme, "file"):
		u, err := url.Parse(v)
		if err != nil {
			return "", false
		}
		return "file " + trim(path.Clean(u.Path)), true
	case filepath.IsAbs(v):
		return "file " + trim(filepath.ToSlash(filepath.Clean(v))), true
	case hasScheme:
		return "", false
	}
	if m := scpLikeRE.FindStringSubmatch(v); m != nil {
		return "ssh " + hostPort(strings.Trim(m[2], "[]"), "", "22") + " " + sshPath(m[3]), true
	}
	return "", false
}
