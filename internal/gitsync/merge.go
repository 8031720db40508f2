package gitsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/report"
)

// MergeResult is the outcome of merging upstream into a fork branch in the
// mirror. Nothing is pushed yet.
type MergeResult struct {
	// Commit is the new fork head: a merge commit, or the upstream head when
	// the fork carried nothing and a fast-forward suffices. Empty on conflict.
	Commit string
	// FastForward is true when no merge commit was needed.
	FastForward bool
	// Merged is the number of upstream commits new to the fork.
	Merged int
	// Base is the merge base.
	Base string
	// Conflicts lists the conflicted paths; empty when the merge is clean.
	Conflicts []report.Conflict
	// Sides holds, per conflicted path, what each side has there.
	Sides map[string]Sides
}

// Sides is what the merge base, the fork and upstream hold at a conflicted
// path: the index stages git leaves (1, 2 "ours" and 3 "theirs" in a clone
// of the fork merging upstream). A side with an empty Mode has no file
// there: it deleted or renamed it.
type Sides struct {
	Base, Fork, Upstream Entry
}

// Entry is one side of a conflicted path.
type Entry struct {
	// Mode is git's file mode: 100644, 100755, 120000 (symlink), 160000
	// (submodule), or empty when the side has nothing at the path.
	Mode string
	// Object is the blob, or for a submodule the commit it points at.
	Object string
}

// IsSubmodule reports whether the entry is a submodule.
func (e Entry) IsSubmodule() bool { return e.Mode == "160000" }

// Merge merges upstream commit up into fork commit fork with git's own
// three-way merge (merge-tree --write-tree: no work tree, no index) and, when
// clean, writes the merge commit. ffOnly refuses anything but a fast-forward.
func (g *Git) Merge(ctx context.Context, branch, upBranch, fork, up string, ffOnly bool) (*MergeResult, error) {
	res := &MergeResult{}
	// One walk answers both questions: how many upstream commits are new,
	// and whether the fork has any of its own (if not, it fast-forwards).
	carries, n, err := g.leftRight(ctx, fork, up)
	if err != nil {
		return nil, fmt.Errorf("count upstream commits for %s: %w", branch, err)
	}
	res.Merged = n
	if n == 0 {
		res.Commit = fork
		return res, nil
	}
	if carries == 0 {
		res.Commit, res.FastForward, res.Base = up, true, fork
		return res, nil
	}
	if ffOnly {
		return res, ErrNotFastForward
	}
	base, err := g.run(ctx, nil, "merge-base", fork, up)
	if err != nil {
		return nil, fmt.Errorf("merge base of %s and upstream: %w", branch, err)
	}
	res.Base = strings.TrimSpace(base)

	out, err := g.run(ctx, nil, "merge-tree", "--write-tree", "-z", "--messages", fork, up)
	var re *exec.RunError
	conflicted := false
	if err != nil {
		// Exit code 1 means conflicts; the output is still complete.
		if !errors.As(err, &re) || re.ExitCode() != 1 {
			return nil, fmt.Errorf("merge upstream %s into %s: %w", upBranch, branch, err)
		}
		conflicted = true
	}
	tree, conflicts, sides := parseMergeTree(out)
	if conflicted {
		if len(conflicts) == 0 {
			return nil, fmt.Errorf("merge upstream %s into %s: git reported a conflict it did not name", upBranch, branch)
		}
		res.Conflicts, res.Sides = conflicts, sides
		return res, nil
	}
	msg := fmt.Sprintf("Merge upstream %s (%s..%s, %d commits) into %s\n\nMerged by hyperfork: %d new upstream commit(s) from %s..%s.\n",
		upBranch, short(res.Base), short(up), n, branch, n, res.Base, up)
	commit, err := g.run(ctx, nil, "commit-tree", tree, "-p", fork, "-p", up, "-m", msg)
	if err != nil {
		return nil, fmt.Errorf("write merge commit for %s: %w", branch, err)
	}
	res.Commit = strings.TrimSpace(commit)
	return res, nil
}

// ErrNotFastForward means strategy ff-only met a fork with its own commits.
var ErrNotFastForward = errors.New("cannot fast-forward: the fork branch has commits upstream does not have")

// parseMergeTree reads the -z output of merge-tree --write-tree --messages:
// the tree, the conflicted stages, an empty field, then one record per
// message: a count of paths, the paths, a conflict type and a message.
func parseMergeTree(out string) (string, []report.Conflict, map[string]Sides) {
	fields := strings.Split(out, "\x00")
	if len(fields) == 0 {
		return "", nil, nil
	}
	tree := strings.TrimSpace(fields[0])
	i := 1
	sides := map[string]Sides{}
	var order []string
	for ; i < len(fields) && fields[i] != ""; i++ {
		// "<mode> <object> <stage>\t<path>"
		meta, p, ok := strings.Cut(fields[i], "\t")
		if !ok {
			continue
		}
		if _, seen := sides[p]; !seen {
			order = append(order, p)
		}
		sd := sides[p]
		if f := strings.Fields(meta); len(f) == 3 {
			e := Entry{Mode: f[0], Object: f[1]}
			switch f[2] {
			case "1":
				sd.Base = e
			case "2":
				sd.Fork = e
			case "3":
				sd.Upstream = e
			}
		}
		sides[p] = sd
	}
	i++ // the empty field between sections
	kinds := map[string]string{}
	others := map[string]string{}
	for i < len(fields) && fields[i] != "" {
		var n int
		if _, err := fmt.Sscan(fields[i], &n); err != nil || i+n+2 >= len(fields) {
			break
		}
		recPaths := fields[i+1 : i+1+n]
		typ, text := fields[i+1+n], fields[i+2+n]
		i += n + 3
		// The type says "contents" for add/add too; the message tells them apart.
		kind := conflictKind(typ)
		if kind == "content" && strings.Contains(text, "(add/add)") {
			kind = "add/add"
		}
		if kind == "" {
			continue
		}
		for _, p := range recPaths {
			if kinds[p] == "" || kinds[p] == "content" {
				kinds[p] = kind
			}
			if kind == "rename" || kind == "rename/delete" {
				for _, q := range recPaths {
					if q != p {
						others[p] = q
					}
				}
			}
		}
	}
	conflicts := make([]report.Conflict, 0, len(order))
	for _, p := range order {
		k := kinds[p]
		sd := sides[p]
		switch {
		case sd.Fork.IsSubmodule() || sd.Upstream.IsSubmodule():
			// Whatever git called it, resolving means choosing a commit.
			k = "submodule"
		case k == "":
			k = "content"
		}
		conflicts = append(conflicts, report.Conflict{Path: p, Kind: k, OtherPath: others[p]})
	}
	sort.Slice(conflicts, func(a, b int) bool { return conflicts[a].Path < conflicts[b].Path })
	return tree, conflicts, sides
}

// conflictKind maps git's conflict type to the kinds hyperfork reports;
// "" means the message is informational (Auto-merging and the like).
func conflictKind(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case !strings.HasPrefix(t, "conflict"):
		return ""
	case strings.Contains(t, "rename/delete"):
		// Not a rename to follow: one side renamed, the other deleted.
		return "rename/delete"
	case strings.Contains(t, "rename"):
		return "rename"
	case strings.Contains(t, "modify/delete"):
		return "modify/delete"
	case strings.Contains(t, "add/add"):
		return "add/add"
	case strings.Contains(t, "file/directory") || strings.Contains(t, "directory/file"):
		return "file/directory"
	case strings.Contains(t, "binary"):
		return "binary"
	case strings.Contains(t, "submodule"):
		return "submodule"
	case strings.Contains(t, "content"):
		return "content"
	}
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(t, "conflict ("), "conflict"), ")")
}

// Explain fills, for each conflicted path, the upstream commits and the
// fork's own commits (carries) that touched it since the merge base.
func (g *Git) Explain(ctx context.Context, fork, up string, conflicts []report.Conflict) error {
	for i := range conflicts {
		paths := []string{conflicts[i].Path}
		if conflicts[i].OtherPath != "" {
			paths = append(paths, conflicts[i].OtherPath)
		}
		var err error
		if conflicts[i].Upstream, err = g.commitsTouching(ctx, fork+".."+up, paths); err != nil {
			return err
		}
		if conflicts[i].Carries, err = g.commitsTouching(ctx, up+".."+fork, paths); err != nil {
			return err
		}
	}
	return nil
}

// commitsTouching lists the non-merge commits of a range that changed paths.
func (g *Git) commitsTouching(ctx context.Context, rng string, paths []string) ([]report.Commit, error) {
	args := append([]string{"log", "--no-merges", "--format=%H%x1f%s%x1f%an <%ae>%x1e", rng, "--"}, paths...)
	out, err := g.run(ctx, nil, args...)
	if err != nil {
		return nil, fmt.Errorf("list commits touching %s: %w", strings.Join(paths, ", "), err)
	}
	var commits []report.Commit
	for _, rec := range strings.Split(out, "\x1e") {
		f := strings.Split(strings.TrimSpace(rec), "\x1f")
		if len(f) != 3 {
			continue
		}
		commits = append(commits, report.Commit{Hash: f[0], Subject: f[1], Author: f[2]})
	}
	return commits, nil
}
