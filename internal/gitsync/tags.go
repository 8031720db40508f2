package gitsync

import (
	"context"
	"strings"
)

// tags returns the mirror's tags: each tag ref and the object it points at,
// as ls-remote lists a remote's.
func (g *Git) tags(ctx context.Context) (map[string]string, error) {
	out, err := g.run(ctx, nil, "for-each-ref", "--format=%(objectname) %(refname)", "refs/tags/")
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if hash, ref, ok := strings.Cut(line, " "); ok {
			have[ref] = hash
		}
	}
	return have, nil
}

// tagsBehind reports whether the mirror lacks a tag of remote, or holds one
// that points elsewhere (the remote moved it). remote and mirror map each
// tag ref to the object it points at; mirrorErr is the failure to read the
// mirror's, which counts as behind, so the caller fetches. Tags only the
// mirror has do not count: they come from the fork, or upstream deleted
// them (Fetch does not prune).
func tagsBehind(remote, mirror map[string]string, mirrorErr error) bool {
	if len(remote) == 0 {
		return false
	}
	if mirrorErr != nil {
		return true
	}
	for ref, hash := range remote {
		if mirror[ref] != hash {
			return true
		}
	}
	return false
}
