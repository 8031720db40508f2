package bench

import (
	"os"
	"runtime/metrics"
	"strings"
	"sync"
	"time"
)

// buildSampleInterval is coarser than the sync benchmark's sampleInterval:
// builds run for seconds to minutes, every compiler process lives longer
// than this, and each pass scans /proc, whose allocations and CPU would
// otherwise weigh on the side being measured.
const buildSampleInterval = 50 * time.Millisecond

// sampleWhile runs f while sampling, every interval, peak() and, if self
// is set, this process's resident set and live Go heap. It returns the
// largest of each.
func sampleWhile(interval time.Duration, self bool, peak func() uint64, f func() error) (p peaks, tree uint64, err error) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(interval)
		defer t.Stop()
		pid := os.Getpid()
		for {
			if self {
				metrics.Read(sample)
				if sample[0].Value.Kind() == metrics.KindUint64 {
					p.heap = max(p.heap, sample[0].Value.Uint64())
				}
				p.rss = max(p.rss, procStatusKB(pid, "VmRSS:"))
			}
			tree = max(tree, peak())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	err = f()
	close(stop)
	wg.Wait()
	return p, tree, err
}

// treePeak is the largest peak resident set (VmHWM) of the processes pids
// and their descendants.
func treePeak(pids []int) uint64 {
	var m uint64
	for _, pid := range pids {
		m = max(m, procStatusKB(pid, "VmHWM:"), descendantsPeak(pid))
	}
	return m
}

// loadAverage returns the 1, 5 and 15 minute load averages: a benchmark on
// a busy machine says so.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
