package notify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGitHubSummaryAppendsMarkdownAndAnnotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary")
	const before = "## Build\nbuilt 5 images\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	n, err := New([]Spec{{Type: TypeGitHubSummary}}, env(map[string]string{EnvGitHubStepSummary: path}), WithStdout(&stdout))
	if err != nil {
		t.Fatal(err)
	}
	m := failedMessage(testLog(1000))
	if err := n.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, before+"\n### hyperfork: release-1.34 at 0123abcd4567 has 2 new test failures; not published\n") {
		t.Errorf("summary does not keep what was there and append the title:\n%s", got)
	}
	for _, want := range []string{
		"| Branch | `release-1.34` |",
		"| Tests | 410 passed, 2 failed, 1 flaky, 37 skipped |",
		"| Published | no: 2 new failures |",
		"| Image | `" + m.Image + "` |",
		"| Log | [" + m.LogURL + "](" + m.LogURL + ") |",
		"#### New failures (2)\n",
		"- `[sig-network] Services should serve endpoints on same port and different protocols`: timed out waiting for the condition\n",
		"  - `111111111111` upstream: kube-proxy: reorder &lt;nft&gt; rules & chains\n",
		"<details><summary>Details</summary>\n\n```text\nThe candidate was not promoted.\nRerun: go tool mage release\n```\n\n</details>",
		"<!-- hyperfork delivery " + DeliveryID(m) + " -->\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	wantAnnotations := "::error title=New test failure on release-1.34::[sig-network] Services should serve endpoints on same port and different protocols" +
		"%0Atimed out waiting for the condition%0Asuspect 111111111111 (upstream): kube-proxy: reorder <nft> rules & chains" +
		"%0Asuspect 222222222222 (carry): carry: our iptables patch\n" +
		"::error title=New test failure on release-1.34::[sig-apps] Deployment should run the lifecycle of a Deployment%0Aexpected 3 replicas, got 2\n"
	if stdout.String() != wantAnnotations {
		t.Errorf("annotations\n%s\nwant\n%s", stdout.String(), wantAnnotations)
	}
	// The same event again (a rerun in the same job): nothing new.
	if err := n.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if !bytes.Equal(again, b) || stdout.String() != wantAnnotations {
		t.Error("the same event was written or annotated twice")
	}
}

func TestGitHubSummaryKeepsUnderOneMiB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary")
	// Another step wrote most of the budget already.
	old := bytes.Repeat([]byte("earlier output line\n"), (GitHubSummaryLimit-6000)/20)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	g, err := NewGitHubSummary(path, WithStdout(&stdout))
	if err != nil {
		t.Fatal(err)
	}
	m := failedMessage(nil)
	m.Text = strings.Repeat("a long conflict explanation line\n", 2000)
	if err := g.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) > GitHubSummaryLimit {
		t.Fatalf("summary is %d bytes, over GitHub's %d", len(b), GitHubSummaryLimit)
	}
	tail := string(b[len(old):])
	if !strings.Contains(tail, "This message was cut to keep the job summary under GitHub's 1 MiB limit") ||
		!strings.HasSuffix(tail, "<!-- hyperfork delivery "+DeliveryID(m)+" -->\n\n") {
		t.Errorf("cut section does not end with the note and the marker:\n%s", tail[max(0, len(tail)-600):])
	}
	if !strings.Contains(tail, "### hyperfork: release-1.34") || !strings.Contains(tail, "#### New failures (2)") {
		t.Errorf("the cut lost the head of the message:\n%s", tail)
	}
	if strings.Count(stdout.String(), "::error ") != 2 {
		t.Errorf("annotations %q: want both new failures even when the summary is cut", stdout.String())
	}

	// Full: the next message cannot even say it was cut.
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), GitHubSummaryLimit-100), 0o644); err != nil {
		t.Fatal(err)
	}
	m.ID = "another event"
	err = g.Send(background(t), m)
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "the job summary file is full") {
		t.Errorf("error %v: want ErrDelivery saying the summary is full", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != GitHubSummaryLimit-100 {
		t.Errorf("a full summary grew to %d bytes", fi.Size())
	}
}

func TestGitHubSummaryOneHugeMessageFits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary")
	g, err := NewGitHubSummary(path, WithStdout(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	m := failedMessage(nil)
	m.Text = strings.Repeat("é and more text\n", 200_000) // 3.4 MB, multi-byte characters
	if err := g.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) > GitHubSummaryLimit || len(b) < GitHubSummaryLimit-4096 {
		t.Errorf("summary is %d bytes, want just under %d", len(b), GitHubSummaryLimit)
	}
	got := string(b)
	if !strings.Contains(got, "é and more text\n```\n\n</details>\n\n> [!WARNING]\n> This message was cut") {
		t.Errorf("a cut inside the details block must close its fence and the block before the note:\n%s", got[len(got)-400:])
	}
}

func TestGitHubSummaryOutsideActionsDoesNothing(t *testing.T) {
	var stdout bytes.Buffer
	n, err := New([]Spec{{Type: TypeGitHubSummary}}, env(nil), WithStdout(&stdout))
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Channels()[0].Name(); got != "github-summary (not under GitHub Actions)" {
		t.Errorf("Name() = %q", got)
	}
	if err := n.Send(background(t), failedMessage(nil)); err != nil || stdout.Len() != 0 {
		t.Errorf("Send: %v, stdout %q; want nothing done", err, stdout.String())
	}
}

func TestAnnotationsCapAtTenAndEscape(t *testing.T) {
	m := Message{Branch: "team/x:1,2"}
	for i := range 15 {
		m.NewFailures = append(m.NewFailures, Failure{Test: fmt.Sprintf("test %d", i), Message: "100% broken\r\nsecond line"})
	}
	lines := strings.Split(strings.TrimSuffix(Annotations(m), "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d annotations, want GitHub's 10", len(lines))
	}
	if want := "::error title=New test failure on team/x%3A1%2C2::test 0%0A100%25 broken second line"; lines[0] != want {
		t.Errorf("first annotation %q, want %q", lines[0], want)
	}
	if want := "::error title=New test failure on team/x%3A1%2C2::and 6 more new failures; see the job summary"; lines[9] != want {
		t.Errorf("last annotation %q, want %q", lines[9], want)
	}
}
