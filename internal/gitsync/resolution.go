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
	var paths []string
	for _, c := range in.Conflicts {
		paths = append(paths, q(c.Path))
		fmt.Fprintf(&b, "#   %s (%s)%s\n", c.Path, c.Kind, hint(c))
		for _, u := range c.Upstream {
			fmt.Fprintf(&b, "#     upstream %s %s (%s)\n", short(u.Hash), u.Subject, u.Author)
		}
		for _, f := range c.Carries {
			fmt.Fprintf(&b, "#     fork     %s %s (%s)\n", short(f.Hash), f.Subject, f.Author)
		}
	}
	b.WriteString("git diff --name-only --diff-filter=U   # what is still unresolved\n")
	b.WriteString("# 3. Record the resolution and push it to the fork:\n")
	fmt.Fprintf(&b, "git add -A -- %s\n", strings.Join(paths, " "))
	b.WriteString("git commit --no-edit\n")
	fmt.Fprintf(&b, "git push origin %s\n", q("HEAD:refs/heads/"+in.Branch))
	return b.String()
}

// hint says what resolving this kind of conflict means.
func hint(c report.Conflict) string {
	switch c.Kind {
	case "modify/delete":
		return ": one side deleted it; keep the file (edit it) or delete it (git rm)"
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
