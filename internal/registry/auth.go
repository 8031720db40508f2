package registry

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hyperfork/hyperfork/internal/loopback"
)

// Credentials are a user name and password (or token) for one registry host,
// typically read from the environment variables the configuration names.
type Credentials struct {
	// Registry is the host, with port if any, as in a reference:
	// "registry.example.com" or "127.0.0.1:5000".
	Registry string
	Username string
	Password string
}

// userAgent identifies hyperfork in registry logs.
const userAgent = "hyperfork"

// staticKeychain answers for the hosts it has credentials for and stays
// anonymous elsewhere, so that the Docker config can answer next.
type staticKeychain []Credentials

func (k staticKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	for _, c := range k {
		if c.Username != "" && sameRegistry(c.Registry, res.RegistryStr()) {
			return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password}), nil
		}
	}
	return authn.Anonymous, nil
}

// sameRegistry compares hosts the way references resolve them, so that
// "docker.io" matches Docker Hub's "index.docker.io".
func sameRegistry(configured, host string) bool {
	r, err := name.NewRegistry(configured)
	return configured == host || (err == nil && r.RegistryStr() == host)
}

// keychain returns explicit credentials first, then the user's Docker config
// (~/.docker/config.json and credential helpers).
func keychain(creds []Credentials) authn.Keychain {
	return authn.NewMultiKeychain(staticKeychain(creds), authn.DefaultKeychain)
}

// nameOptions returns the options to parse a reference on host: plain HTTP
// when asked, and always for loopback, where a test or local registry never
// has a certificate.
func nameOptions(host string, insecure bool) []name.Option {
	if insecure || isLoopback(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// isLoopback reports whether host (with optional port) is on this machine.
func isLoopback(host string) bool {
	return loopback.Host(host)
}

// hostOf returns the registry host of a reference string, for parsing options
// that must be known before the reference is parsed.
func hostOf(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	// Docker's rule: the first element is a host only if it looks like one.
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return name.DefaultRegistry
}

// secrets returns the passwords to redact from messages.
func secrets(creds []Credentials) []string {
	var s []string
	for _, c := range creds {
		s = append(s, c.Password)
	}
	return s
}

// remoteOptions are the options shared by every registry call.
func remoteOptions(kc authn.Keychain) []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(kc), remote.WithUserAgent(userAgent)}
}
