package registry

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// binDir is where binaries go in every image: on PATH in any base.
const binDir = "usr/local/bin"

// gzipLevel is fixed so the same files always give the same blob. BestSpeed:
// Kubernetes binaries compress poorly anyway and pushing is what takes time.
// compress/gzip writes no timestamp or file name into its header.
const gzipLevel = gzip.BestSpeed

// binFile is one binary to put in the layer.
type binFile struct {
	name string // file name in /usr/local/bin
	src  string // path on disk
	size int64
}

// binLayer is a layer made of binaries, produced reproducibly by streaming:
// the tar and its gzip are generated again on each read instead of being held
// in memory or a temporary file (the Kubernetes binaries of one platform weigh
// about half a gigabyte). Its digests are computed once, on creation.
type binLayer struct {
	files   []binFile
	modTime time.Time

	digest, diffID v1.Hash
	size           int64
	// cache is the compressed layer on disk, if it could be kept.
	cache string
}

var _ v1.Layer = (*binLayer)(nil)

// newBinLayer makes the layer holding the named files of dir at
// /usr/local/bin/<name>, mode 0755, owned by root, dated modTime.
func newBinLayer(dir string, names []string, modTime time.Time) (*binLayer, error) {
	l := &binLayer{modTime: modTime.UTC().Truncate(time.Second)}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		src := filepath.Join(dir, n)
		fi, err := os.Stat(src)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("binary %s is not in %s: %w", n, dir, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("binary %s is not a regular file", src)
		}
		l.files = append(l.files, binFile{name: n, src: src, size: fi.Size()})
	}
	// The compressed bytes are kept next to the binaries while the digests
	// are computed: a push then reads them instead of compressing again.
	cache, err := os.CreateTemp(dir, ".layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	diffH, digH := sha256.New(), sha256.New()
	counter := &countWriter{w: io.MultiWriter(digH, cache)}
	gz, err := gzip.NewWriterLevel(counter, gzipLevel)
	if err != nil {
		return nil, err
	}
	if err := l.writeTar(io.MultiWriter(diffH, gz)); err != nil {
		os.Remove(cache.Name())
		return nil, err
	}
	if err := gz.Close(); err != nil {
		os.Remove(cache.Name())
		return nil, err
	}
	l.diffID = sum(diffH)
	l.digest = sum(digH)
	l.size = counter.n
	// One file per digest: packing the same binaries again reuses it.
	l.cache = filepath.Join(dir, ".layer-"+l.digest.Hex+".tar.gz")
	if err := os.Rename(cache.Name(), l.cache); err != nil {
		os.Remove(cache.Name())
		l.cache = ""
	}
	return l, nil
}

// writeTar writes the layer's tar: sorted entries, fixed owner, mode and
// time, so that its bytes depend on the binaries' contents only.
func (l *binLayer) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"usr/", "usr/local/", binDir + "/"} {
		if err := tw.WriteHeader(l.header(d, tar.TypeDir, 0)); err != nil {
			return err
		}
	}
	for _, f := range l.files {
		if err := tw.WriteHeader(l.header(binDir+"/"+f.name, tar.TypeReg, f.size)); err != nil {
			return err
		}
		if err := copyFile(tw, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func (l *binLayer) header(name string, typ byte, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Size:     size,
		Mode:     0o755,
		ModTime:  l.modTime,
		// PAX is chosen explicitly: USTAR would be picked for short names anyway,
		// but a fixed format keeps the bytes stable if a name grows.
		Format: tar.FormatPAX,
	}
}

// copyFile copies exactly the size seen when the layer was made: a binary that
// changed since then would otherwise give a tar that no longer matches the
// digests, which the registry would reject with a less helpful message.
func copyFile(w io.Writer, f binFile) error {
	in, err := os.Open(f.src)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(w, io.LimitReader(in, f.size))
	if err != nil {
		return fmt.Errorf("read %s: %w", f.src, err)
	}
	if n != f.size {
		return fmt.Errorf("binary %s changed while the image was being made (size %d, was %d)", f.src, n, f.size)
	}
	return nil
}

// Digest returns the sha256 of the compressed layer.
func (l *binLayer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID returns the sha256 of the uncompressed tar.
func (l *binLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size returns the size of the compressed layer.
func (l *binLayer) Size() (int64, error) { return l.size, nil }

// MediaType returns the OCI gzip layer type.
func (l *binLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Uncompressed streams the tar.
func (l *binLayer) Uncompressed() (io.ReadCloser, error) {
	return stream(func(w io.Writer) error { return l.writeTar(w) }), nil
}

// Compressed streams the gzip of the tar: the copy made with the digests
// when it is still there and unchanged in size, else compressed anew.
func (l *binLayer) Compressed() (io.ReadCloser, error) {
	if l.cache != "" {
		if f, err := os.Open(l.cache); err == nil {
			if fi, err := f.Stat(); err == nil && fi.Size() == l.size {
				return f, nil
			}
			f.Close()
		}
	}
	return stream(func(w io.Writer) error {
		gz, err := gzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return err
		}
		if err := l.writeTar(gz); err != nil {
			return err
		}
		return gz.Close()
	}), nil
}

// stream runs write in a goroutine and returns its output as a reader. Closing
// the reader early makes write fail and return, so no goroutine leaks.
func stream(write func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	return pr
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
