package gitfixture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// fiWriter writes commands of the git fast-import stream format
// (git-fast-import(1)). Write errors stick in the bufio.Writer and surface
// at Flush, so the methods return nothing.
type fiWriter struct {
	w    *bufio.Writer
	mark int
}

// commit writes a commit on ref and returns its mark. from (a mark ":N" or
// a hash) is the parent; empty continues the ref's current tip, which for a
// ref new to the stream means a root commit.
func (f *fiWriter) commit(ref, from string, when int64, msg string, mods map[string][]byte) int {
	f.mark++
	ident := fmt.Sprintf("%s <%s> %d +0000\n", AuthorName, AuthorEmail, when)
	fmt.Fprintf(f.w, "commit %s\nmark :%d\nauthor %scommitter %s", ref, f.mark, ident, ident)
	f.data([]byte(msg + "\n"))
	if from != "" {
		fmt.Fprintf(f.w, "from %s\n", from)
	}
	for path, content := range mods {
		fmt.Fprintf(f.w, "M 100644 inline %s\n", path)
		f.data(content)
	}
	_ = f.w.WriteByte('\n')
	return f.mark
}

// tag writes an annotated tag on the commit with the given mark.
func (f *fiWriter) tag(name string, mark int, when int64) {
	fmt.Fprintf(f.w, "tag %s\nfrom :%d\ntagger %s <%s> %d +0000\n", name, mark, AuthorName, AuthorEmail, when)
	f.data([]byte("Kubernetes " + name + "\n"))
}

func (f *fiWriter) data(b []byte) {
	fmt.Fprintf(f.w, "data %d\n", len(b))
	_, _ = f.w.Write(b)
	_ = f.w.WriteByte('\n')
}

// fastImport runs `git fast-import` in the bare repository dir and streams
// what write produces into it. The stream declares "feature done", so a
// stream cut short by an error or a cancelled ctx is rejected by git
// instead of leaving a half-written history behind refs.
func fastImport(ctx context.Context, dir string, write func(*bufio.Writer) error) error {
	cmd := exec.CommandContext(ctx, "git", "--git-dir="+dir, "fast-import", "--quiet")
	// fast-import sets up a fresh zlib stream per object; with glibc's
	// default mmap threshold each one is a new mapping, and page faults
	// took a fifth of the run. Keeping them on the heap is ~20% faster;
	// other C libraries ignore the variable.
	cmd.Env = append(genEnv(), "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=1073741824")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start git fast-import: %w", err)
	}
	bw := bufio.NewWriterSize(stdin, 1<<20)
	_, _ = bw.WriteString("feature done\n")
	werr := write(bw)
	if werr == nil {
		_, _ = bw.WriteString("done\n")
		werr = bw.Flush()
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		// git's message explains a broken pipe on our side too.
		return fmt.Errorf("git fast-import: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return fmt.Errorf("write fast-import stream: %w", werr)
	}
	return nil
}

// genEnv is Env for the context-based generators, which have no test to
// own a temp HOME: the global config is /dev/null instead.
func genEnv() []string {
	return append(Env(os.TempDir()), "GIT_CONFIG_GLOBAL=/dev/null")
}

// gitCtx runs git in dir (the process's directory if empty) and returns its
// trimmed stdout.
func gitCtx(ctx context.Context, dir string, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = genEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &Error{Args: args, Dir: dir, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// commitTime returns the committer date of rev in dir, in Unix seconds.
func commitTime(ctx context.Context, dir, rev string) (int64, error) {
	out, err := gitCtx(ctx, dir, nil, "show", "-s", "--format=%ct", rev)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(out, 10, 64)
}
