package citest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// root is hyperfork's checkout.
func root(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// workflow is what the tests read of a GitHub Actions workflow.
type workflow struct {
	On struct {
		Schedule         []struct{ Cron string } `yaml:"schedule"`
		WorkflowDispatch *struct {
			Inputs map[string]struct {
				Type    string `yaml:"type"`
				Default any    `yaml:"default"`
			} `yaml:"inputs"`
		} `yaml:"workflow_dispatch"`
	} `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Concurrency any               `yaml:"concurrency"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]*job   `yaml:"jobs"`
}

type job struct {
	Name        string            `yaml:"name"`
	Needs       any               `yaml:"needs"`
	RunsOn      string            `yaml:"runs-on"`
	Permissions map[string]string `yaml:"permissions"`
	Concurrency *struct {
		Group            string `yaml:"group"`
		CancelInProgress *bool  `yaml:"cancel-in-progress"`
	} `yaml:"concurrency"`
	Strategy *struct {
		FailFast *bool          `yaml:"fail-fast"`
		Matrix   map[string]any `yaml:"matrix"`
	} `yaml:"strategy"`
	Env     map[string]string `yaml:"env"`
	Outputs map[string]string `yaml:"outputs"`
	Steps   []*step           `yaml:"steps"`
}

type step struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	With  map[string]string `yaml:"with"`
}

func loadWorkflow(t testing.TB, name string) *workflow {
	t.Helper()
	var w workflow
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root(t), "ci", "github", name))), &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &w
}

func (w *workflow) job(t testing.TB, id string) *job {
	t.Helper()
	j := w.Jobs[id]
	if j == nil {
		t.Fatalf("the workflow has no job %q", id)
	}
	return j
}

// stepByID returns the step with the id, failing the test without one.
func (j *job) stepByID(t testing.TB, id string) *step {
	t.Helper()
	for _, s := range j.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("the job has no step with id %q", id)
	return nil
}

// stepsUsing returns the steps that use the action (owner/name@ref).
func (j *job) stepsUsing(action string) []*step {
	var out []*step
	for _, s := range j.Steps {
		if s.Uses == action {
			out = append(out, s)
		}
	}
	return out
}

// ctx is the expression contexts of one run: inputs, vars, secrets, matrix,
// steps, needs, github. Keys are lower case, as GitHub compares them.
type ctx map[string]any

// expr matches one ${{ … }} placeholder.
var expr = regexp.MustCompile(`\$\{\{(.*?)\}\}`)

// eval replaces every ${{ }} in s by its value in c, as GitHub does for an
// env value or an input (a string result). Unknown contexts and functions
// are errors, so an expression this evaluator does not understand fails the
// test instead of evaluating to something plausible.
func eval(c ctx, s string) (string, error) {
	var errs []error
	out := expr.ReplaceAllStringFunc(s, func(m string) string {
		v, err := evalValue(c, m)
		if err != nil {
			errs = append(errs, err)
			return ""
		}
		str, err := toString(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
		}
		return str
	})
	return out, errors.Join(errs...)
}

// evalValue evaluates one "${{ … }}" to a value (for fromJSON results).
func evalValue(c ctx, placeholder string) (any, error) {
	src := strings.TrimPrefix(placeholder, "${{")
	node, perr := actionlint.NewExprParser().Parse(actionlint.NewExprLexer(src))
	if perr != nil {
		return nil, fmt.Errorf("%s: %s", placeholder, perr.Message)
	}
	v, err := evalNode(c, node)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", placeholder, err)
	}
	return v, nil
}

func evalNode(c ctx, n actionlint.ExprNode) (any, error) {
	switch n := n.(type) {
	case *actionlint.VariableNode:
		v, ok := c[n.Name]
		if !ok {
			return nil, fmt.Errorf("context %q is not given to this evaluation", n.Name)
		}
		return v, nil
	case *actionlint.ObjectDerefNode:
		r, err := evalNode(c, n.Receiver)
		if err != nil {
			return nil, err
		}
		return property(r, n.Property), nil
	case *actionlint.IndexAccessNode:
		r, err := evalNode(c, n.Operand)
		if err != nil {
			return nil, err
		}
		i, err := evalNode(c, n.Index)
		if err != nil {
			return nil, err
		}
		if s, ok := i.(string); ok {
			return property(r, strings.ToLower(s)), nil
		}
		return nil, fmt.Errorf("index %v is not supported", i)
	case *actionlint.StringNode:
		return n.Value, nil
	case *actionlint.BoolNode:
		return n.Value, nil
	case *actionlint.IntNode:
		return float64(n.Value), nil
	case *actionlint.FloatNode:
		return n.Value, nil
	case *actionlint.NullNode:
		return nil, nil
	case *actionlint.NotOpNode:
		v, err := evalNode(c, n.Operand)
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case *actionlint.LogicalOpNode:
		l, err := evalNode(c, n.Left)
		if err != nil {
			return nil, err
		}
		// && and || give an operand, not a boolean, and short-circuit.
		if (n.Kind == actionlint.LogicalOpNodeKindAnd) != truthy(l) {
			return l, nil
		}
		return evalNode(c, n.Right)
	case *actionlint.CompareOpNode:
		l, err := evalNode(c, n.Left)
		if err != nil {
			return nil, err
		}
		r, err := evalNode(c, n.Right)
		if err != nil {
			return nil, err
		}
		ls, lerr := toString(l)
		rs, rerr := toString(r)
		if lerr != nil || rerr != nil {
			return nil, fmt.Errorf("comparing %v and %v is not supported", l, r)
		}
		eq := strings.EqualFold(ls, rs) // GitHub compares strings ignoring case
		switch n.Kind {
		case actionlint.CompareOpNodeKindEq:
			return eq, nil
		case actionlint.CompareOpNodeKindNotEq:
			return !eq, nil
		}
		return nil, fmt.Errorf("operator %s is not supported", n.Kind)
	case *actionlint.FuncCallNode:
		args := make([]any, len(n.Args))
		for i, a := range n.Args {
			v, err := evalNode(c, a)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		return call(strings.ToLower(n.Callee), args)
	}
	return nil, fmt.Errorf("expression node %T is not supported", n)
}

func call(name string, args []any) (any, error) {
	switch name {
	case "fromjson":
		s, ok := args[0].(string)
		if len(args) != 1 || !ok {
			return nil, fmt.Errorf("fromJSON takes one string, got %v", args)
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("fromJSON(%q): %w", s, err)
		}
		return v, nil
	case "format":
		f, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("format takes a string first, got %v", args[0])
		}
		for i, a := range args[1:] {
			s, err := toString(a)
			if err != nil {
				return nil, err
			}
			f = strings.ReplaceAll(f, "{"+strconv.Itoa(i)+"}", s)
		}
		return f, nil
	}
	return nil, fmt.Errorf("function %s is not supported", name)
}

func property(r any, name string) any {
	if m, ok := r.(map[string]any); ok {
		for k, v := range m {
			if strings.EqualFold(k, name) {
				return v
			}
		}
	}
	return nil // GitHub: a missing property is null
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case float64:
		return v != 0
	}
	return true
}

func toString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("%v (%T) does not convert to a string", v, v)
}

// envOf evaluates the env maps (workflow, job, step: later ones win) in c.
func envOf(t testing.TB, c ctx, maps ...map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			s, err := eval(c, v)
			if err != nil {
				t.Fatalf("env %s: %v", k, err)
			}
			out[k] = s
		}
	}
	return out
}

// bashResult is what a run script did.
type bashResult struct {
	code    int
	out     string // stdout and stderr
	output  string // what it wrote to $GITHUB_OUTPUT
	summary string // what it wrote to $GITHUB_STEP_SUMMARY
}

// runStep runs a step's script as GitHub's `shell: bash` does (bash
// --noprofile --norc -eo pipefail) in dir, with the process environment
// less hyperfork's and GitHub's own variables, then env, then
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY as files in a temp folder.
func runStep(t testing.TB, s *step, dir string, env map[string]string, pathPrefix string) bashResult {
	t.Helper()
	if s.Shell != "bash" {
		t.Fatalf("step %q: shell is %q; the tests run it as GitHub's `shell: bash` (-eo pipefail), so it must say so", s.Name, s.Shell)
	}
	if strings.Contains(s.Run, "${{") {
		t.Fatalf("step %q: its script holds a ${{ }} expression; pass values through env: (an expression in a script is a script injection)", s.Name)
	}
	tmp := t.TempDir()
	script := filepath.Join(tmp, "script.sh")
	if err := os.WriteFile(script, []byte(s.Run), 0o644); err != nil {
		t.Fatal(err)
	}
	output, summary := filepath.Join(tmp, "output"), filepath.Join(tmp, "summary")
	for _, f := range []string{output, summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var environ []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "HYPERFORK_") || strings.HasPrefix(k, "GITHUB_") || k == "BUILDKIT_HOST" {
			continue
		}
		if k == "PATH" && pathPrefix != "" {
			kv = "PATH=" + pathPrefix + string(os.PathListSeparator) + os.Getenv("PATH")
		}
		environ = append(environ, kv)
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary)

	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(c, "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir, cmd.Env = dir, environ
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	var ee *osexec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("bash: %v", err)
	}
	return bashResult{code: code, out: buf.String(), output: readFile(t, output), summary: readFile(t, summary)}
}

// outputValue is the value of key in a $GITHUB_OUTPUT file (key=value lines).
func outputValue(output, key string) (string, bool) {
	for _, line := range strings.Split(output, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// secretNames is every variable an *Env field of the CI example config
// names: the secrets the CI integrations bind.
func secretNames(t testing.TB) []string {
	t.Helper()
	cfg, err := config.Load(filepath.Join(root(t), "ci", "branches.ci.yaml"))
	if err != nil {
		t.Fatalf("ci/branches.ci.yaml: %v", err)
	}
	// Secrets returns the values of the named variables: with a getenv that
	// answers each name with itself, the names.
	names := cfg.Secrets(func(name string) string { return name })
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatal("ci/branches.ci.yaml names no *Env variable")
	}
	return names
}

// needTool returns the path of a program the test needs: a skip outside CI,
// a failure under CI=true.
func needTool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := osexec.LookPath(name)
	if err != nil {
		prereq.Missing(t, "%s is not installed: %s", name, install)
	}
	return p
}

// antGlob turns an Ant pattern (Jenkins' junit and archiveArtifacts) into a
// regular expression: ** any folders, * and ? within a name, a trailing /
// everything below.
func antGlob(pattern string) *regexp.Regexp {
	pattern = strings.TrimSpace(pattern)
	if strings.HasSuffix(pattern, "/") {
		pattern += "**"
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case strings.HasPrefix(pattern[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// matchesAny reports whether path matches one of the comma-separated Ant
// patterns.
func matchesAny(patterns, path string) bool {
	for _, p := range strings.Split(patterns, ",") {
		if antGlob(p).MatchString(path) {
			return true
		}
	}
	return false
}
