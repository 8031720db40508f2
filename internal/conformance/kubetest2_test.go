package conformance

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKubetest2CommandLinesInOrder(t *testing.T) {
	c := kubetest2Candidate(t)
	rec := &recorder{do: func(ctx context.Context, cl call, log io.Writer) error {
		io.WriteString(log, "output of "+filepath.Base(cl.name)+"\n")
		if isKubetest2(cl) {
			writeResults(t, cl)
		}
		return nil
	}}
	k := newKubetest2(t, rec)
	dir := filepath.Join(t.TempDir(), "run")
	r, err := k.Run(context.Background(), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	kc, rd, art := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "rundir"), filepath.Join(dir, "artifacts")
	cluster, image := "hyperfork-release-1.34-0123456789ab", "hyperfork/kind-node:0123456789ab"
	want := []string{
		"docker info --format {{.ServerVersion}}",
		"kind build node-image --type file " + c.ServerTarball + " --image " + image,
		"kubetest2 kind --up --down --cluster-name " + cluster + " --image-name " + image + " --kubeconfig " + kc +
			" --run-id 0123456789ab-parallel --rundir " + rd + " --artifacts " + filepath.Join(art, "parallel") +
			` --test=ginkgo -- --use-built-binaries --focus-regex=\[Conformance\] --skip-regex=\[Serial\] --parallel 4`,
		"kubetest2 kind --up --down --cluster-name " + cluster + " --image-name " + image + " --kubeconfig " + kc +
			" --run-id 0123456789ab-serial --rundir " + rd + " --artifacts " + filepath.Join(art, "serial") +
			` --test=ginkgo -- --use-built-binaries --focus-regex=\[Serial\].*\[Conformance\] --parallel 1`,
		"kind delete cluster --name " + cluster + " --kubeconfig " + kc,
	}
	if got := rec.lines(); !slices.Equal(got, want) {
		t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, cl := range rec.calls {
		if cl.dir != dir || !slices.Contains(cl.env, "PATH="+k.Path) || filepath.Dir(cl.name) != k.Path {
			t.Errorf("%s: dir %s, env %q, want the run folder and the fake PATH", cl.line(), cl.dir, cl.env)
		}
		if slices.Contains(cl.args, "--build") {
			t.Errorf("%s: --build runs Kubernetes' make", cl.line())
		}
	}

	wantJUnit := []string{
		filepath.Join(art, "parallel", "junit_01.xml"), filepath.Join(art, "parallel", "junit_runner.xml"),
		filepath.Join(art, "serial", "junit_01.xml"), filepath.Join(art, "serial", "junit_runner.xml"),
	}
	if !slices.Equal(r.JUnit, wantJUnit) || r.Err != nil || r.TimedOut || r.Interrupted {
		t.Fatalf("run = %+v\nwant JUnit %q", r, wantJUnit)
	}
	// The log says what ran, pasteable into a shell, and what it wrote.
	log := readFile(t, r.Log)
	for _, s := range []string{
		"$ " + filepath.Join(k.Path, "kubetest2") + " kind --up --down",
		`'--focus-regex=\[Serial\].*\[Conformance\]' --parallel 1` + "\noutput of kubetest2\n",
		"$ " + filepath.Join(k.Path, "kind") + " delete cluster --name " + cluster,
	} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
}

func TestKubetest2StagesTheCandidatesBinaries(t *testing.T) {
	c := kubetest2Candidate(t)
	var staged map[string]string
	rec := &recorder{do: func(ctx context.Context, cl call, log io.Writer) error {
		if !isKubetest2(cl) || staged != nil {
			return nil
		}
		// What kubetest2's ginkgo tester finds in its run dir, when it runs.
		staged = map[string]string{}
		rundir := flag(cl.args, "--rundir")
		entries, err := os.ReadDir(rundir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			fi, _ := e.Info()
			if fi.Mode().Perm()&0o111 == 0 {
				t.Errorf("%s is not executable", e.Name())
			}
			staged[e.Name()] = readFile(t, filepath.Join(rundir, e.Name()))
		}
		writeResults(t, cl)
		return nil
	}}
	if _, err := newKubetest2(t, rec).Run(context.Background(), c, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"e2e.test": "#!/bin/sh\necho e2e.test\n", "ginkgo": "#!/bin/sh\necho ginkgo\n", "kubectl": "#!/bin/sh\necho kubectl\n"}
	if len(staged) != len(want) {
		t.Fatalf("run dir holds %v, want exactly %v", staged, want)
	}
	for name, body := range want {
		if staged[name] != body {
			t.Errorf("run dir %s = %q, want the candidate's %q", name, staged[name], body)
		}
	}
}

func TestKubetest2NodeImageOptions(t *testing.T) {
	c := kubetest2Candidate(t)
	rec := &recorder{do: func(ctx context.Context, cl call, log io.Writer) error {
		if isKubetest2(cl) {
			writeResults(t, cl)
		}
		return nil
	}}
	k := newKubetest2(t, rec)
	k.Options.BaseImage = "registry.example/kind-base:v20260601"
	k.Options.NodeImage = "registry.example:5000/team/node"
	k.Options.SerialFocusRegex = "" // no serial pass
	if _, err := k.Run(context.Background(), c, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	lines := rec.lines()
	if want := "kind build node-image --type file " + c.ServerTarball + " --image registry.example:5000/team/node:0123456789ab --base-image registry.example/kind-base:v20260601"; lines[1] != want {
		t.Fatalf("build = %q, want %q", lines[1], want)
	}
	if len(lines) != 4 || !strings.Contains(lines[2], "--image-name registry.example:5000/team/node:0123456789ab ") {
		t.Fatalf("commands %q: want one pass on the built image", lines)
	}
}

func TestKubetest2RefusesABadServerTarball(t *testing.T) {
	for name, prepare := range map[string]func(t *testing.T, c *Candidate){
		"none":    func(t *testing.T, c *Candidate) { c.ServerTarball = "" },
		"missing": func(t *testing.T, c *Candidate) { c.ServerTarball = filepath.Join(t.TempDir(), "gone.tar.gz") },
		"empty": func(t *testing.T, c *Candidate) {
			c.ServerTarball = filepath.Join(t.TempDir(), "empty.tar.gz")
			os.WriteFile(c.ServerTarball, nil, 0o644)
		},
		"not gzip": func(t *testing.T, c *Candidate) {
			c.ServerTarball = filepath.Join(t.TempDir(), "page.tar.gz")
			os.WriteFile(c.ServerTarball, []byte("<html>404</html>"), 0o644)
		},
		"a folder": func(t *testing.T, c *Candidate) { c.ServerTarball = t.TempDir() },
	} {
		t.Run(name, func(t *testing.T) {
			c := kubetest2Candidate(t)
			prepare(t, &c)
			rec := &recorder{}
			r, err := newKubetest2(t, rec).Run(context.Background(), c, t.TempDir())
			if !errors.Is(err, ErrNoServerTarball) {
				t.Fatalf("err = %v, want ErrNoServerTarball", err)
			}
			// kind would have built Kubernetes from source instead.
			if len(rec.calls) != 0 {
				t.Fatalf("commands ran: %q", rec.lines())
			}
			if !strings.Contains(readFile(t, r.Log), "no server tarball") {
				t.Fatal("the log does not say why nothing ran")
			}
		})
	}
}

func TestKubetest2MissingBinariesAreNamed(t *testing.T) {
	c := kubetest2Candidate(t)
	os.Remove(filepath.Join(c.BinDir, "ginkgo"))
	os.WriteFile(filepath.Join(c.BinDir, "e2e.test"), nil, 0o755)
	rec := &recorder{}
	_, err := newKubetest2(t, rec).Run(context.Background(), c, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "lacks e2e.test, ginkgo") || len(rec.calls) != 0 {
		t.Fatalf("err = %v, commands %q", err, rec.lines())
	}
}

// hang is a kubetest2 that runs until its context ends.
func hang(ctx context.Context, cl call, log io.Writer) error {
	if !isKubetest2(cl) {
		return nil
	}
	io.WriteString(log, "Up(): creating kind cluster\n")
	<-ctx.Done()
	return errors.New("signal: terminated")
}

func TestKubetest2TimeoutStillTearsDown(t *testing.T) {
	rec := &recorder{do: hang}
	k := newKubetest2(t, rec)
	k.Timeout = 200 * time.Millisecond
	dir := t.TempDir()
	r, err := k.Run(context.Background(), kubetest2Candidate(t), dir)
	if !errors.Is(err, ErrNoJUnit) {
		t.Fatalf("err = %v, want ErrNoJUnit", err)
	}
	if !r.TimedOut || r.Interrupted || !errors.Is(r.Err, ErrTimedOut) {
		t.Fatalf("run = %+v, want timed out", r)
	}
	lines := rec.lines()
	cluster := "hyperfork-release-1.34-0123456789ab"
	want := []string{
		"kind export logs " + filepath.Join(dir, "artifacts", "timeout-logs") + " --name " + cluster,
		"kind delete cluster --name " + cluster + " --kubeconfig " + filepath.Join(dir, "kubeconfig"),
	}
	if len(lines) != 5 || !strings.Contains(lines[2], "-parallel") || !slices.Equal(lines[3:], want) {
		t.Fatalf("commands:\n%s\nwant the parallel pass only, then %q", strings.Join(lines, "\n"), want)
	}
	for _, cl := range rec.calls[3:] {
		if cl.ctxDone {
			t.Errorf("%s ran with an ended context: it could not have run", cl.line())
		}
	}
	if !strings.Contains(readFile(t, r.Log), "hyperfork: test.timeout passed (200ms)") {
		t.Fatalf("log:\n%s", readFile(t, r.Log))
	}
}

func TestKubetest2CancelStillTearsDown(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	rec := &recorder{do: func(c context.Context, cl call, log io.Writer) error {
		if isKubetest2(cl) {
			writeResults(t, cl) // what finished before Ctrl-C
			cancel(errors.New("interrupted by SIGINT"))
		}
		return hang(c, cl, log)
	}}
	k := newKubetest2(t, rec)
	k.Timeout = time.Hour
	r, err := k.Run(ctx, kubetest2Candidate(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Interrupted || r.TimedOut || r.Err == nil || !strings.Contains(r.Err.Error(), "interrupted by SIGINT") {
		t.Fatalf("run = %+v, want interrupted", r)
	}
	lines := rec.lines()
	last := rec.calls[len(rec.calls)-1]
	if len(lines) != 4 || !strings.HasPrefix(last.line(), "kind delete cluster --name hyperfork-release-1.34-0123456789ab") || last.ctxDone {
		t.Fatalf("commands:\n%s\nwant the parallel pass, then a delete with a live context", strings.Join(lines, "\n"))
	}
	if len(r.JUnit) != 2 {
		t.Fatalf("JUnit = %q: what finished before the interrupt is kept", r.JUnit)
	}
}

func TestKubetest2RetryRunsExactlyTheFailedSpecs(t *testing.T) {
	rec := &recorder{do: func(ctx context.Context, cl call, log io.Writer) error {
		if isKubetest2(cl) {
			writeResults(t, cl)
		}
		return nil
	}}
	dir := t.TempDir()
	specs := []string{"[It] [sig-apps] Deployment should work (v1.2) [Conformance]", "[It] [sig-node] Pods [Serial] [Conformance]"}
	r, err := newKubetest2(t, rec).Retry(context.Background(), kubetest2Candidate(t), dir, specs)
	if err != nil {
		t.Fatal(err)
	}
	focus, _ := FocusRegex(specs)
	passes := slices.DeleteFunc(slices.Clone(rec.calls), func(c call) bool { return !isKubetest2(c) })
	if len(passes) != 1 {
		t.Fatalf("commands %q: want one pass", rec.lines())
	}
	args := passes[0].args
	tail := args[slices.Index(args, "--"):]
	if want := []string{"--", "--use-built-binaries", "--focus-regex=" + focus, "--parallel", "1"}; !slices.Equal(tail, want) {
		t.Fatalf("tester args %q, want %q", tail, want)
	}
	if want := `--focus-regex=\s(?:\[sig-apps\] Deployment should work \(v1\.2\) \[Conformance\]|\[sig-node\] Pods \[Serial\] \[Conformance\])$`; tail[2] != want {
		t.Fatalf("focus %q, want %q", tail[2], want)
	}
	if flag(args, "--run-id") != "0123456789ab-retry" || flag(args, "--artifacts") != filepath.Join(dir, "artifacts", "retry") || len(r.JUnit) != 2 {
		t.Fatalf("args %q, JUnit %q", args, r.JUnit)
	}
	if _, err := newKubetest2(t, rec).Retry(context.Background(), kubetest2Candidate(t), t.TempDir(), nil); err == nil {
		t.Fatal("a retry of nothing ran")
	}
}

func TestKubetest2FailedPassesAreRecordedAndTheSerialPassStillRuns(t *testing.T) {
	rec := &recorder{do: func(ctx context.Context, cl call, log io.Writer) error {
		if isKubetest2(cl) {
			writeResults(t, cl)
			return errors.New("exit status 1") // a test failed
		}
		return nil
	}}
	r, err := newKubetest2(t, rec).Run(context.Background(), kubetest2Candidate(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 5 || r.Err == nil || !strings.Contains(r.Err.Error(), "parallel pass: exit status 1") || !strings.Contains(r.Err.Error(), "serial pass") {
		t.Fatalf("commands %q, run err %v", rec.lines(), r.Err)
	}
}

func TestKubetest2NoDocker(t *testing.T) {
	rec := &recorder{do: func(ctx context.Context, cl call, log io.Writer) error {
		if filepath.Base(cl.name) == "docker" {
			return errors.New("Cannot connect to the Docker daemon")
		}
		return nil
	}}
	_, err := newKubetest2(t, rec).Run(context.Background(), kubetest2Candidate(t), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "start Docker") || len(rec.calls) != 1 {
		t.Fatalf("err = %v, commands %q", err, rec.lines())
	}
}
