package gitsync

import (
	"context"
	"strings"
)

// tagsBehind reports whether the mirror lacks a tag of remote, or holds one
// that points elsewhere (the remote moved it). remote maps each tag ref to
// the object it points at, as ls-remote lists it. Tags only the mirror has
// do not count: they come from the fork, or upstream deleted them (Fetch
// does not prune). A failure to read the mirror counts as behind, so the
// caller fetches.
func (g *Git) tagsBehind(ctx context.Context, remote map[string]string) bool {
	if len(remote) == 0 {
		return false
	}
	out, err := g.run(ctx, nil, "for-each-ref", "--format=%(objectname) %(refname)", "refs/tags/")
	if err != nil {
		return true
	}
	have := make(map[string]string, len(remote))
	for _, line := range strings.Split(out, "\n") {
		if hash, ref, ok := strings.Cut(line, " "); ok {
			have[ref] = hash
		}
	}
	for ref, hash := range remote {
		if have[ref] != hash {
			return true
		}
	}
	return false
}
