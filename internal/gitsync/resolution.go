package gitsync

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/report"
)

// ResolutionInput is what the resolution commands are made from.
type ResolutionInput struct {
	Branch, UpstreamBranch string
	// ForkURL and UpstreamURL are shown as given, minus credentials.
	ForkURL, UpstreamURL string
	UpstreamCommit       string
	ForkCommit           string
	Merged               int
	Conflicts            []report.Conflict
	// Sides holds what each side has at a conflicted path (MergeResult.Sides);
	// the advice for binary files, submodules and deletions comes from it.
	Sides map[string]Sides
}

var unsafeDirRE = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Resolution returns the commands a person pastes into a shell to reproduce
// the merge in a fresh clone and finish it. Every value is filled in: the
// person only edits the conflicted files between step 2 and step 3.
func Resolution(in ResolutionInput) string {
	q := exec.ShellQuote
	dir := "hyperfork-merge-" + unsafeDirRE.ReplaceAllString(in.Branch, "-")
	fork := exec.RedactURL(in.ForkURL)
	up := exec.RedactURL(in.UpstreamURL)
	msg := fmt.Sprintf("Merge upstream %s (%s) into %s", in.UpstreamBranch, short(in.UpstreamCommit), in.Branch)

	var b strings.Builder
	fmt.Fprintf(&b, "# Merge upstream %s at %s into fork branch %s (fork at %s, %d upstream commits).\n",
		in.UpstreamBranch, short(in.UpstreamCommit), in.Branch, short(in.ForkCommit), in.Merged)
	b.WriteString("# 1. Reproduce the merge in a fresh clone (the merge stops with conflicts):\n")
	fmt.Fprintf(&b, "git clone --branch %s %s %s\n", q(in.Branch), q(fork), q(dir))
	fmt.Fprintf(&b, "cd %s\n", q(dir))
	fmt.Fprintf(&b, "git fetch %s %s\n", q(up), q("refs/heads/"+in.UpstreamBranch))
	fmt.Fprintf(&b, "git merge --no-ff -m %s %s\n", q(msg), in.UpstreamCommit)
	b.WriteString("# 2. Resolve each conflicted path, keeping what both sides need:\n")
	for _, c := range in.Conflicts {
		fmt.Fprintf(&b, "#   %s (%s)%s\n", c.Path, c.Kind, advice(c, in.Sides[c.Path]))
		for _, u := range c.Upstream {
			fmt.Fprintf(&b, "#     upstream %s %s (%s)\n", short(u.Hash), u.Subject, u.Author)
		}
		for _, f := range c.Carries {
			fmt.Fprintf(&b, "#     fork     %s %s (%s)\n", short(f.Hash), f.Subject, f.Author)
		}
	}
	b.WriteString("git diff --name-only --diff-filter=U   # what is still unresolved\n")
	b.WriteString("# 3. Record the resolution and push it to the fork:\n")
	// -u, not "add -A -- PATH...": a path resolved by deleting it (git rm)
	// no longer matches a pathspec, and add would fail on it; -u stages
	// every tracked path, deletions included, and no stray untracked file.
	b.WriteString("git add -u   # every resolved path, deletions included; git add a file you created\n")
	b.WriteString("git commit --no-edit\n")
	fmt.Fprintf(&b, "git push origin %s\n", q("HEAD:refs/heads/"+in.Branch))
	return b.String()
}

// advice says what resolving this kind of conflict means, with the commands
// for the kinds that have no markers to remove. In the clone of step 1,
// "ours" is the fork and "theirs" is upstream. Commands are on comment lines:
// they are choices, and pasting step 2 must not make them.
func advice(c report.Conflict, sd Sides) string {
	q := exec.ShellQuote
	p := q(c.Path)
	rm := "git rm -q -- " + p
	switch c.Kind {
	case "binary":
		return ": a binary file, which has no markers to remove; take one side whole (or write a merged file yourself):\n" +
			"#       git checkout --ours -- " + p + "     # the fork's version\n" +
			"#       git checkout --theirs -- " + p + "   # upstream's version"
	case "submodule":
		var opts []string
		if sd.Fork.IsSubmodule() {
			opts = append(opts, "#       git update-index --cacheinfo 160000,"+sd.Fork.Object+","+p+"   # the fork's commit")
		}
		if sd.Upstream.IsSubmodule() {
			opts = append(opts, "#       git update-index --cacheinfo 160000,"+sd.Upstream.Object+","+p+"   # upstream's commit")
		}
		if !sd.Fork.IsSubmodule() || !sd.Upstream.IsSubmodule() {
			opts = append(opts, "#       "+rm+"   # the deletion")
		}
		return ": a submodule, which git cannot merge; point it at one commit (merge the submodule's own history first if you need both):\n" +
			strings.Join(opts, "\n")
	case "modify/delete":
		changed, deleted, ok := keptDeleted(sd)
		if !ok {
			return ": one side changed it and the other deleted it; keep it (edit it to what both sides need) or delete it (" + rm + ")"
		}
		return fmt.Sprintf(": %s changed it and %s deleted it; keep it (edit it to what both sides need) or delete it (%s)", changed, deleted, rm)
	case "rename/delete":
		from := "it"
		if c.OtherPath != "" {
			from = c.OtherPath
		}
		renamed, deleted, ok := keptDeleted(sd)
		if !ok {
			renamed, deleted = "one side", "the other"
		}
		return fmt.Sprintf(": %s renamed %s to %s and %s deleted %s; keep %s (edit it as needed) or delete it (%s)",
			renamed, from, c.Path, deleted, from, c.Path, rm)
	case "rename":
		if c.OtherPath != "" {
			return ": renamed; the other name is " + c.OtherPath
		}
		return ": renamed on one side"
	case "add/add":
		return ": both sides added it; merge the two versions"
	case "file/directory":
		return ": a file on one side, a directory on the other"
	}
	return ": remove the <<<<<<< ======= >>>>>>> markers"
}

// keptDeleted names the side that has the path and the side that has
// nothing there; ok is false when the stages do not say.
func keptDeleted(sd Sides) (kept, deleted string, ok bool) {
	switch {
	case sd.Fork.Mode == "" && sd.Upstream.Mode != "":
		return "upstream", "the fork", true
	case sd.Upstream.Mode == "" && sd.Fork.Mode != "":
		return "the fork", "upstream", true
	}
	return "", "", false
}

// Summary is the plain-text conflict report for people: paths, commits
// on each side, and the commands.
func Summary(in ResolutionInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Merging upstream %s (%s) into fork branch %s (%s) conflicts in %d path(s):\n",
		in.UpstreamBranch, short(in.UpstreamCommit), in.Branch, short(in.ForkCommit), len(in.Conflicts))
	for _, c := range in.Conflicts {
		fmt.Fprintf(&b, "  %s [%s]\n", c.Path, c.Kind)
		for _, u := range c.Upstream {
			fmt.Fprintf(&b, "    upstream %s %s — %s\n", short(u.Hash), u.Subject, u.Author)
		}
		for _, f := range c.Carries {
			fmt.Fprintf(&b, "    fork     %s %s — %s\n", short(f.Hash), f.Subject, f.Author)
		}
	}
	b.WriteString("\nThe fork branch was left untouched. To resolve:\n\n")
	b.WriteString(Resolution(in))
	return b.String()
}
