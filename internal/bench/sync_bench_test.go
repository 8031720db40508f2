package bench

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// BenchmarkSync runs the sync benchmark at the size (or as the
// HYPERFORK_BENCH_* variables say) and prints its table:
//
//	go test -run '^$' -bench Sync -benchtime 1x ./internal/bench/
//
// It reports the headline rows' ratios of medians as metrics; go's own
// ns/op is the whole run, generation included, and means little.
func BenchmarkSync(b *testing.B) {
	gitfixture.Isolate(b)
	opts, err := SyncOptionsFromEnv(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	for b.Loop() {
		res, err := Sync(b.Context(), os.Stdout, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Verified {
			b.Fatal("results not verified")
		}
		for _, r := range res.Rows {
			if r.Target > 0 && (r.Name == res.Rows[0].Name || strings.HasPrefix(r.Name, "merge")) {
				b.ReportMetric(r.Ratio(), "ratio-"+metricName(r.Name))
			}
		}
		b.ReportMetric(float64(res.Memory.SelfPeak)/(1<<20), "peak-MiB")
	}
}

func metricName(s string) string {
	out := []rune{}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out = append(out, r)
		case len(out) > 0 && out[len(out)-1] != '-':
			out = append(out, '-')
		}
	}
	return strings.Trim(string(out), "-")
}

// logLevel is debug when HYPERFORK_BENCH_DEBUG=1: every plain git command
// with its duration.
func logLevel() slog.Level {
	if os.Getenv("HYPERFORK_BENCH_DEBUG") == "1" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
