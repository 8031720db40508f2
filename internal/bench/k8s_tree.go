package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The Kubernetes tree of the k8s benchmark is made from the Go module proxy,
// which serves Kubernetes' release tree in pieces: k8s.io/kubernetes@v1.x.y
// (its zip leaves out staging/ and vendor/, which are other modules or no
// module at all) and each staging module k8s.io/<name>@v0.x.y, which belongs
// at staging/src/k8s.io/<name>. `go work vendor` then makes vendor/ as
// upstream commits it.

// stagingPrefix is where go.work lists the staging modules.
const stagingPrefix = "./staging/src/k8s.io/"

// kubeVersionRE is a Kubernetes release version: v1.<minor>.<patch>, with an
// optional pre-release such as -rc.1.
var kubeVersionRE = regexp.MustCompile(`^v1\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$`)

// stagingVersion is the version the staging modules of a Kubernetes release
// are published under: v1.37.2 becomes v0.37.2.
func stagingVersion(kube string) (string, error) {
	if !kubeVersionRE.MatchString(kube) {
		return "", fmt.Errorf("Kubernetes version %q: write v1.<minor>.<patch>, such as v1.37.2", kube)
	}
	return "v0." + strings.TrimPrefix(kube, "v1."), nil
}

// k8sTree is the tree made once into the cache folder.
type k8sTree struct {
	// Dir is the git work tree; its master is tagged Version.
	Dir     string
	Version string
	// Staging are the staging modules laid out, Dropped those the proxy
	// does not serve, removed from go.work and from the replaces.
	Staging, Dropped []string
	// Files is the number of files in the tree, vendor/ included.
	Files int
	// Made is how long making it took; 0 when it was in the cache.
	Made time.Duration `json:"-"`
}

// k8sTreeMaker makes the tree with the host's Go.
type k8sTreeMaker struct {
	goBin string
	// env is the go command's environment: the host's, with GOPROXY as
	// the benchmark was given it.
	env []string
}

// run runs a command in dir with env and returns its trimmed stdout, also
// when it fails: `go mod download -json` exits 1 and still says which
// module failed on stdout.
func (k8sTreeMaker) run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// ensure returns the tree of version under cacheDir, making it first if it
// is not there: into a temporary folder renamed at the end, so that an
// interrupted run never leaves a half tree that passes for a whole one.
func (m k8sTreeMaker) ensure(ctx context.Context, cacheDir, version string) (*k8sTree, error) {
	dir := filepath.Join(cacheDir, "kubernetes-"+version)
	info := dir + ".json"
	if _, err := m.run(ctx, dir, gitEnv(), "git", "rev-parse", "--verify", "--quiet", "refs/tags/"+version+"^{commit}"); err == nil {
		t := &k8sTree{Dir: dir, Version: version}
		if b, err := os.ReadFile(info); err == nil && json.Unmarshal(b, t) == nil && t.Files > 0 {
			t.Dir, t.Version, t.Made = dir, version, 0
			return t, nil
		}
		return t, t.describe()
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("k8s tree cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".kubernetes-"+version+"-")
	if err != nil {
		return nil, fmt.Errorf("k8s tree cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return nil, fmt.Errorf("k8s tree cache: %w", err)
	}
	start := time.Now()
	t, err := m.make(ctx, tmp, version)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("k8s tree cache: replace %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("k8s tree cache: %w", err)
	}
	t.Dir, t.Made = dir, time.Since(start)
	// What the tree cannot tell by itself later: which modules were dropped.
	if b, err := json.Marshal(t); err == nil {
		os.WriteFile(info, b, 0o644)
	}
	return t, nil
}

// describe fills what a cached tree does not record: its staging modules
// and its size.
func (t *k8sTree) describe() error {
	entries, err := os.ReadDir(filepath.Join(t.Dir, filepath.FromSlash(stagingPrefix)))
	if err != nil {
		return fmt.Errorf("k8s tree %s: %w", t.Dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Staging = append(t.Staging, "k8s.io/"+e.Name())
		}
	}
	t.Files, err = countFiles(t.Dir)
	return err
}

// make lays the tree out in dir, vendors it, commits it and tags it.
func (m k8sTreeMaker) make(ctx context.Context, dir, version string) (*k8sTree, error) {
	staging, err := stagingVersion(version)
	if err != nil {
		return nil, err
	}
	mods, err := m.download(ctx, "k8s.io/kubernetes@"+version)
	if err != nil {
		return nil, err
	}
	root := mods[0]
	if root.Error != "" {
		return nil, fmt.Errorf("download k8s.io/kubernetes@%s through the module proxy: %s", version, root.Error)
	}
	if err := copyModule(root.Dir, dir); err != nil {
		return nil, err
	}
	uses, err := workUses(filepath.Join(dir, "go.work"))
	if err != nil {
		return nil, err
	}
	var want []string
	for _, u := range uses {
		if name, ok := strings.CutPrefix(u, stagingPrefix); ok {
			want = append(want, "k8s.io/"+name+"@"+staging)
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("go.work of k8s.io/kubernetes@%s lists no module under %s", version, stagingPrefix)
	}
	got, err := m.download(ctx, want...)
	if err != nil {
		return nil, err
	}
	t := &k8sTree{Version: version}
	for _, mod := range got {
		name := strings.TrimPrefix(mod.Path, "k8s.io/")
		if mod.Error != "" {
			if !notServed(mod.Error) {
				return nil, fmt.Errorf("download %s@%s through the module proxy: %s", mod.Path, mod.Version, mod.Error)
			}
			t.Dropped = append(t.Dropped, mod.Path)
			continue
		}
		if err := copyModule(mod.Dir, filepath.Join(dir, filepath.FromSlash(stagingPrefix), name)); err != nil {
			return nil, err
		}
		t.Staging = append(t.Staging, mod.Path)
	}
	if err := m.dropModules(ctx, dir, t.Dropped); err != nil {
		return nil, err
	}
	if _, err := m.run(ctx, dir, m.goEnv(), m.goBin, "work", "vendor"); err != nil {
		return nil, fmt.Errorf("go work vendor in the Kubernetes tree: %w", err)
	}
	if t.Files, err = countFiles(dir); err != nil {
		return nil, err
	}
	return t, m.commit(ctx, dir, version, root.Time)
}

// goEnv is the go command's environment for making the tree: modules from
// the proxy, never a toolchain download.
func (m k8sTreeMaker) goEnv() []string {
	return append(slices.Clone(m.env), "GOFLAGS=", "GOTOOLCHAIN=local", "GOENV=off")
}

// commit commits dir as the release commit of version, dated when the proxy
// first served it, and tags it as upstream does, with an annotated tag.
func (m k8sTreeMaker) commit(ctx context.Context, dir, version string, when time.Time) error {
	if when.IsZero() {
		when = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date := when.UTC().Format(time.RFC3339)
	env := append(gitEnv(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=master"},
		// Upstream commits vendor/ and generated files whatever a
		// .gitignore in the tree says.
		{"add", "--all", "--force", "."},
		{"commit", "--quiet", "--no-verify", "-m", "Release commit for Kubernetes " + version},
		{"tag", "--annotate", "-m", "Kubernetes " + version, version},
	} {
		if _, err := m.run(ctx, dir, env, "git", args...); err != nil {
			return fmt.Errorf("commit the Kubernetes tree: %w", err)
		}
	}
	return nil
}

// moduleDownload is one object of `go mod download -json`.
type moduleDownload struct {
	Path, Version, Dir, Info, Error string
	// Time is read from the Info file: when the proxy first served it.
	Time time.Time `json:"-"`
}

// download runs `go mod download -json` for the modules, outside any module,
// and returns one result per module in the order asked. A module the proxy
// refuses has Error set; a failure of the go command itself is an error.
func (m k8sTreeMaker) download(ctx context.Context, mods ...string) ([]moduleDownload, error) {
	tmp, err := os.MkdirTemp("", "hyperfork-k8s-download-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	env := append(m.goEnv(), "GOWORK=off", "GO111MODULE=on")
	// go mod download exits 1 when any module fails, and still prints
	// every result: the results say which.
	out, runErr := m.run(ctx, tmp, env, m.goBin, append([]string{"mod", "download", "-json"}, mods...)...)
	res, err := parseDownloads(strings.NewReader(out))
	if err != nil || len(res) != len(mods) {
		return nil, fmt.Errorf("go mod download -json %s: %d results for %d modules (%v): %v", strings.Join(mods, " "), len(res), len(mods), err, runErr)
	}
	for i := range res {
		if res[i].Error != "" {
			continue
		}
		if res[i].Dir == "" {
			return nil, fmt.Errorf("go mod download -json: %s@%s has no folder", res[i].Path, res[i].Version)
		}
		// The .info file holds the date the proxy first served the version.
		var info struct{ Time time.Time }
		if b, err := os.ReadFile(res[i].Info); err == nil && json.Unmarshal(b, &info) == nil {
			res[i].Time = info.Time
		}
	}
	return res, nil
}

// parseDownloads reads the stream of JSON objects `go mod download -json`
// prints.
func parseDownloads(r io.Reader) ([]moduleDownload, error) {
	dec := json.NewDecoder(r)
	var out []moduleDownload
	for {
		var d moduleDownload
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
}

// notServed tells a version the proxy does not serve (the sample modules)
// from a failure that retrying could fix, such as no network.
func notServed(msg string) bool {
	for _, s := range []string{"not available", "404 Not Found", "410 Gone", "403 Forbidden", "unknown revision", "invalid version"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// workUses returns the `use` folders of a go.work, as written.
func workUses(goWork string) ([]string, error) {
	b, err := os.ReadFile(goWork)
	if err != nil {
		return nil, fmt.Errorf("read go.work: %w", err)
	}
	var uses []string
	inBlock := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "use (":
			inBlock = true
		case inBlock && line == ")":
			inBlock = false
		case inBlock && line != "":
			uses = append(uses, line)
		case strings.HasPrefix(line, "use "):
			uses = append(uses, strings.TrimSpace(strings.TrimPrefix(line, "use ")))
		}
	}
	return uses, nil
}

// dropModules removes the modules the proxy does not serve from the tree's
// go.work (their use lines) and go.mod (their replace and require lines),
// with the go command's own editors, as if upstream had never had them.
func (m k8sTreeMaker) dropModules(ctx context.Context, dir string, mods []string) error {
	if len(mods) == 0 {
		return nil
	}
	work := []string{"work", "edit"}
	mod := []string{"mod", "edit"}
	for _, p := range mods {
		work = append(work, "-dropuse="+stagingPrefix+strings.TrimPrefix(p, "k8s.io/"))
		mod = append(mod, "-dropreplace="+p, "-droprequire="+p)
	}
	for _, args := range [][]string{work, mod} {
		if _, err := m.run(ctx, dir, m.goEnv(), m.goBin, args...); err != nil {
			return fmt.Errorf("drop the modules the proxy does not serve (%s): %w", strings.Join(mods, ", "), err)
		}
	}
	return nil
}

// copyModule copies a module from the read-only module cache into dst with
// the modes a checkout gives: 0644, 0755 for scripts (a module zip keeps no
// modes).
func copyModule(src, dst string) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if bytes.HasPrefix(b, []byte("#!")) {
			mode = 0o755
		}
		return os.WriteFile(to, b, mode)
	})
	if err != nil {
		return fmt.Errorf("copy module %s into %s: %w", src, dst, err)
	}
	return nil
}

// countFiles counts the regular files under dir, .git left out.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n, err
}

// k8sEditFile is the file the one-line scenario changes, and k8sEditOld the
// line it changes: a message in kubectl's version command, inside a
// function too large to inline, so that one package recompiles.
const k8sEditFile = "staging/src/k8s.io/kubectl/pkg/cmd/version/version.go"

// editK8s makes the one-line change in the tree at dir: the first string
// literal of the first return fmt.Errorf(...) in k8sEditFile gets a suffix.
func editK8s(dir string, round int) error {
	p := filepath.Join(dir, filepath.FromSlash(k8sEditFile))
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("one-line change: %w", err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	for i, l := range lines {
		if strings.Contains(l, "fmt.Errorf(\"") {
			open := strings.Index(l, "fmt.Errorf(\"") + len("fmt.Errorf(\"")
			lines[i] = l[:open] + fmt.Sprintf("[hyperfork bench %d] ", round) + l[open:]
			return os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644)
		}
	}
	return fmt.Errorf("one-line change: %s has no fmt.Errorf(\"...\") line to change", path.Base(k8sEditFile))
}
