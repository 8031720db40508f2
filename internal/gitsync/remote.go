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
	// ErrNotFound means the remote answered, but there is no repository at
	// the URL (or, on most hosting services, none the credentials may read).
	ErrNotFound = errors.New("repository not found")
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
	heads, _, err := g.lsRemote(ctx, r, branches, false)
	return heads, err
}

// lsRemote lists branches of the remote and, with tags, every tag (the
// object each tag ref points at, not the peeled commit). One conversation:
// --heads and --tags make git ask the server for those namespaces only, so
// a host that also advertises pull-request refs does not send them.
func (g *Git) lsRemote(ctx context.Context, r Remote, branches []string, tags bool) (heads, tagRefs map[string]string, err error) {
	args := []string{"ls-remote", "--heads"}
	if tags {
		args = append(args, "--tags")
	}
	args = append(args, r.URL)
	for _, b := range branches {
		args = append(args, "refs/heads/"+b)
	}
	if tags && len(branches) > 0 {
		args = append(args, "refs/tags/*")
	}
	out, err := g.run(ctx, &r, args...)
	if err != nil {
		return nil, nil, classify(r, "list branches of", err)
	}
	heads, tagRefs = map[string]string{}, map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		hash, ref, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(ref, "refs/heads/"):
			heads[strings.TrimPrefix(ref, "refs/heads/")] = hash
		case strings.HasPrefix(ref, "refs/tags/") && !strings.HasSuffix(ref, "^{}"):
			tagRefs[ref] = hash
		}
	}
	return heads, tagRefs, nil
}

// mirrorRef is where the mirror keeps a remote's branch, apart from the other
// remote's branch of the same name.
func mirrorRef(remote, branch string) string {
	return "refs/hyperfork/" + remote + "/" + branch
}

// Fetch brings the named branches of the remote into the mirror under
// refs/hyperfork/<remote>/<branch>. Only new objects travel. With tags, the
// remote's tags come too (the build stage describes commits with them), and
// a tag the remote moved moves in the mirror as well: a tag is the remote's
// word on what a version is, and a stale one would stamp builds wrongly.
// Tags the remote deleted are kept (see the tag refspec). With no branches and
// tags, only the tags are fetched.
//
// The mirror is shared by runs on other branches: Fetch holds its write
// lock, because every fetch updates refs and the commit-graph chain, and two
// at once fail on the commit-graph's lock file.
func (g *Git) Fetch(ctx context.Context, r Remote, branches []string, tags bool) error {
	if len(branches) == 0 && !tags {
		return nil
	}
	what := "fetch " + strings.Join(branches, ", ") + " from"
	if len(branches) == 0 {
		what = "fetch tags from"
	}
	unlock, err := g.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, r.Name, err)
	}
	defer unlock()
	// No --quiet: it hides the lines that say why a ref was refused, and
	// a failure would read "exit status 1" and nothing else.
	args := []string{"fetch", "--no-write-fetch-head", "--no-auto-gc", "--no-tags", r.URL}
	for _, b := range branches {
		args = append(args, "+refs/heads/"+b+":"+mirrorRef(r.Name, b))
	}
	if tags {
		// Forced, unlike --tags, which refuses to move an existing tag
		// ("would clobber existing tag") and fails the whole fetch. Not
		// pruned: the mirror's tags come from both remotes (the fork's own
		// release tags among them), and pruning against one would delete
		// the other's.
		args = append(args, "+refs/tags/*:refs/tags/*")
	}
	_, err = g.run(ctx, &r, args...)
	if err != nil && staleLockRefusal(err) {
		// A git killed in the mirror (kill -9 of a run, a crash) leaves a
		// lock that refuses every later fetch until it goes: the nightly
		// run must not need a person, or prune, for that. Only a lock old
		// enough to be no running git's is removed; then fetch once more.
		if removed, rerr := g.removeStale(ctx, StaleAge); rerr == nil && len(removed) > 0 {
			_, err = g.run(ctx, &r, args...)
		}
	}
	if err != nil {
		return classify(r, what, err)
	}
	return nil
}

// staleLockRefusal reports whether git refused because a lock file exists:
// its own sentence, "Unable to create '<path>.lock': File exists.".
func staleLockRefusal(err error) bool {
	var re *exec.RunError
	if !errors.As(err, &re) {
		return false
	}
	return strings.Contains(re.Output, ".lock': File exists.")
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
