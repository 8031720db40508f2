package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
)

// printK8s writes the k8s benchmark's result for people: the tree, one row
// per scenario with the ratio, and hyperfork's step breakdown per scenario.
func printK8s(w io.Writer, r *K8sResult) {
	o := r.Options
	fmt.Fprintf(w, "hyperfork build benchmark on the Kubernetes tree\n")
	made := "from the cache"
	if r.MakeTree > 0 {
		made = "made in " + secs(r.MakeTree)
	}
	fmt.Fprintf(w, "  tree:      Kubernetes %s from the module proxy, %d files with vendor/ (%s, %s); %d staging modules, not served and dropped: %s\n",
		o.Version, r.Files, made, o.CacheDir, len(r.Staging), strings.Join(r.Dropped, ", "))
	fmt.Fprintf(w, "  fork:      upstream's release commit, tagged %s, plus one carry; versions stamped %s\n", o.Version, strings.Join(r.Versions, ", "))
	fmt.Fprintf(w, "  targets:   %s\n", strings.Join(o.Targets, " "))
	fmt.Fprintf(w, "  platforms: %s, cross-compiled with CGO_ENABLED=0\n", strings.Join(o.Platforms, ", "))
	fmt.Fprintf(w, "  machine:   %d CPUs; load average %s before the first measurement, %s after the last\n", runtime.NumCPU(), r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "  setup, not measured: repositories and host work tree %s, Go builder image %s, fresh buildkitd %s\n\n",
		secs(r.Setup), secs(r.PushBuilder), secs(r.StartDaemon))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tROUNDS\tHYPERFORK\t(MIN–MAX)\tGO BUILD ON HOST\t(MIN–MAX)\tRATIO OF MEDIANS\tTARGET\tRESULTS")
	for _, t := range r.Timings {
		plain, ratio, checked := t.cells()
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, len(t.OursRuns), secs(t.Ours), t.OursRuns.Spread(),
			plain, t.PlainRuns.Spread(), ratio, t.Target, checked)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n  hyperfork's steps in the last round (from its log; compile's parts are BuildKit's steps, platforms in parallel):\n")
	for _, t := range r.Timings {
		summary := stepSummary(t.Steps)
		if summary == "" {
			summary = "nothing to build: the fork head was built with this config"
		}
		fmt.Fprintf(w, "  %s: %s\n", t.Name, summary)
	}
	fmt.Fprintf(w, "\n  same digest for the forced rebuild: %s; binaries byte-identical to the host's go build: %s\n", yesNo(r.SameDigest), yesNo(r.Identical))
	fmt.Fprintf(w, "  hyperfork: pipeline.Main(\"build\") in this process, as `go tool mage build` runs it: fetch of the fork into its mirror,\n")
	fmt.Fprintf(w, "    export of the tree, BuildKit solve (source sync, one `go build` per platform, binaries exported), image packing, push.\n")
	fmt.Fprintf(w, "  go build on host: the Go installation the builder image was made from, in a work tree of the fork, hyperfork's flags\n")
	fmt.Fprintf(w, "    (-trimpath -buildvcs=false -mod=vendor, the same -ldflags, -s -w), the tree's go.work, no network; one `go build` per\n")
	fmt.Fprintf(w, "    platform in parallel on one GOCACHE, into output folders that keep the previous binaries.\n")
	fmt.Fprintf(w, "  rounds: the no-op alternates which side goes first; each one-line round is a new commit (hyperfork, then the host,\n")
	fmt.Fprintf(w, "    which stamps the version hyperfork reported); %s sets how many.\n", EnvK8sRuns)
	fmt.Fprintf(w, "  Ratio = median hyperfork / median go build; targets are goals, never asserted.\n")
}
