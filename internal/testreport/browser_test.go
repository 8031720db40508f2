package testreport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// chromiumPath is Debian's chromium, which scripts/install-prerequisites.sh
// installs.
const chromiumPath = "/usr/bin/chromium"

// chromium starts a headless Debian chromium with a fresh profile for the
// test, and returns a tab's context; the browser is closed at cleanup.
func chromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		prereq.Missing(t, "Debian's chromium is not at %s: apt-get install -y chromium (scripts/install-prerequisites.sh installs it)", chromiumPath)
	}
	profile, err := os.MkdirTemp("", "testreport-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
		chromedp.CombinedOutput(&out),
	)
	tctx, tcancel := chromedp.NewContext(actx)
	// Start the browser now, so that a page's load time is the page's.
	if err := chromedp.Do(tctx); err != nil {
		tcancel()
		acancel()
		cancel()
		os.RemoveAll(profile)
		t.Fatalf("start %s: %v\n%s", chromiumPath, err, out.String())
	}
	t.Cleanup(func() {
		tcancel()
		acancel() // waits for the browser to exit
		cancel()
		os.RemoveAll(profile)
		if t.Failed() && out.Len() > 0 {
			t.Logf("chromium's output:\n%s", out.String())
		}
	})
	return tctx
}

// open writes the report of in to a file and loads it by file:// URL, as a
// person opens a report they were sent; it returns the file's path.
func open(t *testing.T, ctx context.Context, in Input, name string) (string, time.Duration) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, in); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	u := url.URL{Scheme: "file", Path: path}
	if err := chromedp.Do(ctx, chromedp.Navigate(u.String()), chromedp.WaitReady(chromedp.CSS("body[data-ready]"))); err != nil {
		t.Fatalf("load %s in chromium: %v", u.String(), err)
	}
	return path, time.Since(start)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// do runs actions, failing the test on an error.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// choose picks an option of a select, as a person does: the value changes
// and the select fires change.
func choose(t *testing.T, ctx context.Context, id, value string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const s = document.getElementById(%s); s.value = %s; s.dispatchEvent(new Event("change", {bubbles: true})); return s.value })()`, jsString(id), jsString(value))
	if got := eval[string](t, ctx, js); got != value {
		t.Fatalf("select #%s has no option %q", id, value)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// visibleRows are the names of the matrix rows of a branch's section that
// a person sees.
func visibleRows(t *testing.T, ctx context.Context, section string) []string {
	t.Helper()
	return eval[[]string](t, ctx, fmt.Sprintf(`[...document.querySelectorAll("#%s table.matrix tbody tr")].filter(tr => tr.offsetParent !== null && tr.getClientRects().length > 0).map(tr => tr.cells[0].textContent)`, section))
}

// visibleColumns counts the run columns of a branch's matrix that a person
// sees, in the header and in the first row.
func visibleColumns(t *testing.T, ctx context.Context, section string) (header, cells int) {
	t.Helper()
	n := eval[[]int](t, ctx, fmt.Sprintf(`(() => {
		const s = document.getElementById(%s);
		const shown = el => getComputedStyle(el).display !== "none" && el.getClientRects().length > 0;
		return [[...s.querySelectorAll("thead th.run")].filter(shown).length,
			[...s.querySelector("tbody tr").querySelectorAll("td")].filter(shown).length];
	})()`, jsString(section)))
	return n[0], n[1]
}

// cellOfRun is a matrix cell as the page shows it: its class, its colour
// and its tooltip.
type cellSeen struct {
	Class, Background, Title string
	Width                    float64
}

func cellOfRun(t *testing.T, ctx context.Context, section, test, run string) cellSeen {
	t.Helper()
	return eval[cellSeen](t, ctx, fmt.Sprintf(`(() => {
		const s = document.getElementById(%s);
		const col = [...s.querySelectorAll("thead th")].findIndex(th => th.dataset.run === %s);
		const tr = [...s.querySelectorAll("tbody tr")].find(tr => tr.cells[0].textContent === %s);
		if (col < 1 || !tr) return null;
		const td = tr.cells[col];
		return {Class: td.className, Background: getComputedStyle(td).backgroundImage !== "none" ? getComputedStyle(td).backgroundImage : getComputedStyle(td).backgroundColor, Title: td.title, Width: td.getBoundingClientRect().width};
	})()`, jsString(section), jsString(run), jsString(test)))
}

// screenshot saves a PNG of the page (whole, or what the window shows) in
// the test's temp dir and, when HYPERFORK_TEST_ARTIFACTS is set, there
// too, and logs where.
func screenshot(t *testing.T, ctx context.Context, name string, whole bool) {
	t.Helper()
	shot := chromedp.CaptureScreenshot()
	if whole {
		shot = chromedp.FullScreenshot(100) // 100: PNG
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("HYPERFORK_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot (%d bytes): %s", len(png), p)
	}
}

// TestReportInChromium opens the report of a known history in headless
// Chromium and checks what a person sees there: the matrix cells, the
// search box, the status filter, the run count, the chart, the tabs, and
// that nothing in a test's name or message runs or loads.
func TestReportInChromium(t *testing.T) {
	ctx := chromium(t)
	in := knownInput(t)
	in.ShowRuns = 5
	path, took := open(t, ctx, in, "report.html")
	t.Logf("loaded %s in %v", path, took.Round(time.Millisecond))
	const master, release = "branch-0", "branch-1"
	B, E := specs['B'], hostileName(t)

	t.Run("opens with the newest runs", func(t *testing.T) {
		if h, c := visibleColumns(t, ctx, master); h != 5 || c != 5 {
			t.Errorf("the page opens with %d columns in the header and %d cells in a row, want 5", h, c)
		}
		if got := eval[string](t, ctx, `document.getElementById("runs").selectedOptions[0].textContent`); got != "5" {
			t.Errorf("the run count control says %q", got)
		}
	})
	choose(t, ctx, "runs", "0")

	t.Run("cells", func(t *testing.T) {
		for _, tc := range []struct {
			test, run, class, colour string
		}{
			{B, "master-12", classFail, "rgb(215, 38, 61)"},
			{B, "master-06", classPass, "rgb(46, 154, 72)"},
			{B, "master-05", classInfra, "repeating-linear-gradient"},
			{specs['C'], "master-03", classFlaky, "repeating-linear-gradient"},
			{specs['F'], "master-04", classSkip, "rgb(184, 190, 198)"},
			{specs['D'], "master-02", "", "rgb(241, 242, 244)"},
			{E, "master-11", classFail, "rgb(215, 38, 61)"},
		} {
			c := cellOfRun(t, ctx, master, tc.test, tc.run)
			if c.Class != tc.class || !strings.HasPrefix(c.Background, tc.colour) || c.Width < 8 {
				t.Errorf("%s in %s: class %q, colour %q, %.0f px wide; want class %q, colour %s", tc.test, tc.run, c.Class, c.Background, c.Width, tc.class, tc.colour)
			}
		}
		c := cellOfRun(t, ctx, master, B, "master-12")
		if !strings.Contains(c.Title, "failed · run #12 master-12") || !strings.Contains(c.Title, "test-rollover-<rand> on <ip>:<port>") {
			t.Errorf("the tooltip of B's failure in run 12: %q", c.Title)
		}
		// The hostile name is text: it shows as written and ran nothing.
		if got := eval[string](t, ctx, `String(window.__pwned)`); got != "undefined" {
			t.Errorf("a test's name or message ran script: window.__pwned = %s", got)
		}
		if c := cellOfRun(t, ctx, master, E, "master-11"); !strings.Contains(c.Title, `<img src=x onerror="window.__pwned=3">`) {
			t.Errorf("the hostile message does not show as text in its tooltip: %q", c.Title)
		}
	})

	t.Run("nothing loaded", func(t *testing.T) {
		if n := eval[int](t, ctx, `performance.getEntriesByType("resource").length + document.querySelectorAll("[src], link, iframe, object, embed").length`); n != 0 {
			t.Errorf("the page loaded or would load %d resources", n)
		}
	})

	t.Run("search", func(t *testing.T) {
		do(t, ctx, "type in the search box", chromedp.SendKeys(chromedp.ID("q"), "rollover"))
		if got := visibleRows(t, ctx, master); len(got) != 1 || got[0] != B {
			t.Errorf("searching \"rollover\" shows %q, want only %q", got, B)
		}
		if got := eval[string](t, ctx, `document.querySelector("#branch-0 .shown").textContent`); !strings.Contains(got, "1 of 7 tests") {
			t.Errorf("the count says %q", got)
		}
		do(t, ctx, "clear the search box", chromedp.SendKeys(chromedp.ID("q"), strings.Repeat(kb.Backspace, len("rollover"))))
		if got := visibleRows(t, ctx, master); len(got) != 7 {
			t.Errorf("with the search box empty %d rows show, want 7: %q", len(got), got)
		}
		do(t, ctx, "search two words", chromedp.SendKeys(chromedp.ID("q"), "sig-node SECRETS"))
		if got := visibleRows(t, ctx, master); len(got) != 1 || got[0] != specs['D'] {
			t.Errorf("searching \"sig-node SECRETS\" shows %q", got)
		}
		do(t, ctx, "clear the search box", chromedp.SendKeys(chromedp.ID("q"), strings.Repeat(kb.Backspace, len("sig-node SECRETS"))))
	})

	t.Run("status filter", func(t *testing.T) {
		choose(t, ctx, "status", "failing")
		if got := visibleRows(t, ctx, master); !sameSet(got, []string{B, E}) {
			t.Errorf("failing only shows %q, want B and E", got)
		}
		choose(t, ctx, "status", "flaky")
		if got := visibleRows(t, ctx, master); !sameSet(got, []string{specs['C'], E}) {
			t.Errorf("flaky only shows %q, want C and E", got)
		}
		// In the newest 5 runs, E's flake in run 6 is out of view.
		choose(t, ctx, "runs", "5")
		if got := visibleRows(t, ctx, master); !sameSet(got, []string{specs['C']}) {
			t.Errorf("flaky only in 5 runs shows %q, want C", got)
		}
		choose(t, ctx, "status", "failing")
		if got := visibleRows(t, ctx, master); !sameSet(got, []string{B, E}) {
			t.Errorf("failing only in 5 runs shows %q, want B and E", got)
		}
		choose(t, ctx, "status", "now")
		if got := visibleRows(t, ctx, master); !sameSet(got, []string{B, E}) {
			t.Errorf("failing in the newest run shows %q", got)
		}
		choose(t, ctx, "status", "all")
		choose(t, ctx, "runs", "0")
	})

	t.Run("run count", func(t *testing.T) {
		if h, c := visibleColumns(t, ctx, master); h != 12 || c != 12 {
			t.Errorf("all runs: %d columns in the header and %d cells in a row, want 12", h, c)
		}
		choose(t, ctx, "runs", "10")
		if h, c := visibleColumns(t, ctx, master); h != 10 || c != 10 {
			t.Errorf("10 runs: %d columns in the header and %d cells in a row, want 10", h, c)
		}
		// The newest are the ones shown.
		if got := eval[string](t, ctx, `[...document.querySelectorAll("#branch-0 thead th.run")].filter(th => th.getClientRects().length).map(th => th.dataset.run).join(" ")`); !strings.HasPrefix(got, "master-12 master-11") || !strings.HasSuffix(got, "master-03") {
			t.Errorf("10 runs show %s", got)
		}
		choose(t, ctx, "runs", "0")
		if h, _ := visibleColumns(t, ctx, master); h != 12 {
			t.Errorf("all runs again: %d columns", h)
		}
	})

	t.Run("chart", func(t *testing.T) {
		for _, tc := range []struct {
			section           string
			bars, failingBars int
		}{{master, 12, 6}, {release, 5, 1}} {
			got := eval[[]int](t, ctx, fmt.Sprintf(`(() => { const svg = document.querySelector("#%s svg.trend");
				return [svg.querySelectorAll("g.bar").length, [...svg.querySelectorAll("g.bar")].filter(g => g.querySelector("rect.fail")).length]; })()`, tc.section))
			if got[0] != tc.bars || got[1] != tc.failingBars {
				t.Errorf("%s's chart: %d bars, %d with a failure; want %d and %d", tc.section, got[0], got[1], tc.bars, tc.failingBars)
			}
		}
		// Drawn, not only present: the bars have height on the screen.
		if h := eval[float64](t, ctx, `document.querySelector("#branch-0 svg.trend g.bar rect.pass").getBoundingClientRect().height`); h < 50 {
			t.Errorf("run 1's pass segment is %.1f px high", h)
		}
	})

	t.Run("sections", func(t *testing.T) {
		text := eval[string](t, ctx, `document.getElementById("branch-0").innerText`)
		for _, want := range []string{
			"Newest run #12 master-12", "FAILED",
			"Flaky tests", "New failures", "Suspects: 1 upstream, 1 carry", "apps: deployment controller requeues on <conflict>", "carry: our rollout tweak",
			"Slowest tests", "Failure clusters", "9×", "Runs",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("master's tab does not show %q", want)
			}
		}
		href := eval[string](t, ctx, `document.querySelector("#branch-0 table.runs tbody tr a").href`)
		if !strings.HasPrefix(href, "https://logs.example.test/master/12/log.txt?X-Amz-Signature=abc&X-Amz-Expires=3600") {
			t.Errorf("run 12's log link is %s", href)
		}
		rel := eval[string](t, ctx, `document.querySelectorAll("#branch-0 table.runs tbody tr a")[1].href`)
		if want := "file://" + filepath.Dir(path) + "/logs/master/master-11/log.txt"; rel != want {
			t.Errorf("run 11's log link is %s, want %s", rel, want)
		}
	})

	screenshot(t, ctx, "testreport-master.png", true)

	t.Run("tabs", func(t *testing.T) {
		do(t, ctx, "click release-1.37's tab", chromedp.Click(chromedp.CSS(`nav.branches a[href="#branch-1"]`)),
			chromedp.WaitVisible(chromedp.CSS("#branch-1 table.matrix")))
		shown := eval[[]bool](t, ctx, `["branch-0", "branch-1"].map(id => document.getElementById(id).getClientRects().length > 0)`)
		if shown[0] || !shown[1] {
			t.Errorf("after clicking release-1.37's tab, master shows %v and release-1.37 %v", shown[0], shown[1])
		}
		if got := visibleRows(t, ctx, release); len(got) != 7 {
			t.Errorf("release-1.37 shows %d rows", len(got))
		}
	})
}

// TestLargeReportInChromium loads the report of 4 branches × 460 tests ×
// 100 runs and logs how long the page takes to be ready and to filter;
// it asserts what shows, not the time.
func TestLargeReportInChromium(t *testing.T) {
	prereq.Slow(t, "renders and loads a 4 MB report in chromium")
	ctx := chromium(t)
	path, took := open(t, ctx, largeInput(t), "large.html")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, c := visibleColumns(t, ctx, "branch-0"); h != DefaultShowRuns || c != DefaultShowRuns {
		t.Errorf("the page opens with %d columns (%d cells in a row), want %d", h, c, DefaultShowRuns)
	}
	start := time.Now()
	choose(t, ctx, "status", "failing")
	failing := len(visibleRows(t, ctx, "branch-0"))
	filter := time.Since(start)
	start = time.Now()
	choose(t, ctx, "runs", "0")
	all := time.Since(start)
	if h, _ := visibleColumns(t, ctx, "branch-0"); h != 100 {
		t.Errorf("all runs: %d columns", h)
	}
	if failing == 0 || failing >= 462 {
		t.Errorf("failing only shows %d of 462 rows", failing)
	}
	t.Logf("large report (%d bytes): ready in chromium in %v; failing only (%d rows) in %v; all 100 runs in %v",
		info.Size(), took.Round(time.Millisecond), failing, filter.Round(time.Millisecond), all.Round(time.Millisecond))
	choose(t, ctx, "status", "all")
	screenshot(t, ctx, "testreport-large.png", false)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}
