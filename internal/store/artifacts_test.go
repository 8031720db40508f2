package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// pattern yields n pseudo-random bytes without holding them: the test's
// artifact is generated as it is read, like a log streamed from a run.
func pattern(n int64, seed uint64) io.Reader {
	return io.LimitReader(&randReader{rand.NewChaCha8([32]byte{byte(seed)})}, n)
}

type randReader struct{ r *rand.ChaCha8 }

func (r *randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func digest(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// Both stores: a 12 MiB artifact (three 5 MiB parts on S3) streams in and
// out intact, is listed with its size and time, can be fetched through its
// link with net/http (or the file:// path), and deleted.
func TestArtifactsStreamListLinkDelete(t *testing.T) {
	ctx := context.Background()
	const size = 12 << 20
	want := digest(t, pattern(size, 1))
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			before := time.Now().Add(-2 * time.Second)
			obj, err := b.PutStream(ctx, "logs/test/master/run-1.log", pattern(size, 1))
			if err != nil {
				t.Fatal(err)
			}
			if obj.Key != "logs/test/master/run-1.log" || obj.Size != size {
				t.Fatalf("PutStream = %+v", obj)
			}
			if s, ok := b.(*S3); ok {
				// A multipart upload's ETag ends in "-<parts>".
				head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String("hf/state/logs/test/master/run-1.log")})
				if err != nil {
					t.Fatal(err)
				}
				if etag := strings.Trim(aws.ToString(head.ETag), `"`); !strings.HasSuffix(etag, "-3") {
					t.Errorf("ETag %s: not a multipart upload of three parts", etag)
				}
			}
			if _, err := b.PutStream(ctx, "logs/test/master/junit.xml", strings.NewReader("<testsuites/>")); err != nil {
				t.Fatal(err)
			}
			if _, err := b.PutStream(ctx, "logs/build/master.log", strings.NewReader("built")); err != nil {
				t.Fatal(err)
			}
			r, err := b.Open(ctx, "logs/test/master/run-1.log")
			if err != nil {
				t.Fatal(err)
			}
			if got := digest(t, r); got != want {
				t.Fatal("the artifact read back differs from what was streamed in")
			}
			r.Close()

			list, err := b.List(ctx, "logs/test/")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].Key != "logs/test/master/junit.xml" || list[1].Key != "logs/test/master/run-1.log" ||
				list[1].Size != size || list[0].Size != int64(len("<testsuites/>")) {
				t.Fatalf("List(logs/test/) = %+v", list)
			}
			for _, o := range list {
				if o.Time.Before(before) || o.Time.After(time.Now().Add(2*time.Second)) {
					t.Errorf("%s has time %s, want about now", o.Key, o.Time)
				}
			}
			if l, _ := b.List(ctx, "logs/test/master/run"); len(l) != 1 {
				t.Errorf("List by a partial name = %+v", l)
			}

			link, err := b.Link(ctx, "logs/test/master/run-1.log", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if got := digest(t, fetchLink(t, link)); got != want {
				t.Fatalf("the link %s gives other bytes", link)
			}

			if err := b.Delete(ctx, "logs/test/master/run-1.log"); err != nil {
				t.Fatal(err)
			}
			if err := b.Delete(ctx, "logs/test/master/run-1.log"); err != nil {
				t.Fatalf("Delete of a deleted key: %v", err)
			}
			if _, err := b.Open(ctx, "logs/test/master/run-1.log"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Open after Delete: %v", err)
			}
			if l, _ := b.List(ctx, "logs/"); len(l) != 2 {
				t.Fatalf("List after Delete = %+v", l)
			}
		})
	}
}

func fetchLink(t *testing.T, link string) io.Reader {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	switch u.Scheme {
	case "file":
		b, err := os.ReadFile(u.Path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(b)
	case "http", "https":
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %s: %s", u.Redacted(), resp.Status, b)
		}
		return resp.Body
	}
	t.Fatalf("link %s: unknown scheme", link)
	return nil
}

// failingReader fails after n bytes, as a log source that dies would.
type failingReader struct {
	r io.Reader
	n int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the log source died")
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// A failed upload leaves nothing half-written: the old artifact under the
// key stays, no temporary file is left in the folder, and S3's multipart
// upload is aborted.
func TestArtifactFailedUploadLeavesNothing(t *testing.T) {
	ctx := context.Background()
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			key := "logs/test/master/run.log"
			if _, err := b.PutStream(ctx, key, strings.NewReader("the previous log")); err != nil {
				t.Fatal(err)
			}
			_, err := b.PutStream(ctx, key, &failingReader{r: pattern(12<<20, 2), n: 7 << 20})
			if err == nil || !strings.Contains(err.Error(), "the log source died") {
				t.Fatalf("PutStream from a failing reader: %v", err)
			}
			r, err := b.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if string(got) != "the previous log" {
				t.Fatalf("after a failed upload the key holds %d bytes", len(got))
			}
			if _, err := b.PutStream(ctx, "logs/test/master/new.log", &failingReader{r: pattern(1<<20, 3), n: 100}); err == nil {
				t.Fatal("a failed small upload succeeded")
			}
			if _, err := b.Open(ctx, "logs/test/master/new.log"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a failed upload of a new key left something: %v", err)
			}
			switch s := b.(type) {
			case *Dir:
				var leftovers []string
				filepath.WalkDir(s.Root(), func(p string, e os.DirEntry, err error) error { //nolint:errcheck
					if err == nil && strings.HasPrefix(e.Name(), ".tmp-") {
						leftovers = append(leftovers, p)
					}
					return nil
				})
				if len(leftovers) > 0 {
					t.Errorf("temporary files left: %v", leftovers)
				}
			case *S3:
				out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Uploads) != 0 {
					t.Errorf("%d multipart uploads left open", len(out.Uploads))
				}
			}
		})
	}
}

// The server dies in the middle of a multipart upload: the error names the
// bucket and key and says the incomplete upload could not be aborted; after
// the restart the old artifact is intact.
func TestS3ArtifactUploadServerStoppedMidStream(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("logs")
	st := s3Store(t, srv, "logs")
	key := "logs/test/master/run.log"
	if _, err := st.PutStream(ctx, key, strings.NewReader("the previous log")); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	r := io.MultiReader(pattern(6<<20, 4), readerFunc(func([]byte) (int, error) {
		once.Do(srv.Stop) // in the middle of part 2
		return 0, io.EOF
	}), pattern(6<<20, 5))
	_, err := st.PutStream(ctx, key, r)
	wantS3Error(t, "server stopped mid-upload", err, "logs", "hf/state/"+key, "cannot reach the S3 endpoint", true)
	if !strings.Contains(err.Error(), "could not be aborted") || !strings.Contains(err.Error(), "AbortIncompleteMultipartUpload") {
		t.Errorf("the error does not say the upload is left incomplete: %v", err)
	}
	srv.Start()
	rc, err := st.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "the previous log" {
		t.Fatalf("after the restart the key holds %d bytes, want the previous log", len(got))
	}
}

// Streaming holds one part in memory, not the artifact: uploading 40 MiB
// in 5 MiB parts allocates far less than 40 MiB.
func TestS3PutStreamDoesNotBufferTheWholeArtifact(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("logs")
	st := s3Store(t, srv, "logs")
	const size = 40 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := st.PutStream(ctx, "big.log", pattern(size, 6)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("uploading %d MiB allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > size/2 {
		t.Errorf("uploading %d MiB allocated %d MiB: the artifact was buffered", size>>20, alloc>>20)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// A folder store lists the time it recorded, not the file's mtime, which a
// copy or a restore changes; a file put there by hand has its mtime.
func TestDirListUsesRecordedTime(t *testing.T) {
	ctx := context.Background()
	d, _ := NewDir(t.TempDir())
	obj, err := d.PutStream(ctx, "logs/a.log", strings.NewReader("a"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(d.Root(), "logs", "a.log"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Root(), "logs", "by-hand.log"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(d.Root(), "logs", "by-hand.log"), old, old); err != nil {
		t.Fatal(err)
	}
	list, err := d.List(ctx, "logs/")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !list[0].Time.Equal(obj.Time) || !list[1].Time.Equal(old) {
		t.Fatalf("List = %+v, want a.log at %s (recorded) and by-hand.log at %s (mtime)", list, obj.Time, old)
	}
	if _, err := d.PutStream(ctx, ".meta/x", strings.NewReader("x")); err == nil {
		t.Error("a key inside the store's own .meta folder was accepted")
	}
}
