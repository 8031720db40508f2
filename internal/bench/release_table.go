package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// printRelease writes the release benchmark's result for people: what was
// set up, one row per configuration, how each side was measured, and where
// the profiled run's time went.
func printRelease(w io.Writer, r *ReleaseResult) {
	o := r.Options
	n := len(o.Branches)
	fmt.Fprintf(w, "hyperfork release benchmark: the scheduled release that finds nothing new\n")
	fmt.Fprintf(w, "  branches:  %s (%d); each fork branch is its upstream branch plus one carry, already synced\n", strings.Join(o.Branches, ", "), n)
	fmt.Fprintf(w, "  project:   %d Go packages, commands cmd/%s, built for %s into a loopback registry (go-containerregistry, in this process)\n",
		releaseShape.Packages, strings.Join(projectCommands, ", cmd/"), r.Platform)
	fmt.Fprintf(w, "  remotes:   upstream and fork are local bare repositories, named by file:// URLs\n")
	fmt.Fprintf(w, "  machine:   %d CPUs; load average %s before the first measurement, %s after the last\n", runtime.NumCPU(), r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "  setup, not measured: project and repositories %s, Go builder image %s, versitygw and its bucket %s, buildkitd %s\n",
		secs(r.Generate), secs(r.PushBuilder), secs(r.StartS3), secs(r.StartDaemon))
	fmt.Fprintf(w, "  warm-up, not measured: one release per store builds every branch: state in a folder %s, state in S3 %s (BuildKit's cache warm)\n\n",
		secs(r.Warmup[storeFolder]), secs(r.Warmup[storeS3]))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NO-OP RELEASE\tHOW\tROUNDS\tHYPERFORK MEDIAN\t(MIN–MAX)\tPER BRANCH\tTARGET\tGIT LS-REMOTE MEDIAN\t(MIN–MAX)\tRATIO OF MEDIANS\tRESULTS")
	for _, row := range r.Rows {
		how := "pipeline.Main in-process (mage started)"
		if row.Mage {
			how = "go tool mage release (whole command)"
		}
		name, _, _ := strings.Cut(row.Name, ",")
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.2fx\t%s\n", name, how, len(row.Ours),
			secs(row.Ours.Median()), row.Ours.Spread(), secs(row.PerBranch()), row.targetCell(),
			secs(row.Plain.Median()), row.Plain.Spread(), row.Ratio(), verifiedCell(row.Verified))
	}
	tw.Flush()
	fmt.Fprintf(w, "  hyperfork in-process: pipeline.Main(\"release\") in this process, timed around the call: what `go tool mage release` runs once\n")
	fmt.Fprintf(w, "    mage has started (config load, state store, leases, sync, the build/test/publish decisions, report, lease release).\n")
	fmt.Fprintf(w, "  go tool mage release: the whole command in hyperfork's module %s, from starting go to its exit, with\n", o.ModuleDir)
	fmt.Fprintf(w, "    HYPERFORK_CONFIG at the store's config; its pieces are timed below.\n")
	fmt.Fprintf(w, "  git ls-remote: `git ls-remote --heads` of upstream and of the fork for the %d branches, both at once, the same file:// URLs:\n", n)
	fmt.Fprintf(w, "    the least any check for new commits must do; hyperfork's sync makes the same two calls (with upstream's tags too).\n")
	fmt.Fprintf(w, "  rounds: in every round each row runs both sides once, hyperfork first in odd rounds, git first in even ones.\n")
	fmt.Fprintf(w, "    Per branch = median / %d branches; the target (< %s per branch, issue 11) is a goal, never asserted.\n", n, secs(ReleaseTarget))
	fmt.Fprintf(w, "  results verified in every round: exit code 0, and for every branch sync up-to-date and build up-to-date at the heads set\n")
	fmt.Fprintf(w, "    up, test and publish handed on from the warm-up; every ls-remote lists those heads; no fork branch moved. buildkitd is stopped after the\n")
	fmt.Fprintf(w, "    warm-up while BUILDKIT_HOST still names it, so a no-op that contacted BuildKit would fail.\n")
	fmt.Fprintf(w, "  S3: versitygw (posix backend, loopback), the SDK pointed at it by AWS_* variables; state.workDir is a local folder.\n\n")

	printMagePieces(w, r)
	if p := r.Profile; p != nil {
		printReleaseProfile(w, p)
	}
}

// printMagePieces writes what the whole command is made of, each piece
// timed once per round.
func printMagePieces(w io.Writer, r *ReleaseResult) {
	fmt.Fprintf(w, "WHERE THE WHOLE `go tool mage release` SPENDS ITS TIME, piece by piece, once per round\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PIECE\tROUNDS\tMEDIAN\t(MIN–MAX)")
	piece := func(what string, s Samples) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", what, len(s), secs(s.Median()), s.Spread())
	}
	piece("go tool mage -l: go and mage start, parse the magefiles; no compile, no target", r.MageStartup)
	piece("go tool mage -compile <new path>: the compile every target run makes (internal/magerun, a new folder each run)", r.MageCompileFresh)
	piece("go tool mage -compile <same path again>: go finds the binary up to date and does not link", r.MageCompileStable)
	for _, row := range r.Rows {
		if !row.Mage {
			piece("the release itself, "+row.Name, row.Ours)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "  mage rebuilds the magefile binary before every target whenever GOCACHE exists (it trusts go build's cache to catch\n")
	fmt.Fprintf(w, "    changed dependencies); go build then links again unless the output file is already there and up to date.\n\n")
}

// printReleaseProfile writes the profiled run's timeline and its requests
// by kind.
func printReleaseProfile(w io.Writer, p *ReleaseProfile) {
	fmt.Fprintf(w, "WHERE A NO-OP RELEASE WITH STATE IN S3 SPENDS ITS TIME: one more in-process run, %s, its S3 requests through a recording proxy\n", ms(p.Total))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tTOOK\tREQUESTS\tWHAT")
	var idle time.Duration
	for _, ph := range p.Phases {
		what, reqs := ph.What, fmt.Sprint(ph.Requests)
		if what == "" {
			what, reqs = "no S3 request in flight", "-"
			idle += ph.End - ph.Start
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ms(ph.Start), ms(ph.End), ms(ph.End-ph.Start), reqs, what)
	}
	tw.Flush()
	fmt.Fprintf(w, "  no S3 request in flight for %s of %s: config load, opening the stores, the sync stage (ls-remote of both remotes,\n", ms(idle), ms(p.Total))
	fmt.Fprintf(w, "    ancestry checks in the mirror), the stage decisions, and the S3 client's own time between requests.\n")
	fmt.Fprintf(w, "  opening an S3 store alone (store.Open: the AWS SDK's configuration and credentials, no request): median %s (%s) over %d;\n",
		ms(p.OpenS3.Median()), msSpread(p.OpenS3), len(p.OpenS3))
	fmt.Fprintf(w, "    a run opens two, state and logs, before its first request.\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "S3 REQUESTS BY KIND\tCOUNT\tSUM OF DURATIONS\tEACH")
	var count int
	var busy time.Duration
	for _, k := range p.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", k.What, k.Requests, ms(k.Busy), ms(k.Busy/time.Duration(k.Requests)))
		count, busy = count+k.Requests, busy+k.Busy
	}
	fmt.Fprintf(tw, "all\t%d\t%s\t\n", count, ms(busy))
	tw.Flush()
	fmt.Fprintf(w, "  durations are the proxy's, from receiving a request to the end of its response (the proxy adds its own hop to each);\n")
	fmt.Fprintf(w, "    requests of branches that ran at once overlap, so their sum can exceed the time they covered.\n")
}

// ms formats a duration in milliseconds with one decimal, for timelines
// whose steps are a few milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func msSpread(s Samples) string { return ms(s.Min()) + "–" + ms(s.Max()) }

// targetCell is "< 1s per branch: met", or MISSED.
func (r ReleaseRow) targetCell() string {
	if r.Met() {
		return fmt.Sprintf("< %s per branch: met", secs(ReleaseTarget))
	}
	return fmt.Sprintf("< %s per branch: MISSED", secs(ReleaseTarget))
}
