package testreport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/history"
	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

func render(t testing.TB, in Input) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteEscapesNamesAndMessages(t *testing.T) {
	out := string(render(t, knownInput(t)))
	for _, raw := range []string{
		`<img src=x`, `<script>window.__pwned`, `<svg onload`, `href="javascript:`, `</th></tr><script>`, `</pre></details><img`,
	} {
		if strings.Contains(out, raw) {
			t.Errorf("the report holds %q unescaped", raw)
		}
	}
	for _, escaped := range []string{
		`Kubectl &lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt; should &#34;quote&#34; &amp; &#39;escape&#39; &lt;/th&gt;&lt;/tr&gt;&lt;script&gt;`,
		`&lt;/pre&gt;&lt;/details&gt;&lt;img src=x onerror=&#34;window.__pwned=3&#34;&gt;`,
	} {
		if !strings.Contains(out, escaped) {
			t.Errorf("the report lacks the escaped text %q", escaped)
		}
	}
	// The one script is the page's own, and the policy allows only it.
	if n := strings.Count(out, "<script"); n != 1 {
		t.Errorf("%d script elements, want 1", n)
	}
	if !strings.Contains(out, "script-src '"+strings.ReplaceAll(scriptHash, "+", "&#43;")+"'") {
		t.Errorf("the Content-Security-Policy does not name the script's hash %s", scriptHash)
	}
}

func TestWriteLoadsNothingFromOutside(t *testing.T) {
	out := string(render(t, knownInput(t)))
	// Nothing the page would fetch: no element with a src, no stylesheet
	// link, no frame or image, no url() or @import in its CSS. Links to
	// logs are navigations. html/template escapes '>' in attribute values,
	// so a tag ends at the first '>'; quoted values (test names, messages)
	// are dropped before looking at the attributes' names.
	quoted := regexp.MustCompile(`"[^"]*"`)
	for _, tag := range regexp.MustCompile(`<[a-zA-Z][^>]*>`).FindAllString(out, -1) {
		bare := quoted.ReplaceAllString(tag, `""`)
		if regexp.MustCompile(`(?i)^<(link|iframe|frame|object|embed|img|video|audio|source|image|use)\b|\s(src|srcset|xlink:href|background|poster|data)\s*=`).MatchString(bare) {
			t.Errorf("the report would load something: %s", tag)
		}
	}
	for _, re := range []*regexp.Regexp{regexp.MustCompile(`(?i)url\(`), regexp.MustCompile(`(?i)@import`)} {
		if m := re.FindString(styleCSS); m != "" {
			t.Errorf("the report's CSS would load something: %q", m)
		}
	}
	if !strings.Contains(out, `default-src 'none'`) {
		t.Error("the Content-Security-Policy does not forbid loading")
	}
}

func TestWriteLogLinks(t *testing.T) {
	h := large(t, "master", 2, 5, 3)
	logs := map[string]string{
		h.Runs[0].ID: "https://bucket.s3.test/master/log.txt?X-Amz-Signature=a%2Fb&X-Amz-Date=20260101",
		h.Runs[1].ID: "file:///var/lib/hyperfork/logs/master/2026-01-02 run/log.txt",
		h.Runs[2].ID: "master/2026-01-03T030000Z-0123456789ab-passed/log.txt",
		h.Runs[3].ID: "javascript:alert(document.domain)",
	}
	out := string(render(t, Input{Branches: []Branch{{History: h, Logs: logs}}}))
	for _, want := range []string{
		`href="https://bucket.s3.test/master/log.txt?X-Amz-Signature=a%2Fb&amp;X-Amz-Date=20260101"`,
		`href="file:///var/lib/hyperfork/logs/master/2026-01-02%20run/log.txt"`,
		`href="master/2026-01-03T030000Z-0123456789ab-passed/log.txt"`,
		`href="#ZgotmplZ"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %s", want)
		}
	}
	if strings.Contains(out, "javascript:") {
		t.Error("a javascript: log link survived")
	}
}

func TestWriteRejectsInvalidInputNamingEveryProblem(t *testing.T) {
	h := large(t, "master", 2, 3, 1)
	key := FailureKey{Run: h.Runs[2].ID, Test: junit.ID{Classname: suite, Name: "x"}}
	var buf bytes.Buffer
	err := Write(&buf, Input{ShowRuns: -1, Branches: []Branch{
		{History: h, Suspects: map[FailureKey][]Commit{key: {{Hash: "abc", Side: "upstreem"}, {Hash: "d0d0d0", Side: Carry}}}},
		{},
		{History: h},
	}})
	if err == nil {
		t.Fatal("Write took an invalid input")
	}
	for _, want := range []string{"ShowRuns is -1", "branch 1 has no history", `branch "master" is both branch 0 and branch 2`, `suspect commit abc of "x" in run master-002 has side "upstreem"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "d0d0d0") {
		t.Errorf("the error names a valid commit: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("Write wrote %d bytes of an invalid report", buf.Len())
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	in := knownInput(t)
	a, b := render(t, in), render(t, in)
	if !bytes.Equal(a, b) {
		t.Error("the same input rendered two different reports")
	}
}

func TestWriteEmpty(t *testing.T) {
	out := string(render(t, Input{Branches: []Branch{{History: &history.History{Branch: "new-branch"}}}}))
	for _, want := range []string{"new-branch", "No runs recorded.", "No runs to chart."} {
		if !strings.Contains(out, want) {
			t.Errorf("the report of a branch without runs lacks %q", want)
		}
	}
	if out := string(render(t, Input{})); !strings.Contains(out, "No branches.") {
		t.Error("the report of no branches does not say so")
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteReportsAWriteError(t *testing.T) {
	err := Write(&failingWriter{after: 10 << 10}, knownInput(t))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write to a failing writer: %v", err)
	}
}

// TestWriteLargeReport renders 4 branches × 460 tests × 100 runs and logs
// the file's size and the time it took; it asserts the shape, not the time.
//
//	go test -run WriteLargeReport -v ./internal/testreport/
func TestWriteLargeReport(t *testing.T) {
	in := largeInput(t)
	start := time.Now()
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	start = time.Now()
	if err := Write(io.Discard, in); err != nil {
		t.Fatal(err)
	}
	again := time.Since(start)
	out := buf.String()
	cells, tests := 0, 0
	for _, b := range in.Branches {
		cells += len(b.History.Tests) * len(b.History.Runs)
		tests += len(b.History.Tests)
	}
	if got := strings.Count(out, "<td"); got < cells {
		t.Errorf("%d matrix cells, want at least %d", got, cells)
	}
	if got := strings.Count(out, `<g class="bar`); got != 4*100 {
		t.Errorf("%d chart bars, want %d", got, 4*100)
	}
	t.Logf("report of 4 branches × 460 tests × 100 runs (%d rows, %d cells): %d bytes (%.2f MB, %.1f bytes a cell), rendered in %v (again: %v)",
		tests, cells, len(out), float64(len(out))/1e6, float64(len(out))/float64(cells), elapsed.Round(time.Millisecond), again.Round(time.Millisecond))
}

// largeInput is 4 branches × 460 tests × 100 runs, with a log per run and
// a suspect range for every new failure.
func largeInput(t testing.TB) Input {
	t.Helper()
	var in Input
	for i, name := range []string{"master", "release-1.37", "release-1.36", "release-1.35"} {
		h := large(t, name, 460, 100, uint64(i+1))
		b := Branch{History: h, Logs: map[string]string{}, Suspects: map[FailureKey][]Commit{}}
		for k, r := range h.Runs {
			b.Logs[r.ID] = fmt.Sprintf("https://bucket.s3.test/%s/%s/log.txt?X-Amz-Signature=%064x", name, r.ID, k)
			for _, f := range h.Classify(k).New {
				b.Suspects[FailureKey{Run: r.ID, Test: h.Tests[f.Test].ID}] = []Commit{
					{Hash: fmt.Sprintf("%040x", k), Subject: "Merge upstream change", Side: Upstream},
					{Hash: fmt.Sprintf("%040x", k+1), Subject: "carry: fork patch", Side: Carry},
				}
			}
		}
		in.Branches = append(in.Branches, b)
	}
	return in
}
