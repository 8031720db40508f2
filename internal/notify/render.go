package notify

import (
	"fmt"
	"strings"
)

// How much of a message's lists the people-facing channels show: enough to
// act on, little enough to read. The rest is counted ("and 12 more") and
// is in the file channel, the webhook body and the report.
const (
	maxFailuresShown = 20
	maxSuspectsShown = 10
)

// view is what the email, Slack and job summary channels show of a
// message, computed once so that all three say the same things in the same
// order, each in its own markup.
type view struct {
	Title        string
	Facts        []fact
	Failures     []failureView
	MoreFailures int
	Text         string
	// Notes are what a channel adds about itself: an attachment left out.
	Notes    []string
	Delivery string
}

// fact is one labelled line: "Branch: release-1.34".
type fact struct {
	Label string
	Value string
	// Code asks for monospace: hashes, refs and tags are copied, not read.
	Code bool
	// Link is set when Value is a URL to show as a link.
	Link bool
}

type failureView struct {
	Test         string
	Message      string
	Suspects     []Commit
	MoreSuspects int
}

func newView(m Message) view {
	v := view{Title: headline(m), Text: strings.TrimRight(m.Text, "\n"), Delivery: DeliveryID(m)}
	add := func(label, value string, code bool) {
		if value != "" {
			v.Facts = append(v.Facts, fact{Label: label, Value: value, Code: code})
		}
	}
	add("Branch", m.Branch, true)
	add("Fork commit", m.ForkCommit, true)
	add("Upstream commit", m.UpstreamCommit, true)
	if c := m.Counts; c != nil {
		add("Tests", fmt.Sprintf("%d passed, %d failed, %d flaky, %d skipped", c.Passed, c.Failed, c.Flaky, c.Skipped), false)
	}
	switch {
	case m.Pushed:
		add("Published", "yes", false)
	case m.Reason != "":
		add("Published", "no: "+m.Reason, false)
	case strings.HasPrefix(m.Event, "test.") || strings.HasPrefix(m.Event, "release."):
		add("Published", "no", false)
	}
	add("Image", m.Image, true)
	add("Tags", strings.Join(m.Tags, ", "), true)
	if m.LogURL != "" {
		v.Facts = append(v.Facts, fact{Label: "Log", Value: m.LogURL, Link: true})
	}
	for i, f := range m.NewFailures {
		if i == maxFailuresShown {
			v.MoreFailures = len(m.NewFailures) - i
			break
		}
		fv := failureView{Test: f.Test, Message: oneLine(f.Message), Suspects: f.Suspects}
		if len(fv.Suspects) > maxSuspectsShown {
			fv.Suspects, fv.MoreSuspects = fv.Suspects[:maxSuspectsShown], len(fv.Suspects)-maxSuspectsShown
		}
		v.Failures = append(v.Failures, fv)
	}
	return v
}

// headline is the message's one-line title, or what it is about.
func headline(m Message) string {
	if m.Title != "" {
		return oneLine(m.Title)
	}
	if m.Branch == "" {
		return "hyperfork: " + m.Event
	}
	return "hyperfork: " + m.Event + " on " + m.Branch
}

// shortHash is the 12 characters of a commit hash that people paste.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// failureCount says how many new failures there are, for headings.
func (v view) FailureCount() int { return len(v.Failures) + v.MoreFailures }

// plain renders v as plain text, the email's text part.
func (v view) plain() string {
	var b strings.Builder
	b.WriteString(v.Title + "\n\n")
	width := 0
	for _, f := range v.Facts {
		width = max(width, len(f.Label))
	}
	for _, f := range v.Facts {
		fmt.Fprintf(&b, "%-*s  %s\n", width+1, f.Label+":", f.Value)
	}
	if len(v.Failures) > 0 {
		fmt.Fprintf(&b, "\nNew failures (%d):\n", v.FailureCount())
		for _, f := range v.Failures {
			b.WriteString("\n  " + f.Test + "\n")
			if f.Message != "" {
				b.WriteString("    " + f.Message + "\n")
			}
			if len(f.Suspects) > 0 {
				b.WriteString("    suspects:\n")
				for _, c := range f.Suspects {
					fmt.Fprintf(&b, "      %-12s  %-8s  %s\n", shortHash(c.Hash), c.Side, oneLine(c.Subject))
				}
				if f.MoreSuspects > 0 {
					fmt.Fprintf(&b, "      and %d more\n", f.MoreSuspects)
				}
			}
		}
		if v.MoreFailures > 0 {
			fmt.Fprintf(&b, "\n  and %d more new failures\n", v.MoreFailures)
		}
	}
	if v.Text != "" {
		b.WriteString("\n" + v.Text + "\n")
	}
	if len(v.Notes) > 0 {
		b.WriteString("\n" + strings.Join(v.Notes, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\n-- \nhyperfork, delivery %s\n", v.Delivery)
	return b.String()
}

// markdownCell escapes s for a cell of a GitHub markdown table.
func markdownCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}

// markdownCode writes s as inline code that survives backticks in s.
func markdownCode(s string) string {
	s = strings.ReplaceAll(oneLine(s), "`", "'")
	return "`" + s + "`"
}

// markdownText escapes what GitHub's markdown would otherwise take as
// markup or HTML in free text such as a test name or a commit subject.
var markdownText = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "#", `\#`, "|", `\|`,
)

// markdown renders v as GitHub-flavoured markdown, the job summary's.
func (v view) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", markdownText.Replace(v.Title))
	if len(v.Facts) > 0 {
		b.WriteString("| | |\n|---|---|\n")
		for _, f := range v.Facts {
			val := markdownCell(markdownText.Replace(f.Value))
			switch {
			case f.Code:
				val = markdownCell(markdownCode(f.Value))
			case f.Link:
				val = "[" + markdownCell(markdownText.Replace(f.Value)) + "](" + strings.ReplaceAll(f.Value, ")", "%29") + ")"
			}
			fmt.Fprintf(&b, "| %s | %s |\n", f.Label, val)
		}
		b.WriteString("\n")
	}
	if len(v.Failures) > 0 {
		fmt.Fprintf(&b, "#### New failures (%d)\n\n", v.FailureCount())
		for _, f := range v.Failures {
			fmt.Fprintf(&b, "- %s", markdownCode(f.Test))
			if f.Message != "" {
				fmt.Fprintf(&b, ": %s", markdownText.Replace(f.Message))
			}
			b.WriteString("\n")
			for _, c := range f.Suspects {
				fmt.Fprintf(&b, "  - %s %s: %s\n", markdownCode(shortHash(c.Hash)), c.Side, markdownText.Replace(oneLine(c.Subject)))
			}
			if f.MoreSuspects > 0 {
				fmt.Fprintf(&b, "  - and %d more\n", f.MoreSuspects)
			}
		}
		if v.MoreFailures > 0 {
			fmt.Fprintf(&b, "- and %d more\n", v.MoreFailures)
		}
		b.WriteString("\n")
	}
	if v.Text != "" {
		// A fence longer than any backtick run inside cannot be closed early.
		fence := "```"
		for strings.Contains(v.Text, fence) {
			fence += "`"
		}
		fmt.Fprintf(&b, "<details><summary>Details</summary>\n\n%stext\n%s\n%s\n\n</details>\n\n", fence, v.Text, fence)
	}
	return b.String()
}
