package citest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/conformance"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
)

// No Jenkins runs here. These tests read ci/Jenkinsfile as Groovy source
// (strings and comments masked, blocks found by their braces) and check it
// against what the rest of hyperfork defines: the report's JSON, the JUnit
// folder the pipeline writes, the contract's exit codes, the secrets the
// config names, the pinned tools.

// jenkinsfile is the source, the same text with every comment and string
// literal blanked out (same offsets), so braces can be matched, and the
// source with only the comments blanked out.
type jenkinsfile struct {
	src, code, noComments string
}

func loadJenkinsfile(t *testing.T) *jenkinsfile {
	t.Helper()
	src := readFile(t, filepath.Join(root(t), "ci", "Jenkinsfile"))
	code, noComments, err := maskGroovy(src)
	if err != nil {
		t.Fatalf("ci/Jenkinsfile: %v", err)
	}
	return &jenkinsfile{src: src, code: code, noComments: noComments}
}

// maskGroovy blanks comments and string literals (single and double
// quoted, with ${…} in the latter, and triple quoted) out of src, keeping
// newlines and offsets, and checks that (), [] and {} balance in what is
// left.
func maskGroovy(src string) (code, noComments string, err error) {
	b, nc := []byte(src), []byte(src)
	blank := func(from, to int) {
		for i := from; i < to && i < len(b); i++ {
			if b[i] != '\n' {
				b[i] = ' '
			}
		}
	}
	comment := func(from, to int) {
		blank(from, to)
		for i := from; i < to && i < len(nc); i++ {
			if nc[i] != '\n' {
				nc[i] = ' '
			}
		}
	}
	var stack []byte
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case strings.HasPrefix(src[i:], "//"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			comment(i, i+end)
			i += end
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return "", "", errorfLine(line, "unterminated /* comment")
			}
			line += strings.Count(src[i:i+end+4], "\n")
			comment(i, i+end+4)
			i += end + 4
		case strings.HasPrefix(src[i:], "'''"), strings.HasPrefix(src[i:], `"""`):
			q := src[i : i+3]
			end := strings.Index(src[i+3:], q)
			if end < 0 {
				return "", "", errorfLine(line, "unterminated %s string", q)
			}
			line += strings.Count(src[i:i+end+6], "\n")
			blank(i, i+end+6)
			i += end + 6
		case c == '\'' || c == '"':
			end, err := stringEnd(src, i)
			if err != nil {
				return "", "", errorfLine(line, "%v", err)
			}
			blank(i, end)
			i = end
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
			i++
		case c == ')' || c == ']' || c == '}':
			open := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return "", "", errorfLine(line, "unbalanced %q", c)
			}
			stack = stack[:len(stack)-1]
			i++
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return "", "", errorfLine(line, "%d unclosed brackets (%q)", len(stack), stack)
	}
	return string(b), string(nc), nil
}

// stringEnd returns the offset after the single-line string literal that
// starts at i; a "…" string's ${…} may hold code with strings of its own.
func stringEnd(src string, i int) (int, error) {
	q := src[i]
	for j := i + 1; j < len(src); j++ {
		switch c := src[j]; {
		case c == '\\':
			j++
		case c == '\n':
			return 0, errorfLine(0, "string not closed on its line")
		case c == q:
			return j + 1, nil
		case q == '"' && strings.HasPrefix(src[j:], "${"):
			depth := 0
			for k := j + 1; k < len(src); k++ {
				switch src[k] {
				case '{':
					depth++
				case '}':
					depth--
				case '\'', '"':
					end, err := stringEnd(src, k)
					if err != nil {
						return 0, err
					}
					k = end - 1
				}
				if depth == 0 {
					j = k
					break
				}
			}
		}
	}
	return 0, errorfLine(0, "unterminated string")
}

type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string {
	if e.line == 0 {
		return e.msg
	}
	return "line " + strconv.Itoa(e.line) + ": " + e.msg
}

func errorfLine(line int, format string, args ...any) error {
	return &lineError{line, fmt.Sprintf(format, args...)}
}

// block returns the offsets of the body (between the braces) of the first
// block that follows the match of re outside comments.
func (j *jenkinsfile) block(t *testing.T, re string) (int, int) {
	t.Helper()
	loc := regexp.MustCompile(re).FindStringIndex(j.noComments)
	if loc == nil {
		t.Fatalf("ci/Jenkinsfile has no %s", re)
	}
	return j.blockAt(t, loc[1])
}

// blockAt returns the body of the first block at or after offset from.
func (j *jenkinsfile) blockAt(t *testing.T, from int) (int, int) {
	t.Helper()
	open := strings.IndexByte(j.code[from:], '{')
	if open < 0 {
		t.Fatalf("ci/Jenkinsfile: no block after offset %d", from)
	}
	open += from
	depth := 0
	for i := open; i < len(j.code); i++ {
		switch j.code[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return open + 1, i
			}
		}
	}
	t.Fatal("ci/Jenkinsfile: unclosed block")
	return 0, 0
}

// envValue is the value of NAME = '…' in the pipeline's environment block.
func (j *jenkinsfile) envValue(t *testing.T, name string) string {
	t.Helper()
	from, to := j.block(t, `\benvironment\s*`)
	m := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*'([^']*)'`).FindStringSubmatch(j.src[from:to])
	if m == nil {
		t.Fatalf("the environment block sets no %s = '…'", name)
	}
	return m[1]
}

// TestJenkinsfileExitCodes checks releaseBranch's mapping of the contract's
// exit codes: the status is captured (not thrown), every code of the
// contract that is not a plain failure has its case, no case falls through
// into the next, and the report fields each case quotes exist in the JSON
// that internal/report writes.
func TestJenkinsfileExitCodes(t *testing.T) {
	j := loadJenkinsfile(t)
	from, to := j.block(t, `def releaseBranch\(String branch\)\s*`)
	body := j.src[from:to]
	if !regexp.MustCompile(`code = sh\(script: '[^']*go tool mage release',\s*returnStatus: true\)`).MatchString(body) {
		t.Fatalf("releaseBranch does not capture the exit code of `go tool mage release` with returnStatus: true (a plain sh throws on non-zero, before any mapping):\n%s", body)
	}
	// go tool exits 0 after its tool was killed: a stale report must not
	// vouch for this run, and 0 without a report saying 0 is an error.
	if !strings.Contains(body, `rm -f "$HYPERFORK_REPORT"; `) {
		t.Errorf("releaseBranch does not remove an earlier run's report before the release:\n%s", body)
	}
	guard := regexp.MustCompile(`if \(code == 0 && !reportSaysDone\(report\)\) \{\s*error\(`).FindStringIndex(body)
	if sw := strings.Index(body, "switch (code)"); guard == nil || guard[0] > sw {
		t.Errorf("releaseBranch does not fail an exit 0 without a report saying 0 before mapping the code:\n%s", body)
	}
	if from, to := j.block(t, `def reportSaysDone\(String report\)\s*`); !strings.Contains(j.src[from:to], "fileExists(report)") || !strings.Contains(j.src[from:to], "rep['exitCode'] == 0") {
		t.Errorf("reportSaysDone does not check that the report exists and says exitCode 0:\n%s", j.src[from:to])
	}
	loc := regexp.MustCompile(`switch \(code\)\s*`).FindStringIndex(j.code[from:to])
	if loc == nil {
		t.Fatal("releaseBranch has no switch (code)")
	}
	sFrom, sTo := j.blockAt(t, from+loc[1])
	// The case labels at the top of the switch block, and their bodies.
	labels := regexp.MustCompile(`(?m)^\s*(case (\d+):|default:)`).FindAllStringSubmatchIndex(j.code[sFrom:sTo], -1)
	cases := map[string]string{}
	var order []string
	for i, l := range labels {
		end := sTo - sFrom
		if i+1 < len(labels) {
			end = labels[i+1][0]
		}
		name := "default"
		if l[4] >= 0 {
			name = j.code[sFrom+l[4] : sFrom+l[5]]
		}
		cases[name] = strings.TrimSpace(j.src[sFrom+l[1] : sFrom+end])
		order = append(order, name)
	}
	want := []string{"0", "3", "4", "5", "default"}
	if !slices.Equal(order, want) {
		t.Fatalf("switch (code) has the cases %q, want %q", order, want)
	}
	for _, name := range order[:len(order)-1] {
		if !strings.HasSuffix(cases[name], "break") {
			t.Errorf("case %s does not end in break: Groovy falls through into the next case:\n%s", name, cases[name])
		}
	}
	for _, tc := range []struct {
		code         string
		has, hasNone []string
	}{
		{strconv.Itoa(report.ExitConflict), []string{"unstable(", "describe(", "reportText(b['sync'], 'resolution')"}, []string{"error("}},
		{strconv.Itoa(report.ExitTests), []string{"error(", "describe(", "reportList(b['test'], 'new')"}, nil},
		{strconv.Itoa(report.ExitLocked), []string{"currentBuild.result = 'NOT_BUILT'"}, []string{"error(", "unstable("}},
		{"default", []string{"error("}, nil},
		{strconv.Itoa(report.ExitOK), nil, []string{"error(", "unstable(", "currentBuild.result"}},
	} {
		for _, s := range tc.has {
			if !strings.Contains(cases[tc.code], s) {
				t.Errorf("case %s does not call %s:\n%s", tc.code, s, cases[tc.code])
			}
		}
		for _, s := range tc.hasNone {
			if strings.Contains(cases[tc.code], s) {
				t.Errorf("case %s calls %s:\n%s", tc.code, s, cases[tc.code])
			}
		}
	}
	if from, to := j.block(t, `def describe\(String line\)\s*`); !strings.Contains(j.src[from:to], "currentBuild.description =") {
		t.Error("describe does not set currentBuild.description")
	}

	// The report fields quoted, against the JSON internal/report writes.
	b, err := json.Marshal(&report.Report{Target: "release", Branches: []*report.Branch{{
		Name: "master",
		Sync: &report.Sync{Status: report.SyncConflict, Resolution: "git clone …"},
		Test: &report.Test{Status: "failed", New: []string{"spec"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Branches []map[string]any `json:"branches"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	fields := regexp.MustCompile(`report(Text|List)\(b\['(\w+)'\], '(\w+)'\)`).FindAllStringSubmatch(body, -1)
	if len(fields) < 2 {
		t.Fatalf("releaseBranch quotes %d report fields, want the resolution and the new failures", len(fields))
	}
	for _, f := range fields {
		stage, _ := rep.Branches[0][f[2]].(map[string]any)
		v, ok := stage[f[3]]
		switch {
		case !ok:
			t.Errorf("the report has no branches[].%s.%s (the JSON: %s)", f[2], f[3], b)
		case f[1] == "Text":
			if _, isString := v.(string); !isString {
				t.Errorf("branches[].%s.%s is %T, reportText reads a string", f[2], f[3], v)
			}
		case f[1] == "List":
			if _, isList := v.([]any); !isList {
				t.Errorf("branches[].%s.%s is %T, reportList reads a list", f[2], f[3], v)
			}
		}
	}
}

// TestJenkinsfileCredentials checks that the credentials bound are exactly
// the variables the *Env fields of ci/branches.ci.yaml name, and that every
// run of a target that builds the notifiers happens inside the binding.
func TestJenkinsfileCredentials(t *testing.T) {
	j := loadJenkinsfile(t)
	from, to := j.block(t, `def hyperforkCredentials\(\)\s*`)
	body := j.src[from:to]
	var bound []string
	for _, m := range regexp.MustCompile(`(?:variable|usernameVariable|passwordVariable): '(\w+)'`).FindAllStringSubmatch(body, -1) {
		bound = append(bound, m[1])
	}
	for _, m := range regexp.MustCompile(`(\w+)\s*=\s*credentials\(`).FindAllStringSubmatch(j.src, -1) {
		bound = append(bound, m[1]) // credentials() in an environment block
	}
	slices.Sort(bound)
	if names := secretNames(t); !slices.Equal(bound, names) {
		t.Errorf("the Jenkinsfile binds %q; the *Env fields of ci/branches.ci.yaml name %q", bound, names)
	}
	// Every `go tool mage` run but matrix (which builds no notifier) is
	// inside a withCredentials(hyperforkCredentials()) block.
	var spans [][2]int
	for _, loc := range regexp.MustCompile(`withCredentials\(hyperforkCredentials\(\)\)\s*`).FindAllStringIndex(j.code, -1) {
		a, b := j.blockAt(t, loc[1])
		spans = append(spans, [2]int{a, b})
	}
	// The commands of sh steps, not messages or comments.
	var runs [][]int
	for _, sh := range regexp.MustCompile(`\bsh(?:\(script:)? '([^']*)'`).FindAllStringSubmatchIndex(j.noComments, -1) {
		for _, r := range regexp.MustCompile(`go tool mage (\w+)`).FindAllStringSubmatchIndex(j.src[sh[2]:sh[3]], -1) {
			for k := range r {
				r[k] += sh[2]
			}
			runs = append(runs, r)
		}
	}
	var targets []string
	for _, r := range runs {
		target := j.src[r[2]:r[3]]
		targets = append(targets, target)
		if target == "matrix" {
			continue
		}
		inside := false
		for _, s := range spans {
			inside = inside || s[0] <= r[0] && r[0] < s[1]
		}
		if !inside {
			t.Errorf("`go tool mage %s` runs outside withCredentials(hyperforkCredentials()): its notifiers would miss their secrets", target)
		}
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"matrix", "release", "report"}) {
		t.Errorf("the Jenkinsfile runs go tool mage %q, want matrix, release and report once each", targets)
	}
}

// TestJenkinsfileArtifacts checks the JUnit glob and the archived files
// against the names the pipeline and the Jenkinsfile write.
func TestJenkinsfileArtifacts(t *testing.T) {
	j := loadJenkinsfile(t)
	// skipMarkingBuildUnstable: a flake's first failing pass is among the
	// files, and a release that exited 0 must not turn UNSTABLE for it.
	m := regexp.MustCompile(`junit allowEmptyResults: true, skipMarkingBuildUnstable: true, testResults: '([^']+)'`).FindStringSubmatch(j.src)
	if m == nil {
		t.Fatal("ci/Jenkinsfile has no `junit allowEmptyResults: true, skipMarkingBuildUnstable: true, testResults: '…'`")
	}
	glob := m[1]
	junit := j.envValue(t, "HYPERFORK_JUNIT")
	html := j.envValue(t, "HYPERFORK_HTML")
	am := regexp.MustCompile(`archiveArtifacts artifacts: '([^']+)'`).FindStringSubmatch(j.src)
	if am == nil {
		t.Fatal("ci/Jenkinsfile has no archiveArtifacts artifacts: '…'")
	}
	archived := am[1]
	// The report file of a branch, as releaseBranch names it.
	rm := regexp.MustCompile(`branch\.replaceAll\('([^']+)', '_'\)`).FindStringSubmatch(j.src)
	if rm == nil || !strings.Contains(j.src, `def report = "hyperfork-report-${safe}.json"`) || !strings.Contains(j.src, `"HYPERFORK_REPORT=${report}"`) {
		t.Fatal("releaseBranch no longer names its report hyperfork-report-<safe branch>.json")
	}
	safe := regexp.MustCompile(rm[1])
	clean := regexp.MustCompile(`sh 'rm -rf ([^']+)'`).FindStringSubmatch(j.src)
	if clean == nil {
		t.Fatal("Prepare does not remove the last build's JUnit and reports (the workspace is kept: Jenkins would count them again)")
	}
	cleaned := strings.ReplaceAll(clean[1], " ", ",")

	for _, branch := range append(configuredBranches(t), "company/release-1.33") {
		dir := junit + "/" + store.EncodeName(branch)
		for _, f := range []string{dir + "/run-junit_01.xml", dir + "/retry-1-junit_serial.xml"} {
			if !antGlob(glob).MatchString(f) {
				t.Errorf("the junit glob %q does not match %s, where the pipeline copies the JUnit of %s", glob, f, branch)
			}
			if !matchesAny(archived, f) {
				t.Errorf("archiveArtifacts %q does not keep %s", archived, f)
			}
			if !matchesAny(cleaned, f) && !matchesAny(cleaned, junit) {
				t.Errorf("Prepare's rm -rf %s leaves %s of the last build", clean[1], f)
			}
		}
		rep := "hyperfork-report-" + safe.ReplaceAllString(branch, "_") + ".json"
		if !matchesAny(archived, rep) || !matchesAny(cleaned, rep) {
			t.Errorf("the report %s is not archived (%q) or not cleaned (%q)", rep, archived, clean[1])
		}
	}
	if !matchesAny(archived, html) {
		t.Errorf("archiveArtifacts %q does not keep the HTML report %s", archived, html)
	}
	// The logs the pipeline keeps in a folder store are not JUnit to count
	// twice: the glob must take HYPERFORK_JUNIT only.
	if antGlob(glob).MatchString(".hyperfork/logs/test/master/20261203T020000Z-abc-failed/junit_01.xml") {
		t.Errorf("the junit glob %q also takes the test logs' JUnit: every result would count twice", glob)
	}
}

// TestJenkinsfileStages checks the parameters, the pinned tools and the
// stage per branch built from the matrix target.
func TestJenkinsfileStages(t *testing.T) {
	j := loadJenkinsfile(t)
	for _, want := range []string{
		"string(name: 'BRANCHES'",
		"booleanParam(name: 'FORCE'",
		`HYPERFORK_FORCE = "${params.FORCE ? '1' : ''}"`,
		`withEnv(["HYPERFORK_BRANCHES=${params.BRANCHES ?: ''}"])`,
		"json = sh(script: 'go tool mage matrix', returnStdout: true).trim()",
		"branchNames = readJSON(text: json)",
		`withEnv(["HYPERFORK_BRANCHES=${branch}", "HYPERFORK_REPORT=${report}"])`,
		"parallel runs",
		"go install sigs.k8s.io/kind@" + conformance.KindVersion,
	} {
		if !strings.Contains(j.src, want) {
			t.Errorf("ci/Jenkinsfile does not hold %s", want)
		}
	}
	for _, pkg := range []string{"sigs.k8s.io/kubetest2", "sigs.k8s.io/kubetest2/kubetest2-kind", "sigs.k8s.io/kubetest2/kubetest2-tester-ginkgo"} {
		if !strings.Contains(j.src, " "+pkg+"@"+conformance.Kubetest2Commit) {
			t.Errorf("ci/Jenkinsfile does not install %s@%s", pkg, conformance.Kubetest2Commit)
		}
	}
	// The stage per branch: the loop over the matrix output puts a closure
	// per branch into the map that parallel runs, each calling releaseBranch
	// with its own copy of the name (a closure over the loop variable would
	// run the last branch N times).
	from, to := j.block(t, `stage\('Release'\)\s*`)
	body := j.src[from:to]
	for _, want := range []string{"for (b in branchNames)", "def branch = b", "runs[branch] = {", "releaseBranch(branch)"} {
		if !strings.Contains(body, want) {
			t.Errorf("the Release stage does not hold %s:\n%s", want, body)
		}
	}
}
