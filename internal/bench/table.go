package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// printSync writes the result for people: what was generated, one row per
// scenario, and memory with where each number comes from.
func printSync(w io.Writer, r *SyncResult) {
	o := r.Options
	fmt.Fprintf(w, "hyperfork sync benchmark\n")
	fmt.Fprintf(w, "  history:   %d commits, %d files, branches %s; fork carries %d commits per branch; %d new upstream commits per branch for the merge\n",
		o.Commits, o.Files, strings.Join(o.Branches, ", "), o.Carries, o.NewCommits)
	fmt.Fprintf(w, "  machine:   %d CPUs; load average %s before the first measurement, %s after the last\n", runtime.NumCPU(), r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "  generated: upstream in %s, fork in %s\n", secs(r.Generate), secs(r.GenerateFork))
	fmt.Fprintf(w, "  upstream:  %s\n", countObjects(r.UpstreamSize))
	fmt.Fprintf(w, "  mirror:    %s (hyperfork's, after the run)\n", countObjects(r.MirrorSize))
	fmt.Fprintf(w, "  first sync into the empty mirror (hyperfork only, not measured against git): %s\n\n", secs(r.Prime))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tPLAIN GIT WAY\tROUNDS\tHYPERFORK MEDIAN\t(MIN–MAX)\tPLAIN GIT MEDIAN\t(MIN–MAX)\tRATIO OF MEDIANS\tTARGET\tRESULTS")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.2fx\t%s\t%s\n", row.Name, row.Way, len(row.Ours),
			secs(row.Ours.Median()), row.Ours.Spread(), secs(row.Plain.Median()), row.Plain.Spread(), row.Ratio(), row.targetCell(), verifiedCell(row.Verified))
	}
	tw.Flush()
	fmt.Fprintf(w, "  hyperfork: pipeline.Main(\"sync\") in this process, timed around the call, as `go tool mage sync` runs it, with a\n")
	fmt.Fprintf(w, "    sync-only branches.yaml (no build section, no images/ beside it).\n")
	fmt.Fprintf(w, "  plain git, no-op (the target): in a persistent bare mirror holding every commit, `git ls-remote --heads` of upstream and\n")
	fmt.Fprintf(w, "    fork at once, then `git merge-base --is-ancestor <upstream head> <fork head>` for every branch at once: the question\n")
	fmt.Fprintf(w, "    hyperfork asks, and nothing else.\n")
	fmt.Fprintf(w, "  plain git, merge (the target): the fastest way, no work tree: in that bare mirror, `git fetch upstream`, then for every\n")
	fmt.Fprintf(w, "    branch at once `git merge-tree --write-tree`, `git commit-tree`, `git push` (here faster than one push of all branches):\n")
	fmt.Fprintf(w, "    hyperfork's own plumbing without its checks, lease, state and report.\n")
	fmt.Fprintf(w, "  plain git, merge in a clone (context, not the target): in a persistent clone with a work tree, `git fetch upstream`, then\n")
	fmt.Fprintf(w, "    one branch after another `git checkout -B b fork/b && git merge --no-edit upstream/b && git push fork b`; its HYPERFORK\n")
	fmt.Fprintf(w, "    column is the same hyperfork runs as the row above.\n")
	fmt.Fprintf(w, "  the bare mirror has hyperfork's mirror settings (commit-graph written on fetch, no auto gc); each plain-git way works on its\n")
	fmt.Fprintf(w, "    own identical copy of the fork, made before anything was timed.\n")
	fmt.Fprintf(w, "  rounds: each side runs %d times per row (%s); hyperfork goes first in odd rounds, plain git in even rounds.\n", o.Rounds, EnvRounds)
	fmt.Fprintf(w, "    Each merge round first adds %d upstream commits to every branch, untimed. Ratio = median hyperfork / median plain git;\n", o.NewCommits)
	fmt.Fprintf(w, "    targets (hyperfork within %.1fx of the fastest plain-git way) are goals, never asserted.\n", SyncTarget)
	fmt.Fprintf(w, "  results verified in every round: every side reported or saw the fork containing upstream and no fork branch moved in a\n")
	fmt.Fprintf(w, "    no-op; after each merge round every branch head on all three forks is a merge commit of (that fork's previous head,\n")
	fmt.Fprintf(w, "    the new upstream head) with the same tree.\n\n")

	m := r.Memory
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMORY\tPEAK\tTARGET")
	fmt.Fprintf(tw, "this process, peak RSS (VmHWM), whole life\t%s\t< 200 MiB\n", mib(m.SelfPeak))
	fmt.Fprintf(tw, "  the same, before hyperfork first ran\t%s\t\n", mib(m.SelfPeakBefore))
	fmt.Fprintf(tw, "  getrusage(RUSAGE_SELF) maxrss (includes the parent's RSS at exec)\t%s\t\n", mib(m.SelfMaxRSS))
	fmt.Fprintf(tw, "  resident set sampled while the measured syncs ran (VmRSS)\t%s\t\n", mib(m.OursRSS))
	fmt.Fprintf(tw, "  Go heap objects sampled while the measured syncs ran\t%s\t\n", mib(m.OursHeap))
	fmt.Fprintf(tw, "  Go bytes allocated by all measured hyperfork calls together\t%s\t\n", mib(m.OursAlloc))
	fmt.Fprintf(tw, "  Go bytes allocated by the first sync (fills the mirror)\t%s\t\n", mib(m.PrimeAlloc))
	fmt.Fprintf(tw, "largest git process of the first sync (whole history into the mirror)\t%s\t\n", mib(m.PrimeGit))
	fmt.Fprintf(tw, "largest git process of hyperfork's measured syncs, VmHWM sampled\t%s\t\n", mib(m.OursGit))
	fmt.Fprintf(tw, "  the same, RUSAGE_CHILDREN when it rose during a call\t%s\t\n", mibOrDash(m.OursGitRusage))
	fmt.Fprintf(tw, "largest git process of plain git, VmHWM sampled\t%s\t\n", mib(m.PlainGit))
	fmt.Fprintf(tw, "  the same, wait4 ru_maxrss per command\t%s\t\n", mib(m.PlainGitRusage))
	fmt.Fprintf(tw, "getrusage(RUSAGE_CHILDREN) maxrss, any child of the run\t%s\t\n", mib(m.ChildrenMaxRSS))
	tw.Flush()
	fmt.Fprintf(w, "  \"this process\" runs hyperfork in-process: under `go tool mage bench` it is the magefile binary mage compiled and\n")
	fmt.Fprintf(w, "    started (the same process that runs `go tool mage sync`; mage itself is its parent and not counted); under go test, the test binary.\n")
	fmt.Fprintf(w, "  Linux carries ru_maxrss across execve, so RUSAGE_SELF is at least what go test or mage held when it started this\n")
	fmt.Fprintf(w, "    process; VmHWM starts afresh at exec and is this process's own peak.\n")
	fmt.Fprintf(w, "  git processes: VmHWM is each git process's own peak, read from /proc every %s (a shorter process can be missed).\n", sampleInterval)
	fmt.Fprintf(w, "    ru_maxrss is exact but, carried across execve, never below this process's RSS when it started git; RUSAGE_CHILDREN\n")
	fmt.Fprintf(w, "    only shows a rise above every earlier child, the generator's git fast-import included (\"-\": no rise).\n")
}

// secs formats a duration for the table: milliseconds below a second.
func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func mibOrDash(b uint64) string {
	if b == 0 {
		return "-"
	}
	return mib(b)
}

func mib(b uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// countObjects shortens `git count-objects -vH` to one line.
func countObjects(out string) string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if len(kv) == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%s objects in %s pack(s), %s; %s loose objects, %s", kv["in-pack"], kv["packs"], kv["size-pack"], kv["count"], kv["size"])
}

// targetCell is "target ≤ 1.3x: met" (or missed) on a headline row.
func (r SyncRow) targetCell() string {
	switch {
	case r.Target == 0:
		return "context only, no target"
	case r.Met():
		return fmt.Sprintf("target ≤ %.1fx: met", r.Target)
	}
	return fmt.Sprintf("target ≤ %.1fx: MISSED", r.Target)
}

func verifiedCell(ok bool) string {
	if ok {
		return "verified"
	}
	return "NOT VERIFIED"
}

// cells formats the plain-side time, the ratio and the verification of a
// row, with "-" where there is no plain-side equivalent.
func (t Timing) cells() (plain, ratio, checked string) {
	plain, ratio = "-", "-"
	if t.Plain > 0 {
		plain, ratio = secs(t.Plain), fmt.Sprintf("%.2fx", t.Ratio())
	}
	return plain, ratio, verifiedCell(t.Verified)
}
