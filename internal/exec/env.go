package exec

// BaseEnv returns the environment every child starts from: the variables
// named in an allow-list (PATH, HOME, locale, proxies, CA files, the
// ssh-agent socket and a few more, each documented in the source) whose
// value getenv reports as non-empty, and nothing else. Run uses
// BaseEnv(os.Getenv); code that starts a process with os/exec itself uses it
// too, so that no caller's GIT_DIR or similar reaches the child.
func BaseEnv(getenv func(string) string) []string {
	// The variables a child inherits, each for a reason. The list is
	// closed on purpose: a variable set by whoever started hyperfork
	// reaches a child only if it is named here, so a git hook's GIT_DIR, a
	// developer's GIT_CONFIG_PARAMETERS or GOFLAGS cannot change what a
	// child does. No GIT_* variable is here, and none may be added: git
	// reads dozens (GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE,
	// GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES, GIT_NAMESPACE,
	// GIT_CONFIG*, GIT_SSH*, GIT_TRACE*, GIT_QUARANTINE_PATH, …) and each
	// one redirects or reconfigures it. A caller that needs a variable
	// sets it in Cmd.Env.
	names := [...]string{
		// Where programs are: git, its helpers (git-remote-https, ssh), runc.
		"PATH",
		// ssh's ~/.ssh (config, known_hosts, keys); the go command's defaults
		// for its caches and its env file; buildkitd.
		"HOME",
		// Who the user is, for ssh's default login and tools that ask.
		"USER", "LOGNAME",
		// Where temporary files go (on macOS, the per-user temp folder).
		"TMPDIR",
		// Time stamps in logs in the user's zone.
		"TZ",
		// The user's locale, for messages; git runs set LC_ALL=C on top.
		"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_COLLATE", "LC_MESSAGES",
		"LC_MONETARY", "LC_NUMERIC", "LC_TIME", "LC_ADDRESS", "LC_IDENTIFICATION",
		"LC_MEASUREMENT", "LC_NAME", "LC_PAPER", "LC_TELEPHONE",
		// What the terminal can show, for progress displays.
		"TERM",
		// How to reach the network: curl (git over HTTPS), buildkitd and the
		// go command honour both spellings.
		"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
		"no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY",
		// Which certificate authorities to trust (OpenSSL and Go read them): a
		// company CA in front of GitHub or a registry.
		"SSL_CERT_FILE", "SSL_CERT_DIR",
		// The user's ssh-agent: keys for ssh:// remotes, never seen by us.
		"SSH_AUTH_SOCK",
		// Per-user runtime, config and cache folders: rootless buildkitd's
		// socket and state; the go command's env file and build cache.
		"XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
		// Where the go command keeps modules and builds, and how it fetches
		// them (`go tool -n buildkitd` compiles the pinned daemon): a CI job's
		// caches and module proxy. Variables that change what is built
		// (GOOS, GOARCH, GOFLAGS, GOWORK, CGO_ENABLED) stay out.
		"GOPATH", "GOCACHE", "GOMODCACHE", "GOENV", "GOTOOLCHAIN",
		"GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOINSECURE", "GOAUTH",
	}
	env := make([]string, 0, 16)
	for _, k := range names {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
