package build

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

func testSpec() Spec {
	return Spec{
		Targets:      []string{"./cmd/alpha", "./cmd/beta"},
		Platforms:    []string{"linux/amd64", "linux/arm64", "linux/arm/v7"},
		LDFlags:      []string{"-X main.version={{.Version}}", "-X main.commit={{.Commit}} -X main.date={{.BuildDate}}"},
		Stamp:        Stamp{Version: "v1.34.0-hf.1", Commit: "abc123", TreeState: "clean", BuildDate: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		BuilderImage: "registry.example/golang:1.26",
		Env:          map[string]string{"GOFLAGS": "-tags=providerless", "GOEXPERIMENT": "loopvar"},
		GoProxy:      "http://127.0.0.1:3000",
		Hyperkube:    true,
	}
}

// graphOps marshals spec and returns each platform's ops by digest.
type opGraph struct {
	ops  map[digest.Digest]*pb.Op
	root *pb.Op // the terminal op, whose single input is the result
}

func marshalSpec(t *testing.T, spec Spec) map[string]opGraph {
	t.Helper()
	states, err := Graph(spec)
	if err != nil {
		t.Fatalf("Graph: %v", err)
	}
	defs, err := Marshal(context.Background(), states)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	out := map[string]opGraph{}
	for id, def := range defs {
		out[id] = toOpGraph(t, def)
	}
	return out
}

func toOpGraph(t *testing.T, def *llb.Definition) opGraph {
	t.Helper()
	g := opGraph{ops: map[digest.Digest]*pb.Op{}}
	for i, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatalf("unmarshal op: %v", err)
		}
		g.ops[digest.FromBytes(dt)] = &op
		if i == len(def.Def)-1 {
			g.root = &op
		}
	}
	return g
}

// execs returns the exec ops of a graph keyed by their first argument after "build".
func (g opGraph) execs() []*pb.Op {
	var out []*pb.Op
	for _, op := range g.ops {
		if op.GetExec() != nil {
			out = append(out, op)
		}
	}
	slices.SortFunc(out, func(a, b *pb.Op) int {
		return strings.Compare(strings.Join(a.GetExec().Meta.Args, " "), strings.Join(b.GetExec().Meta.Args, " "))
	})
	return out
}

func (g opGraph) input(op *pb.Op, m *pb.Mount) *pb.Op {
	if m.Input < 0 {
		return nil
	}
	return g.ops[digest.Digest(op.Inputs[m.Input].Digest)]
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// planOf decodes the build helper's plan of an exec op, from the file
// mounted at /plan; nil for another op.
func (g opGraph) planOf(t *testing.T, op *pb.Op) *helperPlan {
	t.Helper()
	args := op.GetExec().Meta.Args
	if len(args) != 2 || args[0] != helperDir+"/"+helperName || !strings.HasPrefix(args[1], planDir+"/") {
		return nil
	}
	for _, m := range op.GetExec().Mounts {
		if m.Dest != planDir {
			continue
		}
		if !m.Readonly {
			t.Errorf("the plan is mounted writable")
		}
		f := g.input(op, m).GetFile()
		if f == nil || len(f.Actions) != 1 || f.Actions[0].GetMkfile() == nil || f.Actions[0].GetMkfile().Path != strings.TrimPrefix(args[1], planDir) {
			t.Fatalf("plan mount %v, want one file %s", f, args[1])
		}
		var p helperPlan
		if err := json.Unmarshal(f.Actions[0].GetMkfile().Data, &p); err != nil {
			t.Fatalf("plan %s: %v", args[1], err)
		}
		return &p
	}
	t.Fatalf("exec %q has no plan mounted", args)
	return nil
}

// stepExecs returns the exec ops that run the build helper, by manifest.
func (g opGraph) stepExecs(t *testing.T) map[string]*pb.Op {
	out := map[string]*pb.Op{}
	for _, op := range g.execs() {
		if p := g.planOf(t, op); p != nil {
			out[p.Manifest] = op
		}
	}
	return out
}

func TestGraphExecOps(t *testing.T) {
	graphs := marshalSpec(t, testSpec())
	if len(graphs) != 3 {
		t.Fatalf("got %d platforms, want 3", len(graphs))
	}
	wantGo := map[string]map[string]string{
		"linux/amd64":  {"GOOS": "linux", "GOARCH": "amd64"},
		"linux/arm64":  {"GOOS": "linux", "GOARCH": "arm64"},
		"linux/arm/v7": {"GOOS": "linux", "GOARCH": "arm", "GOARM": "7"},
	}
	for id, g := range graphs {
		execs := g.execs()
		if len(execs) != 2 {
			t.Fatalf("%s: %d exec ops, want 2 (the build helper, the build)", id, len(execs))
		}
		steps := g.stepExecs(t)
		main := steps[".hyperfork/build.json"]
		if main == nil {
			t.Fatalf("%s: no build step among %d execs", id, len(execs))
		}
		plan := g.planOf(t, main)
		ldflags := "-ldflags=-X main.version=v1.34.0-hf.1 -X main.commit=abc123 -X main.date=2026-01-02T03:04:05Z -s -w"
		wantSteps := []helperStep{
			{Args: []string{"go", "build", "-trimpath", "-buildvcs=false", ldflags, "-o", "/kept/", "./cmd/alpha", "./cmd/beta"}},
			{Dir: "/hyperkube", Args: []string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", "/kept/hyperkube", "."}},
		}
		if !slices.EqualFunc(plan.Steps, wantSteps, func(a, b helperStep) bool { return a.Dir == b.Dir && slices.Equal(a.Args, b.Args) }) {
			t.Errorf("%s: steps\n got %q\nwant %q", id, plan.Steps, wantSteps)
		}
		if plan.Cache != "/kept" || plan.Out != "/out" || !slices.Equal(plan.Binaries, []string{"alpha", "beta", "hyperkube"}) || plan.Have != nil {
			t.Errorf("%s: plan %+v", id, plan)
		}
		meta := main.GetExec().Meta
		if meta.Cwd != "/src" {
			t.Errorf("%s: cwd %q, want /src", id, meta.Cwd)
		}
		env := envMap(meta.Env)
		for k, v := range wantGo[id] {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", id, k, env[k], v)
			}
		}
		for k, v := range map[string]string{
			"CGO_ENABLED": "0", "SOURCE_DATE_EPOCH": "1767323045", "GOPROXY": "http://127.0.0.1:3000",
			"GOFLAGS": "-tags=providerless", "GOEXPERIMENT": "loopvar", "GOTOOLCHAIN": "local",
			"GOCACHE": goCacheDir, "GOMODCACHE": goModDir, "PATH": fallbackPath,
		} {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", id, k, env[k], v)
			}
		}
		// The compiler runs on the build platform whatever the target is.
		if p := main.Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" && p.Architecture != "arm64" {
			t.Errorf("%s: exec platform %v, want the build platform", id, p)
		}
		checkMounts(t, id, g, main)
		// The helper is built once, natively: no target environment.
		var hb *pb.Op
		for _, op := range execs {
			if op != main {
				hb = op
			}
		}
		henv := envMap(hb.GetExec().Meta.Env)
		if a := hb.GetExec().Meta.Args; !slices.Contains(a, "/out/buildhelper") || henv["GOARCH"] != "" {
			t.Errorf("%s: helper build %q with GOARCH=%q", id, a, henv["GOARCH"])
		}
		if _, ok := henv["SOURCE_DATE_EPOCH"]; ok || henv["CGO_ENABLED"] != "0" || henv["GOFLAGS"] != "" || henv["GOEXPERIMENT"] != "" {
			t.Errorf("%s: helper build env %v: want neither the commit time, so that a new commit does not rebuild it, nor build.env", id, henv)
		}
		if hb.Platform.Architecture != main.Platform.Architecture {
			t.Errorf("%s: helper built for %v, run on %v", id, hb.Platform, main.Platform)
		}
		// The build's /out is the platform's result.
		if got := g.ops[digest.Digest(g.root.Inputs[0].Digest)]; got != main {
			t.Errorf("%s: result is %v, want the build step's output", id, got.Op)
		}
	}
}

// checkMounts verifies the mounts of a build step: a read-only source, the
// helper and the dispatcher's source, the two shared Go caches with their
// stable IDs, the locked cache of the previous binaries, a tmpfs and the
// /out output.
func checkMounts(t *testing.T, id string, g opGraph, op *pb.Op) {
	t.Helper()
	byDest := map[string]*pb.Mount{}
	for _, m := range op.GetExec().Mounts {
		byDest[m.Dest] = m
	}
	for _, dest := range []string{"/src", "/hyperfork", "/hyperkube", "/plan"} {
		if m := byDest[dest]; m == nil || !m.Readonly || m.Output != -1 {
			t.Fatalf("%s: %s mount %v, want read-only without output", id, dest, m)
		}
	}
	s := g.input(op, byDest["/src"]).GetSource()
	if s == nil || s.Identifier != "local://source" || s.Attrs[pb.AttrExcludePatterns] == "" || !strings.Contains(s.Attrs[pb.AttrExcludePatterns], ".git") {
		t.Errorf("%s: source %v, want local://source excluding .git", id, s)
	}
	f := g.input(op, byDest["/hyperkube"]).GetFile()
	if f == nil || len(f.Actions) != 2 {
		t.Errorf("%s: hyperkube source %v, want two mkfile actions", id, f)
	} else if mk := f.Actions[1].GetMkfile(); mk == nil || !bytes.Equal(mk.Data, hyperkubeMain) {
		t.Errorf("%s: main.go is not the embedded dispatcher", id)
	}
	for dest, cacheID := range map[string]string{goCacheDir: GoBuildCacheID, goModDir: GoModCacheID} {
		m := byDest[dest]
		if m == nil || m.MountType != pb.MountType_CACHE || m.CacheOpt.ID != cacheID || m.CacheOpt.Sharing != pb.CacheSharingOpt_SHARED {
			t.Errorf("%s: %s mount %v, want shared cache %s", id, dest, m, cacheID)
		}
	}
	if m := byDest["/kept"]; m == nil || m.MountType != pb.MountType_CACHE || m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED ||
		m.CacheOpt.ID != outputCacheID(testSpec().SourceDir, "build", id) {
		t.Errorf("%s: /kept mount %v, want the locked cache of the previous binaries", id, m)
	}
	if m := byDest["/tmp"]; m == nil || m.MountType != pb.MountType_TMPFS {
		t.Errorf("%s: /tmp mount %v, want tmpfs", id, m)
	}
	if m := byDest["/out"]; m == nil || m.Readonly || m.Output < 0 || m.Input != -1 {
		t.Errorf("%s: /out mount %v, want a scratch output", id, m)
	}
	img := g.ops[digest.Digest(op.Inputs[byDest["/"].Input].Digest)].GetSource()
	if img == nil || img.Identifier != "docker-image://registry.example/golang:1.26" {
		t.Errorf("%s: root %v, want the builder image", id, img)
	}
}

// TestGraphTestBinaries checks the test step: only on the test platform,
// `go test -c` per package into <name>.test, the test commands after, in its
// own cache of previous binaries, merged with the platform's build.
func TestGraphTestBinaries(t *testing.T) {
	spec := testSpec()
	spec.TestTargets = []string{"./test/e2e", "./test/e2e_node"}
	spec.TestCommands = []string{GinkgoCommand}
	spec.Vendor = true
	graphs := marshalSpec(t, spec)
	for id, g := range graphs {
		steps := g.stepExecs(t)
		op := steps[".hyperfork/test.json"]
		if (op != nil) != (id == DefaultTestPlatform) {
			t.Fatalf("%s: test step %v; want one on %s only", id, op != nil, DefaultTestPlatform)
		}
		if op == nil {
			continue
		}
		plan := g.planOf(t, op)
		ld := "-ldflags=-X main.version=v1.34.0-hf.1 -X main.commit=abc123 -X main.date=2026-01-02T03:04:05Z -s -w"
		want := [][]string{
			{"go", "test", "-c", "-trimpath", "-buildvcs=false", "-mod=vendor", ld, "-o", "/kept/e2e.test", "./test/e2e"},
			{"go", "test", "-c", "-trimpath", "-buildvcs=false", "-mod=vendor", ld, "-o", "/kept/e2e_node.test", "./test/e2e_node"},
			{"go", "build", "-trimpath", "-buildvcs=false", "-mod=vendor", ld, "-o", "/kept/", GinkgoCommand},
		}
		if len(plan.Steps) != len(want) {
			t.Fatalf("steps %q, want %q", plan.Steps, want)
		}
		for i := range want {
			if !slices.Equal(plan.Steps[i].Args, want[i]) {
				t.Errorf("step %d: %q, want %q", i, plan.Steps[i].Args, want[i])
			}
		}
		if !slices.Equal(plan.Binaries, []string{"e2e.test", "e2e_node.test", "ginkgo"}) {
			t.Errorf("binaries %q", plan.Binaries)
		}
		if env := envMap(op.GetExec().Meta.Env); env["GOARCH"] != "amd64" {
			t.Errorf("test step GOARCH=%q, want amd64", env["GOARCH"])
		}
		for _, m := range op.GetExec().Mounts {
			if m.Dest == "/kept" && m.CacheOpt.ID != outputCacheID(spec.SourceDir, "test", id) {
				t.Errorf("test step keeps its binaries in %s, want its own cache", m.CacheOpt.ID)
			}
		}
		if merge := g.ops[digest.Digest(g.root.Inputs[0].Digest)]; merge.GetMerge() == nil || len(merge.Inputs) != 2 {
			t.Errorf("%s: result %v, want the merge of build and test steps", id, merge.Op)
		}
	}

	// A test platform that is not built gets the test binaries alone.
	spec.TestPlatform = "linux/s390x"
	graphs = marshalSpec(t, spec)
	g, ok := graphs["linux/s390x"]
	if len(graphs) != 4 || !ok {
		t.Fatalf("platforms %v, want the three build platforms and linux/s390x", maps.Keys(graphs))
	}
	if steps := g.stepExecs(t); len(steps) != 1 || steps[".hyperfork/test.json"] == nil {
		t.Errorf("linux/s390x steps %v, want the test step only", maps.Keys(steps))
	}
}

// TestGraphHave checks that what the output folder holds reaches the plan,
// per platform and step, and changes the graph.
func TestGraphHave(t *testing.T) {
	spec := testSpec()
	states, err := graph(spec, held{"linux/arm64": {"alpha": "sha256:aa", "gone": "sha256:bb"}})
	if err != nil {
		t.Fatal(err)
	}
	defs, err := Marshal(context.Background(), states)
	if err != nil {
		t.Fatal(err)
	}
	plainStates, _ := Graph(spec)
	plain, _ := Marshal(context.Background(), plainStates)
	for id, def := range defs {
		g := toOpGraph(t, def)
		found := g.planOf(t, g.stepExecs(t)[".hyperfork/build.json"])
		want := map[string]string(nil)
		if id == "linux/arm64" {
			want = map[string]string{"alpha": "sha256:aa"}
		}
		if !maps.Equal(found.Have, want) {
			t.Errorf("%s: have %v, want %v", id, found.Have, want)
		}
		// Only the platform whose folder holds binaries gets another graph.
		if same := slices.EqualFunc(def.Def, plain[id].Def, bytes.Equal); same != (id != "linux/arm64") {
			t.Errorf("%s: graph the same as without binaries held: %v", id, same)
		}
	}
}

func TestGraphIsDeterministic(t *testing.T) {
	ctx := context.Background()
	var first map[string]*llb.Definition
	for i := 0; i < 5; i++ {
		states, err := Graph(testSpec())
		if err != nil {
			t.Fatal(err)
		}
		defs, err := Marshal(ctx, states)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = defs
			continue
		}
		for id, def := range defs {
			if !slices.EqualFunc(def.Def, first[id].Def, bytes.Equal) {
				t.Fatalf("%s: marshalled graph differs between runs: cache keys would not be stable", id)
			}
		}
	}
}

func TestGraphOptions(t *testing.T) {
	spec := testSpec()
	spec.Hyperkube, spec.KeepSymbols, spec.Vendor = false, true, true
	spec.Platforms = []string{"linux/amd64"}
	spec.BuildPlatform = "linux/arm64"
	g := marshalSpec(t, spec)["linux/amd64"]
	op := g.stepExecs(t)[".hyperfork/build.json"]
	plan := g.planOf(t, op)
	if len(plan.Steps) != 1 {
		t.Fatalf("%d steps without hyperkube, want 1", len(plan.Steps))
	}
	args := plan.Steps[0].Args
	if !slices.Contains(args, "-mod=vendor") {
		t.Errorf("args %q lack -mod=vendor", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-ldflags=") && strings.Contains(a, "-s -w") {
			t.Errorf("KeepSymbols still strips: %q", a)
		}
	}
	if p := op.Platform; p.Architecture != "arm64" {
		t.Errorf("exec runs on %v, want the build platform linux/arm64", p)
	}
}

func TestSpecValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Spec)
		want []string
	}{
		"bad platform":    {func(s *Spec) { s.Platforms = []string{"linux/amd64", "linux/sparc99"} }, []string{`platform "linux/sparc99"`, "cannot target architecture"}},
		"os only":         {func(s *Spec) { s.Platforms = []string{"linux"} }, []string{`platform "linux"`, "os/arch"}},
		"bad variant":     {func(s *Spec) { s.Platforms = []string{"linux/arm/v9"} }, []string{`variant "v9"`}},
		"duplicate":       {func(s *Spec) { s.Platforms = []string{"linux/amd64", "linux/x86_64"} }, []string{"listed twice"}},
		"no targets":      {func(s *Spec) { s.Targets = nil }, []string{"no targets"}},
		"same binary":     {func(s *Spec) { s.Targets = []string{"./cmd/a", "./other/a"} }, []string{`both produce binary "a"`}},
		"hyperkube name":  {func(s *Spec) { s.Targets = []string{"./cmd/hyperkube"} }, []string{"dispatcher"}},
		"owned env":       {func(s *Spec) { s.Env = map[string]string{"GOARCH": "386"} }, []string{"GOARCH is set by hyperfork"}},
		"bad template":    {func(s *Spec) { s.LDFlags = []string{"-X v={{.Versoin}}"} }, []string{"build.ldflags[0]", "Versoin"}},
		"no image":        {func(s *Spec) { s.BuilderImage = "" }, []string{"builder image is empty"}},
		"test name twice": {func(s *Spec) { s.TestTargets = []string{"./test/e2e", "./other/e2e"} }, []string{`both produce binary "e2e.test"`}},
		"test as target": {func(s *Spec) { s.Targets, s.TestCommands = []string{"./cmd/ginkgo"}, []string{GinkgoCommand} },
			[]string{`"./cmd/ginkgo" and "github.com/onsi/ginkgo/v2/ginkgo" both produce binary "ginkgo"`}},
		"test platform":   {func(s *Spec) { s.TestTargets, s.TestPlatform = []string{"./test/e2e"}, "linux" }, []string{"test platform", "os/arch"}},
		"bad test path":   {func(s *Spec) { s.TestTargets = []string{"-race"} }, []string{`test target "-race"`}},
		"several at once": {func(s *Spec) { s.BuilderImage, s.Targets = "", nil }, []string{"builder image is empty", "no targets"}},
	} {
		t.Run(name, func(t *testing.T) {
			spec := testSpec()
			tc.edit(&spec)
			_, err := Graph(spec)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]struct{ id, dir, env string }{
		"linux/amd64":      {"linux/amd64", "linux_amd64", "GOOS=linux GOARCH=amd64"},
		"linux/x86_64":     {"linux/amd64", "linux_amd64", "GOOS=linux GOARCH=amd64"},
		"linux/aarch64":    {"linux/arm64", "linux_arm64", "GOOS=linux GOARCH=arm64"},
		"linux/arm64/v8":   {"linux/arm64", "linux_arm64", "GOOS=linux GOARCH=arm64"},
		"linux/arm/v6":     {"linux/arm/v6", "linux_arm_v6", "GOOS=linux GOARCH=arm GOARM=6"},
		"linux/amd64/v3":   {"linux/amd64/v3", "linux_amd64_v3", "GOOS=linux GOARCH=amd64 GOAMD64=v3"},
		"windows/amd64":    {"windows/amd64", "windows_amd64", "GOOS=windows GOARCH=amd64"},
		"linux/ppc64le":    {"linux/ppc64le", "linux_ppc64le", "GOOS=linux GOARCH=ppc64le"},
		"darwin/arm64":     {"darwin/arm64", "darwin_arm64", "GOOS=darwin GOARCH=arm64"},
		"linux/s390x":      {"linux/s390x", "linux_s390x", "GOOS=linux GOARCH=s390x"},
		"linux/riscv64":    {"linux/riscv64", "linux_riscv64", "GOOS=linux GOARCH=riscv64"},
		"linux/arm":        {"linux/arm/v7", "linux_arm_v7", "GOOS=linux GOARCH=arm GOARM=7"},
		"freebsd/amd64":    {"freebsd/amd64", "freebsd_amd64", "GOOS=freebsd GOARCH=amd64"},
		"linux/arm64/v8.2": {"linux/arm64/v8.2", "linux_arm64_v8.2", "GOOS=linux GOARCH=arm64 GOARM64=v8.2"},
	} {
		got, err := parsePlatform(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		var env []string
		for _, kv := range got.goEnv {
			env = append(env, kv[0]+"="+kv[1])
		}
		if got.id != want.id || got.dirName() != want.dir || strings.Join(env, " ") != want.env {
			t.Errorf("%s: got %s %s %q, want %+v", in, got.id, got.dirName(), env, want)
		}
	}
}

func TestBinaryName(t *testing.T) {
	for in, want := range map[string]string{
		"./cmd/kubelet": "kubelet", "k8s.io/kubernetes/cmd/kubectl/": "kubectl", "example.com/tool/v2": "tool", "./v2": "v2",
	} {
		if got := binaryName(in); got != want {
			t.Errorf("binaryName(%q) = %q, want %q", in, got, want)
		}
	}
}
