package registry

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Files returns the regular files of the platform's image in idx (layers
// applied in order, whiteouts ignored), keyed by path without a leading
// slash. It reads whole files into memory: it is for checking small images
// such as hyperkube's, in tests and by people, not for unpacking bases.
func Files(idx Index, platform string) (map[string][]byte, error) {
	files := map[string][]byte{}
	found, err := eachLayer(idx, platform, func(r io.Reader) error { return readTar(r, files) })
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("index has no image for %s: %w", platform, ErrNotFound)
	}
	return files, nil
}

// eachLayer hands the uncompressed layers of the platform's image in idx,
// in order, to read; it reports whether idx has that platform.
func eachLayer(idx Index, platform string, read func(io.Reader) error) (bool, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return false, fmt.Errorf("read index: %w", err)
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS+"/"+d.Platform.Architecture+variant(d.Platform.Variant) != platform {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return false, fmt.Errorf("read %s image %s: %w", platform, d.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			return false, fmt.Errorf("read %s layers: %w", platform, err)
		}
		for _, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				return false, fmt.Errorf("read %s layer: %w", platform, err)
			}
			err = read(rc)
			rc.Close()
			if err != nil {
				return false, fmt.Errorf("read %s layer: %w", platform, err)
			}
		}
		return true, nil
	}
	return false, nil
}

func variant(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

func readTar(r io.Reader, files map[string][]byte) error {
	return eachFile(r, func(name string, f io.Reader) error {
		if strings.HasPrefix(path.Base(name), ".wh.") {
			return nil
		}
		b, err := io.ReadAll(f)
		files[name] = b
		return err
	})
}

// eachFile hands each regular file of a layer's tar stream to fn, named
// by its clean path without a leading slash.
func eachFile(r io.Reader, fn func(name string, f io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), tr); err != nil {
			return err
		}
	}
}

// ExtractCommands writes the commands named in names from the platform's
// image in idx into dir, streaming each layer once (a later layer's file
// replaces an earlier one's), and returns the names it found. It takes
// only regular files directly in /usr/local/bin, never a path outside dir.
func ExtractCommands(idx Index, platform, dir string, names []string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := map[string]bool{}
	if _, err := eachLayer(idx, platform, func(r io.Reader) error { return extractTar(r, dir, want, found) }); err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if found[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// extractTar writes the wanted commands of one layer into dir.
func extractTar(r io.Reader, dir string, want, found map[string]bool) error {
	return eachFile(r, func(name string, f io.Reader) error {
		base := path.Base(name)
		if path.Dir(name) != binDir || !want[base] {
			return nil
		}
		if err := writeCommand(filepath.Join(dir, base), f); err != nil {
			return err
		}
		found[base] = true
		return nil
	})
}

// writeCommand writes an executable through a temporary file, so that a
// half-written command is never there under its name.
func writeCommand(dst string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := f.Chmod(0o755); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}
