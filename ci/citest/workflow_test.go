package citest

import (
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/conformance"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/store"
	"github.com/hyperfork/hyperfork/internal/testutil/prereq"
)

// TestActionlint lints every workflow in ci/github with the pinned
// actionlint, and with shellcheck on their run scripts (required under
// CI=true). Any finding fails the test.
func TestActionlint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root(t), "ci", "github", "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("ci/github holds %d workflows, want hyperfork-release.yml and hyperfork-status.yml", len(files))
	}
	opts := &actionlint.LinterOptions{WorkingDir: root(t)}
	// Without shellcheck actionlint still checks the rest; under CI=true it
	// is required.
	if sc, err := osexec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = sc
	} else if prereq.InCI() {
		prereq.Missing(t, "shellcheck is not installed: apt-get install -y shellcheck (scripts/install-prerequisites.sh does)")
	} else {
		t.Log("shellcheck is not installed: the run scripts are not checked (apt-get install -y shellcheck)")
	}
	var out strings.Builder
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Errorf("actionlint found %d problems:\n%s", len(errs), out.String())
	}
}

// configuredBranches is the branch names of the shipped branches.yaml.
func configuredBranches(t *testing.T) []string {
	t.Helper()
	cfg, err := config.Load(filepath.Join(root(t), "branches.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range cfg.Branches {
		names = append(names, b.Name)
	}
	return names
}

// planCtx is the contexts of the plan job for a run with these inputs.
func planCtx(inputs map[string]any, role string) ctx {
	return ctx{"inputs": inputs, "vars": map[string]any{"hyperfork_aws_role": role}, "secrets": map[string]any{}, "github": map[string]any{"run_id": "42"}}
}

// TestPlanJobMatrix runs the plan job's script with bash against the
// shipped branches.yaml and the real `go tool mage matrix`, the way the
// workflow gives it its environment, and feeds its output to the release
// job's matrix expression.
func TestPlanJobMatrix(t *testing.T) {
	w := loadWorkflow(t, "hyperfork-release.yml")
	plan := w.job(t, "plan")
	s := plan.stepByID(t, "matrix")
	if !strings.Contains(s.Run, "go tool mage matrix") {
		t.Fatalf("the plan step does not run `go tool mage matrix`:\n%s", s.Run)
	}
	if got := plan.Outputs["branches"]; got != "${{ steps.matrix.outputs.branches }}" {
		t.Errorf("plan's output branches is %q, want the matrix step's output", got)
	}
	release := w.job(t, "release")
	if release.Strategy == nil {
		t.Fatal("the release job has no strategy")
	}
	matrixExpr, _ := release.Strategy.Matrix["branch"].(string)
	all := configuredBranches(t)

	run := func(t *testing.T, inputs map[string]any, role string) bashResult {
		c := planCtx(inputs, role)
		return runStep(t, s, root(t), envOf(t, c, w.Env, plan.Env, s.Env), "")
	}
	for _, tc := range []struct {
		name   string
		inputs map[string]any // nil: the schedule, which has no inputs
		want   []string
	}{
		{"schedule", map[string]any{}, all},
		{"dispatch without branches", map[string]any{"branches": "", "force": false}, all},
		{"dispatch master", map[string]any{"branches": "master", "force": false}, []string{"master"}},
		// In the order of branches.yaml, whatever the order of the filter.
		{"dispatch two", map[string]any{"branches": all[len(all)-1] + ", master", "force": true}, []string{"master", all[len(all)-1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.inputs, "arn:aws:iam::123456789012:role/hyperfork")
			if r.code != 0 {
				t.Fatalf("the plan step exited %d:\n%s", r.code, r.out)
			}
			raw, ok := outputValue(r.output, "branches")
			if !ok {
				t.Fatalf("the plan step wrote no branches= to $GITHUB_OUTPUT:\n%s\noutput:\n%s", r.out, r.output)
			}
			var got []string
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatalf("branches=%s is not a JSON list of names: %v", raw, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("branches = %q, want %q", got, tc.want)
			}
			// The release job's matrix, evaluated on that output.
			v, err := evalValue(ctx{"needs": map[string]any{"plan": map[string]any{"outputs": map[string]any{"branches": raw}}}}, matrixExpr)
			if err != nil {
				t.Fatalf("release matrix %q: %v", matrixExpr, err)
			}
			var vs []string
			for _, x := range v.([]any) {
				vs = append(vs, x.(string))
			}
			if !slices.Equal(vs, tc.want) {
				t.Errorf("the release job's matrix.branch takes %q, want %q", vs, tc.want)
			}
		})
	}
	t.Run("unknown branch", func(t *testing.T) {
		r := run(t, map[string]any{"branches": "master,no-such-branch", "force": false}, "arn:aws:iam::123456789012:role/hyperfork")
		if r.code == 0 {
			t.Fatalf("the plan step passed for a branch branches.yaml does not configure:\n%s", r.out)
		}
		if _, ok := outputValue(r.output, "branches"); ok {
			t.Errorf("the plan step wrote branches= for a bad filter: %s", r.output)
		}
		for _, want := range []string{"::error", "no-such-branch"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("the failure does not say %q:\n%s", want, r.out)
			}
		}
	})
	t.Run("no AWS role", func(t *testing.T) {
		r := run(t, map[string]any{}, "")
		if r.code == 0 || !strings.Contains(r.out, "::error") || !strings.Contains(r.out, "HYPERFORK_AWS_ROLE") {
			t.Errorf("without vars.HYPERFORK_AWS_ROLE the plan step exited %d:\n%s", r.code, r.out)
		}
	})
}

// releaseCtx is the contexts of the release job for one branch.
func releaseCtx(branch string, inputs map[string]any, buildx string) ctx {
	steps := map[string]any{}
	if buildx != "" {
		steps["buildx"] = map[string]any{"outputs": map[string]any{"name": buildx}}
		steps["buildkit"] = map[string]any{"outputs": map[string]any{"version": "v0.34.2"}}
	}
	return ctx{
		"inputs": inputs, "matrix": map[string]any{"branch": branch}, "steps": steps,
		"vars": map[string]any{}, "secrets": map[string]any{}, "github": map[string]any{"run_id": "42"},
	}
}

// TestReleaseJob checks the release job's shape where the tests cannot run
// it: one job per branch, concurrency per branch, OIDC, the pinned tools,
// BuildKit, artifacts.
func TestReleaseJob(t *testing.T) {
	w := loadWorkflow(t, "hyperfork-release.yml")
	j := w.job(t, "release")
	if len(w.On.Schedule) == 0 || w.On.WorkflowDispatch == nil {
		t.Fatal("the workflow runs neither on a schedule nor on workflow_dispatch")
	}
	if in := w.On.WorkflowDispatch.Inputs; in["branches"].Type != "string" || in["force"].Type != "boolean" {
		t.Errorf("workflow_dispatch inputs = %+v, want branches (string) and force (boolean)", in)
	}
	if w.Concurrency != nil {
		t.Errorf("the workflow has a concurrency of its own (%v): one group for all would serialize the branches", w.Concurrency)
	}
	if needs, _ := j.Needs.(string); needs != "plan" {
		t.Errorf("release needs %v, want plan", j.Needs)
	}
	if j.Strategy.FailFast == nil || *j.Strategy.FailFast {
		t.Error("release: strategy.fail-fast must be false: one branch's failure never stops another")
	}
	if j.Permissions["id-token"] != "write" || j.Permissions["contents"] != "read" || len(j.Permissions) != 2 {
		t.Errorf("release permissions = %v, want id-token: write and contents: read only", j.Permissions)
	}

	for _, branch := range []string{"master", "company/release-1.33"} {
		c := releaseCtx(branch, map[string]any{}, "")
		if j.Concurrency == nil || j.Concurrency.CancelInProgress == nil || *j.Concurrency.CancelInProgress {
			t.Fatal("release: concurrency with cancel-in-progress: false is missing")
		}
		group, err := eval(c, j.Concurrency.Group)
		if err != nil || group != "hyperfork-"+branch {
			t.Errorf("concurrency group for %s = %q (%v), want hyperfork-%s", branch, group, err, branch)
		}
		if env := envOf(t, c, w.Env, j.Env); env["HYPERFORK_BRANCHES"] != branch {
			t.Errorf("HYPERFORK_BRANCHES = %q for matrix.branch %s", env["HYPERFORK_BRANCHES"], branch)
		}
	}
	for _, tc := range []struct {
		inputs map[string]any
		want   string
	}{{map[string]any{}, ""}, {map[string]any{"force": false}, ""}, {map[string]any{"force": true}, "1"}} {
		if got := envOf(t, releaseCtx("master", tc.inputs, ""), j.Env)["HYPERFORK_FORCE"]; got != tc.want {
			t.Errorf("inputs %v: HYPERFORK_FORCE = %q, want %q", tc.inputs, got, tc.want)
		}
	}

	aws := j.stepsUsing("aws-actions/configure-aws-credentials@v4")
	if len(aws) != 1 || aws[0].With["role-to-assume"] != "${{ vars.HYPERFORK_AWS_ROLE }}" || aws[0].With["aws-region"] == "" || aws[0].If != "" {
		t.Errorf("release: want one unconditional configure-aws-credentials@v4 step with role-to-assume ${{ vars.HYPERFORK_AWS_ROLE }} and aws-region, got %+v", aws)
	}

	// The tools, at the versions hyperfork's install hints name.
	var install string
	for _, s := range j.Steps {
		install += s.Run + "\n"
	}
	wantInstall := []string{"go install sigs.k8s.io/kind@" + conformance.KindVersion}
	for _, pkg := range []string{"sigs.k8s.io/kubetest2", "sigs.k8s.io/kubetest2/kubetest2-kind", "sigs.k8s.io/kubetest2/kubetest2-tester-ginkgo"} {
		wantInstall = append(wantInstall, " "+pkg+"@"+conformance.Kubetest2Commit)
	}
	for _, want := range wantInstall {
		if !strings.Contains(install, want) {
			t.Errorf("the release job does not install %q", want)
		}
	}

	// BuildKit: the embedded daemon unless the buildx builder was made.
	rel := j.stepByID(t, "release")
	if bx := j.stepByID(t, "buildx"); bx.Uses != "docker/setup-buildx-action@v3" || bx.With["driver"] != "docker-container" {
		t.Errorf("the buildx step is %+v, want docker/setup-buildx-action@v3 with the docker-container driver", bx)
	}
	for _, tc := range []struct{ builder, want string }{
		{"", ""},
		{"builder-5f1c", "docker-container://buildx_buildkit_builder-5f1c0"},
	} {
		if got := envOf(t, releaseCtx("master", nil, tc.builder), j.Env, rel.Env)["BUILDKIT_HOST"]; got != tc.want {
			t.Errorf("builder %q: BUILDKIT_HOST = %q, want %q", tc.builder, got, tc.want)
		}
	}

	// Artifacts: what the release writes where this job's env says.
	env := envOf(t, releaseCtx("master", nil, ""), w.Env, j.Env)
	up := j.stepsUsing("actions/upload-artifact@v4")
	if len(up) != 1 || up[0].If != "always()" {
		t.Fatalf("want one upload-artifact@v4 step that runs always(), got %+v", up)
	}
	paths := strings.Fields(up[0].With["path"])
	for _, want := range []string{env["HYPERFORK_REPORT"], env["HYPERFORK_HTML"], env["HYPERFORK_JUNIT"] + "/", "hyperfork-release.log"} {
		if want == "" || want == "/" || !slices.Contains(paths, want) {
			t.Errorf("the artifact holds %q, not %q (env %v)", paths, want, env)
		}
	}
	if env["HYPERFORK_JUNIT"] != "hyperfork-junit" {
		t.Errorf("HYPERFORK_JUNIT = %q, want hyperfork-junit", env["HYPERFORK_JUNIT"])
	}
	// The report target must not overwrite the release's JSON report.
	for _, s := range j.Steps {
		if strings.Contains(s.Run, "go tool mage report") {
			if v, ok := s.Env["HYPERFORK_REPORT"]; !ok || v != "" {
				t.Errorf("step %q runs report with HYPERFORK_REPORT=%q from the job: it would overwrite the release's report", s.Name, env["HYPERFORK_REPORT"])
			}
		}
	}

	// The artifact name of a branch with a slash, which artifact names forbid.
	t.Run("artifact name", func(t *testing.T) {
		s := j.stepByID(t, "artifact")
		r := runStep(t, s, t.TempDir(), envOf(t, releaseCtx("company/release-1.33", nil, ""), w.Env, j.Env, s.Env), "")
		if name, _ := outputValue(r.output, "name"); r.code != 0 || name != "hyperfork-company_release-1.33" {
			t.Errorf("artifact name = %q (exit %d):\n%s", name, r.code, r.out)
		}
	})
}

// TestWorkflowSecrets checks that both workflows bind exactly the secrets
// the *Env fields of ci/branches.ci.yaml name, each from the secret of the
// same name: every target builds every notifier, so status needs them too.
func TestWorkflowSecrets(t *testing.T) {
	names := secretNames(t)
	for _, tc := range []struct{ file, job string }{{"hyperfork-release.yml", "release"}, {"hyperfork-status.yml", "status"}} {
		w := loadWorkflow(t, tc.file)
		j := w.job(t, tc.job)
		var bound []string
		for k, v := range j.Env {
			if strings.Contains(v, "secrets.") {
				if v != "${{ secrets."+k+" }}" {
					t.Errorf("%s: %s is %q, want ${{ secrets.%s }}", tc.file, k, v, k)
				}
				bound = append(bound, k)
			}
		}
		slices.Sort(bound)
		if !slices.Equal(bound, names) {
			t.Errorf("%s binds the secrets %q; the *Env fields of ci/branches.ci.yaml name %q", tc.file, bound, names)
		}
	}
}

// stubRelease makes a bin folder with sudo and go stand-ins. sudo does what
// Ubuntu's does to the environment: PATH becomes secure_path, and without -E
// the rest is dropped. `go tool mage release` prints what it was given,
// writes the report of $STUB_REPORT and exits $STUB_CODE.
func stubRelease(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"sudo": `#!/bin/sh
secure=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ "$1" = -E ]; then shift; exec /usr/bin/env PATH="$secure" "$@"; fi
exec /usr/bin/env -i PATH="$secure" "$@"
`,
		"go": `#!/bin/sh
[ "$*" = "tool mage release" ] || { echo "stub go: unexpected arguments: $*" >&2; exit 99; }
echo "stub release: branches=$HYPERFORK_BRANCHES force=$HYPERFORK_FORCE report=$HYPERFORK_REPORT junit=$HYPERFORK_JUNIT"
[ -n "$STUB_REPORT" ] && printf '%s' "$STUB_REPORT" > "$HYPERFORK_REPORT"
exit "$STUB_CODE"
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReleaseExitCodes runs the release step's script with a stand-in for
// `go tool mage release` that exits with each code of the contract and
// writes a report made from internal/report's types, and checks the
// annotation, the job's result and the report fields it quotes.
func TestReleaseExitCodes(t *testing.T) {
	needTool(t, "jq", "apt-get install -y jq (GitHub's runners have it)")
	w := loadWorkflow(t, "hyperfork-release.yml")
	j := w.job(t, "release")
	s := j.stepByID(t, "release")
	bin := stubRelease(t)

	conflict := &report.Report{Target: "release", ExitCode: report.ExitConflict, Branches: []*report.Branch{{
		Name: "master", ExitCode: report.ExitConflict,
		Sync: &report.Sync{Status: report.SyncConflict, Conflicts: []report.Conflict{{Path: "pkg/kubelet/kubelet.go"}, {Path: "go.mod"}}, Resolution: "git clone …"},
	}}}
	done := &report.Report{Target: "release", ExitCode: report.ExitOK, Branches: []*report.Branch{{Name: "master"}}}
	failed := &report.Report{Target: "release", ExitCode: report.ExitTests, Branches: []*report.Branch{{
		Name: "master", ExitCode: report.ExitTests,
		Test: &report.Test{Status: "failed", Failed: 2, New: []string{"[sig-network] Services should serve a basic endpoint [Conformance]", "[sig-apps] Deployment 100% rollout [Conformance]"}},
	}}}
	for _, tc := range []struct {
		code     int
		rep      *report.Report
		wantExit int
		want     []string
	}{
		{report.ExitOK, done, 0, []string{"`master`: done"}},
		// go tool's exit 0 after its tool was killed: no report, a failure.
		{report.ExitOK, nil, 1, []string{"::error title=hyperfork release failed on master::", "exited 0 but wrote no report", "killed, no report"}},
		{report.ExitConflict, conflict, 0, []string{"::warning title=hyperfork merge conflict on master::", "conflicts in pkg/kubelet/kubelet.go, go.mod", ".branches[].sync.resolution"}},
		{report.ExitTests, failed, 4, []string{"::error title=hyperfork tests failed on master::", "new failures: [sig-network] Services should serve a basic endpoint [Conformance], [sig-apps] Deployment 100%25 rollout [Conformance]"}},
		{report.ExitTests, nil, 4, []string{"::error title=hyperfork tests failed on master::", "none new"}},
		{report.ExitLocked, nil, 0, []string{"::warning title=hyperfork master is locked::", "lock"}},
		{report.ExitFailed, nil, 1, []string{"::error title=hyperfork release failed on master::", "exited 1"}},
		{report.ExitConfig, nil, 2, []string{"::error title=hyperfork release failed on master::", "exited 2"}},
	} {
		t.Run(fmt.Sprint(tc.code, tc.rep != nil), func(t *testing.T) {
			dir := t.TempDir()
			env := envOf(t, releaseCtx("master", map[string]any{"force": true}, ""), w.Env, j.Env, s.Env)
			env["STUB_CODE"] = fmt.Sprint(tc.code)
			if tc.rep != nil {
				b, err := json.Marshal(tc.rep)
				if err != nil {
					t.Fatal(err)
				}
				env["STUB_REPORT"] = string(b)
			}
			r := runStep(t, s, dir, env, bin)
			if r.code != tc.wantExit {
				t.Errorf("exit %d gave the step exit %d, want %d:\n%s", tc.code, r.code, tc.wantExit, r.out)
			}
			all := r.out + r.summary
			for _, want := range tc.want {
				if !strings.Contains(all, want) {
					t.Errorf("exit %d: the step does not say %q:\n%s", tc.code, want, all)
				}
			}
			if tc.wantExit == 0 && strings.Contains(r.out, "::error") {
				t.Errorf("exit %d annotated an error:\n%s", tc.code, r.out)
			}
			wantCode := tc.code
			if tc.code == report.ExitOK && tc.rep == nil {
				wantCode = report.ExitFailed
			}
			if code, _ := outputValue(r.output, "code"); code != fmt.Sprint(wantCode) {
				t.Errorf("output code=%q, want %d", code, wantCode)
			}
			log, err := os.ReadFile(filepath.Join(dir, "hyperfork-release.log"))
			if err != nil || !strings.Contains(string(log), "stub release: branches=master force=1 report=hyperfork-report.json junit=hyperfork-junit") {
				t.Errorf("hyperfork-release.log does not hold the release's output with its environment (%v):\n%s", err, log)
			}
		})
	}
}

// TestJUnitFolder checks that the uploaded JUnit folder is where the
// pipeline copies each branch's JUnit: HYPERFORK_JUNIT/<encoded branch>/.
func TestJUnitFolder(t *testing.T) {
	w := loadWorkflow(t, "hyperfork-release.yml")
	j := w.job(t, "release")
	env := envOf(t, releaseCtx("master", nil, ""), w.Env, j.Env)
	upload := j.stepsUsing("actions/upload-artifact@v4")[0].With["path"]
	for _, branch := range append(configuredBranches(t), "company/release-1.33") {
		file := filepath.ToSlash(filepath.Join(env["HYPERFORK_JUNIT"], store.EncodeName(branch), "run-junit_01.xml"))
		ok := false
		for _, p := range strings.Fields(upload) {
			ok = ok || antGlob(p).MatchString(file)
		}
		if !ok {
			t.Errorf("the artifact paths %q do not hold %s", upload, file)
		}
	}
}
