package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
)

// GitHub's limits for a job step (docs.github.com, "Adding a job summary"
// and "Workflow commands"): a step summary over 1 MiB is not shown at all,
// and a step shows at most 10 error annotations.
const (
	GitHubSummaryLimit  = 1 << 20
	githubMaxAnnotation = 10
)

// EnvGitHubStepSummary names the variable GitHub Actions sets to the file
// of the current step's summary.
const EnvGitHubStepSummary = "GITHUB_STEP_SUMMARY"

// GitHubSummary is a channel that appends each message as markdown to the
// job step's summary file, and prints a workflow annotation (::error) for
// each new test failure, which GitHub shows on the run's page and beside
// the workflow file. Outside GitHub Actions (no summary file) it does
// nothing, so one configuration serves CI and a laptop.
//
// The file keeps to GitHubSummaryLimit with whatever else the step wrote
// into it: a message that does not fit is cut at a line and says so. Each
// section ends with its delivery id in an HTML comment; a message whose id
// is already in the file is not written (nor annotated) again.
type GitHubSummary struct {
	path   string
	stdout io.Writer
	limit  int64
	o      *options
	mu     sync.Mutex // one append at a time: the size check and the write go together
}

var _ Channel = (*GitHubSummary)(nil)

// WithStdout sets where the GitHub summary channel prints workflow
// annotations: the process's standard output (the default) under GitHub
// Actions, which reads workflow commands from it.
func WithStdout(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return configErrorf("notify: WithStdout: nil writer")
		}
		o.stdout = w
		return nil
	}
}

// NewGitHubSummary returns a channel appending to the summary file path,
// the value of $GITHUB_STEP_SUMMARY; empty path: not under GitHub Actions,
// and the channel skips every message.
func NewGitHubSummary(path string, opts ...Option) (*GitHubSummary, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	return &GitHubSummary{path: path, stdout: o.stdout, limit: GitHubSummaryLimit, o: o}, nil
}

// Name returns "github-summary <file>".
func (g *GitHubSummary) Name() string {
	if g.path == "" {
		return "github-summary (not under GitHub Actions)"
	}
	return "github-summary " + g.path
}

// Send appends m to the summary and annotates its new failures.
func (g *GitHubSummary) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", g.Name(), err)
	}
	if g.path == "" {
		g.o.log.Debug("notify: not under GitHub Actions, no job summary", "event", m.Event, "branch", m.Branch)
		return nil
	}
	delivery := DeliveryID(m)
	marker := "<!-- hyperfork delivery " + delivery + " -->\n"
	g.mu.Lock()
	defer g.mu.Unlock()
	old, err := os.ReadFile(g.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w: %w", g.Name(), ErrDelivery, err)
	}
	if bytes.Contains(old, []byte(marker)) {
		g.o.log.Info("notify: already in the job summary", "event", m.Event, "branch", m.Branch, "delivery", delivery)
		return nil
	}
	section, err := fitSummary(newView(m).markdown(), marker, g.limit-int64(len(old)))
	if err != nil {
		return fmt.Errorf("%s: %w: %w", g.Name(), ErrDelivery, err)
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n\n")) {
		section = "\n" + section
		if int64(len(old)+len(section)) > g.limit {
			section = section[1:]
		}
	}
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", g.Name(), ErrDelivery, err)
	}
	_, err = f.WriteString(section)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %w", g.Name(), ErrDelivery, err)
	}
	if _, err := io.WriteString(g.stdout, Annotations(m)); err != nil {
		return fmt.Errorf("%s: annotations: %w: %w", g.Name(), ErrDelivery, err)
	}
	return nil
}

// summaryCut is the note a cut section ends with.
const summaryCut = "\n> [!WARNING]\n> This message was cut to keep the job summary under GitHub's 1 MiB limit. The whole message is in the run's report and notification files.\n\n"

// fitSummary returns section and marker within room bytes: whole, or cut
// at a line with a note. It fails only when not even the note fits.
func fitSummary(section, marker string, room int64) (string, error) {
	whole := section + marker + "\n"
	if int64(len(whole)) <= room {
		return whole, nil
	}
	keep := room - int64(len(summaryCut)+len(marker)+1)
	if keep < 0 {
		return "", fmt.Errorf("the job summary file is full (%d bytes left of GitHub's %d); the message is in the run's report", max(room, 0), GitHubSummaryLimit)
	}
	cut := cutAtLine(section, int(keep))
	// A cut inside the details block would leave its code fence open and
	// swallow the note: close both, in the room they need.
	if i := strings.LastIndex(cut, "<details>"); i >= 0 && !strings.Contains(cut[i:], "</details>") {
		closing := "\n</details>\n"
		if fence := openFence(cut[i:]); fence != "" {
			closing = fence + "\n\n</details>\n"
		}
		if cut = cutAtLine(cut, int(keep)-len(closing)); len(cut) > i+len("<details>") {
			cut += closing
		} else {
			cut = cut[:min(i, len(cut))]
		}
	}
	return cut + summaryCut + marker + "\n", nil
}

// cutAtLine returns the longest prefix of s of at most n bytes that ends
// at a line break.
func cutAtLine(s string, n int) string {
	s = truncateUTF8(s, max(n, 0))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return ""
}

// openFence returns the code fence opened in s and not closed, if any.
func openFence(s string) string {
	open := ""
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\n")
		if !strings.HasPrefix(line, "```") {
			continue
		}
		ticks := line[:len(line)-len(strings.TrimLeft(line, "`"))]
		switch {
		case open == "":
			open = ticks
		case line == open:
			open = ""
		}
	}
	return open
}

// Annotations returns the workflow commands the GitHub summary channel
// prints for m: one ::error per new failure, titled with the branch, with
// the test, its failure message and its suspects. Past GitHub's 10 per step
// the last one counts the rest.
func Annotations(m Message) string {
	var b strings.Builder
	title := "New test failure on " + m.Branch
	for i, f := range m.NewFailures {
		if i == githubMaxAnnotation-1 && len(m.NewFailures) > githubMaxAnnotation {
			fmt.Fprintf(&b, "::error title=%s::%s\n", escapeProperty(title),
				escapeData(fmt.Sprintf("and %d more new failures; see the job summary", len(m.NewFailures)-i)))
			break
		}
		text := f.Test
		if f.Message != "" {
			text += "\n" + oneLine(f.Message)
		}
		for j, c := range f.Suspects {
			if j == maxSuspectsShown {
				text += fmt.Sprintf("\nand %d more suspects", len(f.Suspects)-j)
				break
			}
			text += fmt.Sprintf("\nsuspect %s (%s): %s", shortHash(c.Hash), c.Side, oneLine(c.Subject))
		}
		fmt.Fprintf(&b, "::error title=%s::%s\n", escapeProperty(title), escapeData(text))
	}
	return b.String()
}

// escapeData and escapeProperty encode a workflow command's message and
// property values as GitHub's actions/toolkit does.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
