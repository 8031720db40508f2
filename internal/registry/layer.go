package registry

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// binDir is where binaries go in every image: on PATH in any base.
const binDir = "usr/local/bin"

// gzipLevel is fixed so the same files always give the same blob. BestSpeed:
// Kubernetes binaries compress poorly anyway, and compressing is most of
// what packing costs.
// compress/gzip writes no timestamp or file name into its header.
const gzipLevel = gzip.BestSpeed

// layerTime dates every entry of a binary's layer. It is a constant, not
// the commit time: a binary that did not change between two commits then
// gives the same layer, which is neither compressed nor uploaded again.
var layerTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// layerCacheDir is the folder, inside a platform's binary folder, that keeps
// each binary's compressed layer between packs. Its name starts with a dot
// so that it is never taken for a binary.
const layerCacheDir = ".layers"

// layerRecordVersion changes whenever the layer's bytes would, so that an
// older record is never reused.
const layerRecordVersion = 1

// binFile is the binary a layer holds.
type binFile struct {
	name string // file name in /usr/local/bin
	src  string // path on disk
	size int64
}

// binLayer is the layer of one binary, produced reproducibly by streaming:
// the tar and its gzip are generated again on each read instead of being held
// in memory (a Kubernetes binary weighs up to a hundred megabytes), unless
// the compressed bytes are kept in the layer cache. One layer per binary: a
// binary that did not change keeps its layer, so only the changed ones are
// compressed and pushed.
type binLayer struct {
	file binFile

	digest, diffID v1.Hash
	size           int64
	// cache is the compressed layer on disk, if it could be kept.
	cache string
}

var _ v1.Layer = (*binLayer)(nil)

// layerRecord is what the layer cache remembers of a binary's layer: the
// binary it was made from (size, modification time and, through a hard
// link, the file itself) and the layer's digests.
type layerRecord struct {
	Version        int    `json:"version"`
	Size           int64  `json:"size"`
	ModTime        int64  `json:"modTime"` // nanoseconds since the epoch
	DiffID         string `json:"diffID"`
	Digest         string `json:"digest"`
	CompressedSize int64  `json:"compressedSize"`
}

// newBinLayer makes the layer holding dir/name at /usr/local/bin/<name>, mode
// 0755, owned by root, dated layerTime. The layer cache in dir/.layers is
// used when it holds this very file (the same inode, size and modification
// time), else the layer is compressed and the cache updated.
func newBinLayer(dir, name string) (*binLayer, error) {
	src := filepath.Join(dir, name)
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("binary %s is not in %s: %w", name, dir, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("binary %s is not a regular file", src)
	}
	l := &binLayer{file: binFile{name: name, src: src, size: fi.Size()}}
	cacheDir := filepath.Join(dir, layerCacheDir)
	if l.fromCache(cacheDir, fi) {
		return l, nil
	}
	if err := l.compress(cacheDir); err != nil {
		return nil, err
	}
	l.remember(cacheDir, fi)
	return l, nil
}

// fromCache fills l from the cache's record of the binary, if the record is
// of this file as it is now and the compressed layer is still there.
func (l *binLayer) fromCache(cacheDir string, fi fs.FileInfo) bool {
	b, err := os.ReadFile(filepath.Join(cacheDir, l.file.name+".json"))
	if err != nil {
		return false
	}
	var r layerRecord
	if json.Unmarshal(b, &r) != nil || r.Version != layerRecordVersion || r.Size != fi.Size() || r.ModTime != fi.ModTime().UnixNano() {
		return false
	}
	// The hard link made with the record is the same file only if the
	// binary was not replaced since; a rewrite in place changes the
	// modification time.
	if li, err := os.Stat(filepath.Join(cacheDir, l.file.name+".link")); err != nil || !os.SameFile(fi, li) {
		return false
	}
	diffID, err1 := v1.NewHash(r.DiffID)
	digest, err2 := v1.NewHash(r.Digest)
	cache := filepath.Join(cacheDir, digest.Hex+".tar.gz")
	if ci, err := os.Stat(cache); err1 != nil || err2 != nil || err != nil || ci.Size() != r.CompressedSize {
		return false
	}
	l.diffID, l.digest, l.size, l.cache = diffID, digest, r.CompressedSize, cache
	return true
}

// compress computes the digests in one pass, keeping the compressed bytes in
// the cache folder so that a push reads them instead of compressing again.
func (l *binLayer) compress(cacheDir string) error {
	tmpDir := cacheDir
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		tmpDir = filepath.Dir(cacheDir) // no cache: the digests still count
	}
	tmp, err := os.CreateTemp(tmpDir, ".layer-*.tar.gz")
	if err != nil {
		return err
	}
	defer tmp.Close()
	diffH, digH := sha256.New(), sha256.New()
	counter := &countWriter{w: io.MultiWriter(digH, tmp)}
	gz, err := gzip.NewWriterLevel(counter, gzipLevel)
	if err != nil {
		return err
	}
	if err := l.writeTar(io.MultiWriter(diffH, gz)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := gz.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	l.diffID, l.digest, l.size = sum(diffH), sum(digH), counter.n
	if tmpDir != cacheDir {
		os.Remove(tmp.Name())
		return nil
	}
	// One file per digest: packing the same binary again, for another
	// image or another build, reuses it.
	l.cache = filepath.Join(cacheDir, l.digest.Hex+".tar.gz")
	if err := os.Rename(tmp.Name(), l.cache); err != nil {
		os.Remove(tmp.Name())
		l.cache = ""
	}
	return nil
}

// remember records the layer of the binary as it is now, and removes the
// compressed layer of the binary's previous version. A failure only costs a
// compression next time.
func (l *binLayer) remember(cacheDir string, fi fs.FileInfo) {
	if l.cache == "" {
		return
	}
	rec := filepath.Join(cacheDir, l.file.name+".json")
	var old layerRecord
	if b, err := os.ReadFile(rec); err == nil && json.Unmarshal(b, &old) == nil {
		if h, err := v1.NewHash(old.Digest); err == nil && h != l.digest {
			os.Remove(filepath.Join(cacheDir, h.Hex+".tar.gz"))
		}
	}
	link := filepath.Join(cacheDir, l.file.name+".link")
	tmpLink := link + ".tmp"
	os.Remove(tmpLink)
	if err := os.Link(l.file.src, tmpLink); err != nil {
		os.Remove(rec)
		return
	}
	if err := os.Rename(tmpLink, link); err != nil {
		os.Remove(tmpLink)
		return
	}
	b, _ := json.Marshal(layerRecord{Version: layerRecordVersion, Size: fi.Size(), ModTime: fi.ModTime().UnixNano(),
		DiffID: l.diffID.String(), Digest: l.digest.String(), CompressedSize: l.size})
	tmp := rec + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil || os.Rename(tmp, rec) != nil {
		os.Remove(tmp)
	}
}

// writeTar writes the layer's tar: the folders, then the binary, with fixed
// owner, mode and time, so that its bytes depend on the binary's name and
// contents only.
func (l *binLayer) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"usr/", "usr/local/", binDir + "/"} {
		if err := tw.WriteHeader(header(d, tar.TypeDir, 0)); err != nil {
			return err
		}
	}
	f := l.file
	if err := tw.WriteHeader(header(binDir+"/"+f.name, tar.TypeReg, f.size)); err != nil {
		return err
	}
	if err := copyFile(tw, f); err != nil {
		return err
	}
	return tw.Close()
}

func header(name string, typ byte, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Size:     size,
		Mode:     0o755,
		ModTime:  layerTime,
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
