package store

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// BenchmarkStateRoundTrip times one state record's write and read (PutIf of
// the version just read, then GetVersioned) on a folder and on S3 over
// loopback, alternating in the same run, and reports the medians and their
// ratio.
//
//	go test -run '^$' -bench StateRoundTrip ./internal/store/
func BenchmarkStateRoundTrip(b *testing.B) {
	ctx := context.Background()
	dir, err := NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	srv := s3test.Start(b)
	srv.MakeBucket("state")
	srv.Setenv(b)
	s3s, err := openS3(ctx, "state", "bench", S3Options{})
	if err != nil {
		b.Fatal(err)
	}
	doc := []byte(fmt.Sprintf(`{"sync":{"status":"merged","forkCommit":"%040d"},"build":{"commit":"%040d","status":"built"}}`, 1, 1))
	stores := []VersionedStore{dir, s3s}
	versions := make([]string, 2)
	for i, s := range stores {
		if versions[i], err = s.PutIf(ctx, "branches/master/state.json", doc, ""); err != nil {
			b.Fatal(err)
		}
	}
	times := [2][]time.Duration{}
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		for k := range 2 {
			i := (n + k) % 2 // alternate which store goes first
			start := time.Now()
			v, err := stores[i].PutIf(ctx, "branches/master/state.json", doc, versions[i])
			if err != nil {
				b.Fatal(err)
			}
			if _, versions[i], err = stores[i].GetVersioned(ctx, "branches/master/state.json"); err != nil || versions[i] != v {
				b.Fatal(err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	folder, s3 := median(times[0]), median(times[1])
	b.ReportMetric(float64(folder.Microseconds()), "folder-µs/roundtrip")
	b.ReportMetric(float64(s3.Microseconds()), "s3-µs/roundtrip")
	b.ReportMetric(float64(s3)/float64(folder), "s3/folder")
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
