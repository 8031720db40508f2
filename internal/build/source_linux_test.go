package build

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// TestSourceFSMatchesFsutil walks a tree with sourceFS and with fsutil's own
// FS: every entry must carry the same metadata, so that BuildKit's sync
// compares and keeps files exactly as it would with fsutil's.
func TestSourceFSMatchesFsutil(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"go.mod": 0o644, "cmd/a/main.go": 0o644, "hack/run.sh": 0o755, "vendor/x/y/z.go": 0o600} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("cmd/a/main.go", filepath.Join(dir, "link"))
	os.Mkdir(filepath.Join(dir, "empty"), 0o700)

	// meta is what BuildKit compares of an entry (extended attributes left
	// out: sourceFS does not send them).
	type meta struct {
		Mode, Uid, Gid uint32
		Size, ModTime  int64
		Linkname, Path string
	}
	walk := func(f fsutil.FS) map[string]meta {
		t.Helper()
		out := map[string]meta{}
		err := f.Walk(context.Background(), "/", func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*types.Stat)
			if e.IsDir() != fi.IsDir() || e.Name() != filepath.Base(p) || st.Path != p {
				t.Errorf("%s: entry %s dir=%v, info dir=%v path %s", p, e.Name(), e.IsDir(), fi.IsDir(), st.Path)
			}
			out[p] = meta{st.Mode, st.Uid, st.Gid, st.Size, st.ModTime, st.Linkname, st.Path}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	theirs, _ := fsutil.NewFS(dir)
	ours, err := newSourceFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, got := walk(theirs), walk(ours)
	if len(got) != len(want) || len(got) != 12 {
		t.Fatalf("walked %d entries, fsutil %d, want 12", len(got), len(want))
	}
	for p, w := range want {
		if g := got[p]; g != w {
			t.Errorf("%s: %+v, fsutil %+v", p, g, w)
		}
	}
	rc, err := ours.Open("cmd/a/main.go")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "cmd/a/main.go" {
		t.Errorf("Open read %q", b)
	}
	if _, err := newSourceFS(filepath.Join(dir, "go.mod")); err == nil {
		t.Error("a file was taken for a source folder")
	}
}
