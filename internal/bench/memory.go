package bench

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Memory is the peak memory of the benchmark's process and of the git
// processes it started. Sizes are in bytes.
type Memory struct {
	// SelfPeak is this process's peak resident set (VmHWM in
	// /proc/self/status) at the end. Under `go tool mage bench` this
	// process is the magefile binary mage compiled and started, the same
	// process that runs pipeline.Main for `go tool mage sync`; under
	// `go test` it is the test binary.
	SelfPeak uint64
	// SelfPeakBefore is the same just before hyperfork first ran, so a
	// rise shows what hyperfork itself added.
	SelfPeakBefore uint64
	// SelfMaxRSS is getrusage(RUSAGE_SELF).ru_maxrss at the end. Linux
	// keeps it across execve, so it is at least the RSS the parent (go
	// test, or mage) had when it started this process: an upper bound.
	SelfMaxRSS uint64
	// PrimeGit and PrimeAlloc are OursGit and OursAlloc of the first
	// sync, which fetches the whole history into an empty mirror once; the
	// Ours fields leave it out and cover the measured scenarios only.
	PrimeGit, PrimeAlloc uint64
	// OursRSS is the peak resident set of this process sampled while
	// hyperfork's sync ran.
	OursRSS uint64
	// OursHeap is the peak of live Go heap objects sampled while
	// hyperfork's sync ran; OursAlloc is what it allocated in total.
	OursHeap, OursAlloc uint64
	// OursGit is the largest peak resident set (VmHWM, sampled every
	// sampleInterval from /proc) of one git process started by
	// hyperfork's sync. VmHWM starts afresh at execve, so it is the git
	// process's own; sampling can miss a process that lives shorter than
	// the interval.
	OursGit uint64
	// OursGitRusage is RUSAGE_CHILDREN's ru_maxrss when it rose during a
	// hyperfork call, else 0: exact for processes of any length, but
	// never below this process's RSS when it started them (see
	// SelfMaxRSS) and hidden under any larger earlier child.
	OursGitRusage uint64
	// PlainGit and PlainGitRusage are the same for the plain-git
	// commands; the rusage one is wait4's ru_maxrss of each command.
	PlainGit, PlainGitRusage uint64
	// ChildrenMaxRSS is getrusage(RUSAGE_CHILDREN).ru_maxrss at the end:
	// the largest git process of the whole run, the generator's
	// fast-import included.
	ChildrenMaxRSS uint64
}

// selfPeak is this process image's peak RSS; unlike ru_maxrss it starts
// afresh at execve.
func selfPeak() uint64 { return procStatusKB(os.Getpid(), "VmHWM:") }

// rusageMax returns ru_maxrss for who in bytes (Linux reports KiB).
func rusageMax(who int) uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024
}

// peaks is what a sampler saw while one measured call ran.
type peaks struct {
	rss, heap, alloc, git, gitRusage uint64
}

func (p *peaks) merge(q peaks) {
	p.rss, p.heap, p.alloc = max(p.rss, q.rss), max(p.heap, q.heap), p.alloc+q.alloc
	p.git, p.gitRusage = max(p.git, q.git), max(p.gitRusage, q.gitRusage)
}

// sampleInterval bounds the sampler's cost: one pass reads /proc/*/stat,
// about a hundred small reads on a quiet machine. It runs beside both
// sides' timed calls, so its cost is the same for both.
const sampleInterval = 10 * time.Millisecond

// measure runs f while sampling this process's RSS and Go heap and the
// peak RSS of its descendant processes.
//
// A child's peak is found two ways, because neither alone is complete (see
// Memory.OursGit and Memory.OursGitRusage).
func measure(f func() error) (peaks, error) {
	childrenBefore := rusageMax(syscall.RUSAGE_CHILDREN)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBefore := ms.TotalAlloc

	self := os.Getpid()
	p, git, err := sampleWhile(sampleInterval, true, func() uint64 { return descendantsPeak(self) }, f)
	p.git = git

	runtime.ReadMemStats(&ms)
	p.alloc = ms.TotalAlloc - allocBefore
	if after := rusageMax(syscall.RUSAGE_CHILDREN); after > childrenBefore {
		p.gitRusage = after
	}
	return p, err
}

// descendantsPeak returns the largest VmHWM among the live descendants of
// pid, found by reading every /proc/N/stat for its parent. A child that
// has not yet called execve still shares this process's memory (Go starts
// commands with CLONE_VM) and reports its peak, so descendants with this
// process's own command name are left out.
func descendantsPeak(pid int) uint64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := bytes.Fields(b[j+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(string(f[1])); err == nil {
			parent[n], comm[n] = pp, string(b[i+1:j])
		}
	}
	var peak uint64
	for n := range parent {
		if comm[n] == comm[pid] {
			continue
		}
		for a, hops := parent[n], 0; a > 1 && hops < 16; a, hops = parent[a], hops+1 {
			if a == pid {
				peak = max(peak, procStatusKB(n, "VmHWM:"))
				break
			}
		}
	}
	return peak
}

// procStatusKB reads one "Key:  123 kB" line of /proc/pid/status, in bytes.
func procStatusKB(pid int, key string) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0 // a zombie has no memory lines
	}
	line := b[i+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line)
	if len(f) == 0 {
		return 0
	}
	kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
	return kb * 1024
}
