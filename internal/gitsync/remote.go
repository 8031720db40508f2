package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Sentinel errors; wrapped so errors.Is works at every level.
var (
	// ErrUnreachable means the remote could not be contacted.
	ErrUnreachable = errors.New("remote unreachable")
	// ErrAuth means the remote refused the credentials.
	ErrAuth = errors.New("authentication failed")
	// ErrLeaseRefused means the fork branch moved while we worked.
	ErrLeaseRefused = errors.New("fork branch moved during the run")
	// ErrPushRefused means the fork refused the push for another reason.
	ErrPushRefused = errors.New("push refused")
)

// LsRemote returns the commit each branch points at on the remote; a branch
// missing there is absent from the map. It transfers no objects.
func (g *Git) LsRemote(ctx context.Context, r Remote, branches []string) (map[string]string, error) {
	args := []string{"ls-remote", "--heads", r.URL}
	for _, b := range branches {
		args = append(args, "refs/heads/"+b)
	}
	out, err := g.run(ctx, &r, args...)
	if err != nil {
		return nil, classify(r, "list branches of", err)
	}
	heads := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		hash, ref, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		heads[strings.TrimPrefix(ref, "refs/heads/")] = hash
	}
	return heads, nil
}

// mirrorRef is where the mirror keeps a remote's branch, apart from the other
// remote's branch of the same name.
func mirrorRef(remote, branch string) string {
	return "refs/hyperfork/" + remote + "/" + branch
}

// Fetch brings the named branches of the remote into the mirror under
// refs/hyperfork/<remote>/<branch>. Only new objects travel. With tags, the
// remote's tags come too (the build stage describes commits with them).
func (g *Git) Fetch(ctx context.Context, r Remote, branches []string, tags bool) error {
	if len(branches) == 0 {
		return nil
	}
	args := []string{"fetch", "--quiet", "--no-write-fetch-head", "--no-auto-gc"}
	if tags {
		args = append(args, "--tags")
	} else {
		args = append(args, "--no-tags")
	}
	args = append(args, r.URL)
	for _, b := range branches {
		args = append(args, "+refs/heads/"+b+":"+mirrorRef(r.Name, b))
	}
	if _, err := g.run(ctx, &r, args...); err != nil {
		return classify(r, "fetch "+strings.Join(branches, ", ")+" from", err)
	}
	return nil
}

// Push sets the fork branch to commit, but only if it still points at
// expected ("" means: the branch must not exist yet). It never forces: the
// new commit always descends from expected, and the lease makes git refuse
// when someone else moved the branch after we looked.
func (g *Git) Push(ctx context.Context, r Remote, branch, commit, expected string) error {
	ref := "refs/heads/" + branch
	args := []string{"push", "--porcelain", "--force-with-lease=" + ref + ":" + expected, r.URL, commit + ":" + ref}
	out, err := g.run(ctx, &r, args...)
	if err == nil {
		return nil
	}
	var re *exec.RunError
	text := out
	if errors.As(err, &re) {
		text += re.Output
	}
	if strings.Contains(text, "stale info") || strings.Contains(text, "fetch first") || strings.Contains(text, "non-fast-forward") {
		return fmt.Errorf("push %s to fork branch %s: %w: it no longer points at %s; nothing was lost, the next run merges again on top of the new head", short(commit), branch, ErrLeaseRefused, short(expected))
	}
	if strings.Contains(text, "[remote rejected]") || strings.Contains(text, "[rejected]") {
		return fmt.Errorf("push %s to fork branch %s: %w by %s: %s; check branch protection and the token's write permission", short(commit), branch, ErrPushRefused, exec.RedactURL(r.URL), firstLine(text, "rejected"))
	}
	return classify(r, "push "+branch+" to", err)
}

// classify turns a git failure into an error that says what went wrong with
// which remote and what to do next.
func classify(r Remote, what string, err error) error {
	msg := err.Error()
	u := exec.RedactURL(r.URL)
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "authentication failed") || strings.Contains(lower, "401") ||
		strings.Contains(lower, "403") || strings.Contains(lower, "could not read username") ||
		strings.Contains(lower, "permission denied (publickey)"):
		hint := "check the token in the variable named by " + r.Name + ".tokenEnv"
		if !strings.HasPrefix(r.URL, "http") {
			hint = "check that ssh-agent holds a key the server accepts"
		}
		return fmt.Errorf("%s %s %s: %w; %s", what, r.Name, u, ErrAuth, hint)
	case strings.Contains(lower, "could not resolve host") || strings.Contains(lower, "connection refused") ||
		strings.Contains(lower, "failed to connect") || strings.Contains(lower, "timed out") ||
		strings.Contains(lower, "does not appear to be a git repository") || strings.Contains(lower, "not found") ||
		strings.Contains(lower, "could not read from remote"):
		return fmt.Errorf("%s %s %s: %w (%s); check %s.url and the network, then run again", what, r.Name, u, ErrUnreachable, lastLine(msg), r.Name)
	}
	return fmt.Errorf("%s %s %s: %w", what, r.Name, u, err)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(no branch)"
	}
	return h
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func firstLine(s, containing string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, containing) {
			return strings.TrimSpace(l)
		}
	}
	return lastLine(s)
}
