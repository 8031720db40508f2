package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// metaDir holds a folder store's records of its artifacts, one JSON file
// per artifact at the same relative path. Names starting with "." are the
// store's own (this folder, temporary files) and never listed.
const metaDir = ".meta"

type objectRecord struct {
	Size int64     `json:"size"`
	Time time.Time `json:"time"`
}

// artifactPath maps a key to a file, refusing keys that name the store's
// own hidden files.
func (d *Dir) artifactPath(key string) (string, string, error) {
	p, err := d.path(key)
	if err != nil {
		return "", "", err
	}
	rel, _ := filepath.Rel(d.root, p)
	for _, seg := range strings.Split(filepath.ToSlash(rel), "/") {
		if strings.HasPrefix(seg, ".") {
			return "", "", fmt.Errorf("invalid artifact key %q: a part starting with \".\" is the store's own", key)
		}
	}
	return p, filepath.ToSlash(rel), nil
}

func (d *Dir) metaPath(rel string) string {
	return filepath.Join(d.root, metaDir, filepath.FromSlash(rel)+".json")
}

// PutStream implements Artifacts: the data goes to a temporary file beside
// its destination and is renamed into place once complete, then the record
// of its size and time is written.
func (d *Dir) PutStream(ctx context.Context, key string, r io.Reader) (Object, error) {
	p, rel, err := d.artifactPath(key)
	if err != nil {
		return Object{}, err
	}
	fail := func(err error) (Object, error) { return Object{}, fmt.Errorf("store artifact %s: %w", p, err) }
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fail(err)
	}
	obj := Object{Key: rel, Size: n, Time: time.Now().UTC()}
	b, _ := json.Marshal(objectRecord{Size: obj.Size, Time: obj.Time})
	mp := d.metaPath(rel)
	if err := os.MkdirAll(filepath.Dir(mp), 0o755); err != nil {
		return fail(err)
	}
	if err := writeFileAtomic(mp, b); err != nil {
		return fail(err)
	}
	return obj, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open implements Artifacts.
func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, _, err := d.artifactPath(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("artifact %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", key, err)
	}
	return f, nil
}

// List implements Artifacts. An artifact's time is the one its record
// holds; a file put there by hand, or whose record does not match it, has
// its modification time instead.
func (d *Dir) List(_ context.Context, prefix string) ([]Object, error) {
	// Walk only the folder the prefix is inside.
	base := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		base = prefix[:i]
	}
	start := d.root
	if base != "" {
		p, _, err := d.artifactPath(base)
		if err != nil {
			return nil, err
		}
		start = p
	}
	var out []Object
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if p != start && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil // removed while listing
		}
		obj := Object{Key: rel, Size: info.Size(), Time: info.ModTime().UTC()}
		var rec objectRecord
		if b, err := os.ReadFile(d.metaPath(rel)); err == nil && json.Unmarshal(b, &rec) == nil && rec.Size == obj.Size {
			obj.Time = rec.Time
		}
		out = append(out, obj)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list artifacts %s in %s: %w", prefix, d.root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Artifacts, and removes folders it leaves empty.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, rel, err := d.artifactPath(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete artifact %s: %w", p, err)
	}
	mp := d.metaPath(rel)
	_ = os.Remove(mp)
	removeEmptyParents(filepath.Dir(p), d.root)
	removeEmptyParents(filepath.Dir(mp), d.root)
	return nil
}

func removeEmptyParents(dir, root string) {
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Link implements Artifacts with the file's absolute file:// URL; ttl does
// not apply.
func (d *Dir) Link(_ context.Context, key string, _ time.Duration) (string, error) {
	p, _, err := d.artifactPath(key)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}
