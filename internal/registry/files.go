package registry

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Files returns the regular files of the platform's image in idx (layers
// applied in order, whiteouts ignored), keyed by path without a leading
// slash. It reads whole files into memory: it is for checking small images
// such as hyperkube's, in tests and by people, not for unpacking bases.
func Files(idx Index, platform string) (map[string][]byte, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.OS+"/"+d.Platform.Architecture+variant(d.Platform.Variant) != platform {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("read %s image %s: %w", platform, d.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, fmt.Errorf("read %s layers: %w", platform, err)
		}
		files := map[string][]byte{}
		for _, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				return nil, fmt.Errorf("read %s layer: %w", platform, err)
			}
			err = readTar(rc, files)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("read %s layer: %w", platform, err)
			}
		}
		return files, nil
	}
	return nil, fmt.Errorf("index has no image for %s: %w", platform, ErrNotFound)
}

func variant(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

func readTar(r io.Reader, files map[string][]byte) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(path.Base(name), ".wh.") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		files[name] = b
	}
}
