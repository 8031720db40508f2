package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hyperfork/hyperfork/internal/exec"
)

// Commander runs one external command, its output going to log. It is the
// seam between the kubetest2 runner and the programs it drives: kind and
// kubetest2 need a Docker engine, which tests do not have.
type Commander interface {
	// Run runs name (an absolute path) with args in dir, with env on
	// top of the allow-listed base environment, and returns when it ends
	// or, after ctx ends, when its whole process group is gone.
	Run(ctx context.Context, name string, args []string, env []string, dir string, log io.Writer) error
}

// ExecCommander is the real Commander: internal/exec's Stream, so every
// command gets the allow-listed environment, its own process group (killed
// on cancel and when the command ends), and a redacted log.
type ExecCommander struct {
	Redactor *exec.Redactor
}

var _ Commander = ExecCommander{}

// Run runs the command with exec.Stream.
func (e ExecCommander) Run(ctx context.Context, name string, args []string, env []string, dir string, log io.Writer) error {
	return exec.Stream(ctx, exec.Cmd{Name: name, Args: args, Env: env, Dir: dir, Redactor: e.Redactor}, log)
}

// Pinned versions of the tools, for the install commands a missing one
// gets. kubetest2 has no releases: its commit is pinned.
const (
	// Kubetest2Commit is kubernetes-sigs/kubetest2's master of 2026-06-15
	// (Merge pull request #338, node-prebuilt-binaries).
	Kubetest2Commit = "bebdb6468331bb870526dd304e80f1bb3f9bc2a5"
	// KindVersion is kind's newest release (v0.33.0 is not released yet:
	// its tag is the development marker v0.33.0-alpha).
	KindVersion = "v0.32.0"
)

// tool is a program the kubetest2 runner needs on PATH.
type tool struct{ name, install string }

var kubetest2Install = "go install sigs.k8s.io/kubetest2/...@" + Kubetest2Commit

// kubetest2Tools are checked in this order; their paths are looked up once.
var kubetest2Tools = []tool{
	{"kubetest2", kubetest2Install},
	{"kubetest2-kind", kubetest2Install},
	{"kubetest2-tester-ginkgo", kubetest2Install},
	{"kind", "go install sigs.k8s.io/kind@" + KindVersion},
	{"docker", "install Docker Engine (https://docs.docker.com/engine/install/) and start it; kind runs its nodes as containers"},
}

// MissingToolError says which programs are not on PATH and how to install
// them; one error per install command. It matches ErrMissingTool.
type MissingToolError struct {
	Tools   []string
	Install string
	Path    string // the PATH searched
}

// Error names the tools and the command that installs them.
func (e *MissingToolError) Error() string {
	verb := "is"
	if len(e.Tools) > 1 {
		verb = "are"
	}
	how := e.Install
	if strings.HasPrefix(how, "go install ") {
		how = "run `" + how + "` (it installs into $(go env GOPATH)/bin, which must be on PATH)"
	}
	return fmt.Sprintf("%s %s not on PATH (%s): %s", strings.Join(e.Tools, ", "), verb, e.Path, how)
}

// Is makes errors.Is(err, ErrMissingTool) hold.
func (e *MissingToolError) Is(target error) bool { return target == ErrMissingTool }

// lookTools returns the absolute path of every tool, or every missing one
// at once.
func lookTools(pathList string) (map[string]string, error) {
	found := map[string]string{}
	var missing []*MissingToolError
	for _, t := range kubetest2Tools {
		p, err := lookPath(t.name, pathList)
		if err == nil {
			found[t.name] = p
			continue
		}
		i := slices.IndexFunc(missing, func(m *MissingToolError) bool { return m.Install == t.install })
		if i < 0 {
			missing = append(missing, &MissingToolError{Install: t.install, Path: pathList})
			i = len(missing) - 1
		}
		missing[i].Tools = append(missing[i].Tools, t.name)
	}
	errs := make([]error, len(missing))
	for i, m := range missing {
		errs[i] = m
	}
	return found, errors.Join(errs...)
}

// checkTarball makes sure the server tarball is there and is gzip data:
// given a path that does not exist, kind falls back to building
// Kubernetes from source, which is neither what was tested nor quick.
func checkTarball(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: the candidate has none; the build stage writes kubernetes-server-linux-<arch>.tar.gz for test.platform", ErrNoServerTarball)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoServerTarball, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoServerTarball, err)
	}
	magic := make([]byte, 2)
	switch _, rerr := io.ReadFull(f, magic); {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%w: %s is not a file", ErrNoServerTarball, abs)
	case fi.Size() == 0:
		return "", fmt.Errorf("%w: %s is empty", ErrNoServerTarball, abs)
	case rerr != nil || !bytes.Equal(magic, []byte{0x1f, 0x8b}):
		return "", fmt.Errorf("%w: %s is not a .tar.gz", ErrNoServerTarball, abs)
	}
	return abs, nil
}

// testBinaries are what kubetest2's ginkgo tester wants in its run dir
// with --use-built-binaries (build.CommonTestBinaries in kubetest2).
var testBinaries = []string{"e2e.test", "ginkgo", "kubectl"}

// stageBinaries puts the candidate's test binaries into kubetest2's run
// dir: hard links where the file system allows, copies otherwise.
func stageBinaries(binDir, runDir string) error {
	if binDir == "" {
		return errors.New("the candidate has no bin folder with e2e.test, ginkgo and kubectl")
	}
	var missing []string
	for _, b := range testBinaries {
		fi, err := os.Stat(filepath.Join(binDir, b))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the candidate's bin folder %s lacks %s: the build stage compiles them for test.platform (build.testTargets, build.testCommands, kubectl in build.targets)",
			binDir, strings.Join(missing, ", "))
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	for _, b := range testBinaries {
		src, dst := filepath.Join(binDir, b), filepath.Join(runDir, b)
		if err := os.Link(src, dst); err == nil {
			continue
		}
		if err := copyExecutable(src, dst); err != nil {
			return fmt.Errorf("stage %s in %s: %w", b, runDir, err)
		}
	}
	return nil
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// clusterNameMax is kind's own limit, beyond which it warns that the name
// "might not work properly on some systems".
const clusterNameMax = 50

// ClusterName returns the kind cluster's name for a candidate:
// hyperfork-<branch>-<commit12>. kind allows [a-z0-9.-]; a branch name
// that needs changing to fit (release/1.34, Main, a long one) also gets 6
// hex digits of its hash, so that two branches never share a cluster.
func ClusterName(branch, commit string) string {
	short := commit12(commit)
	room := clusterNameMax - len("hyperfork-") - len("-") - len(short)
	var b strings.Builder
	for _, r := range branch {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	name = strings.Trim(name, "-.")
	if name != branch || len(name) > room {
		sum := sha256.Sum256([]byte(branch))
		hash := hex.EncodeToString(sum[:3])
		name = strings.Trim(name[:min(len(name), room-len(hash)-1)], "-.")
		if name == "" {
			name = hash
		} else {
			name += "-" + hash
		}
	}
	return "hyperfork-" + name + "-" + short
}

// commit12 returns the first 12 characters of a commit hash, lower case.
func commit12(commit string) string {
	c := strings.ToLower(commit)
	return c[:min(len(c), 12)]
}
