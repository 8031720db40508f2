package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
)

// printBuild writes the build benchmark's result for people: what was
// generated, one row per scenario with how each side was measured, the
// reproducibility checks, and memory with where each number comes from.
func printBuild(w io.Writer, r *BuildResult) {
	o := r.Options
	fmt.Fprintf(w, "hyperfork build benchmark\n")
	fmt.Fprintf(w, "  project:   %d packages x %d files x %d functions and types, commands %s; %d lines, %s of Go; standard library only\n",
		o.Packages, o.Files, o.Funcs, "cmd/"+strings.Join(projectCommands, ", cmd/"), r.Lines, mib(uint64(r.Bytes)))
	fmt.Fprintf(w, "  platforms: %s, cross-compiled with CGO_ENABLED=0\n", strings.Join(o.Platforms, ", "))
	fmt.Fprintf(w, "  machine:   %d CPUs; load average %s before the first measurement, %s after the last\n", runtime.NumCPU(), r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "  setup, not measured: project and repositories %s, Go builder image pushed to a loopback registry %s, fresh buildkitd started %s\n\n",
		secs(r.Generate), secs(r.PushBuilder), secs(r.StartDaemon))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tHYPERFORK\t(GO BUILD IN BUILDKIT)\tGO BUILD ON HOST\tRATIO\tTARGET\tRESULTS")
	for _, t := range r.Timings {
		plain, ratio, checked := t.cells()
		inside := "-"
		if t.GoBuild > 0 {
			inside = secs(t.GoBuild)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, secs(t.Ours), inside, plain, ratio, t.Target, checked)
	}
	tw.Flush()
	fmt.Fprintf(w, "  same digest: %s (one-line change %s, forced rebuild %s)\n", yesNo(r.SameDigest), digestOf(r.Image), digestOf(r.ForcedImage))
	fmt.Fprintf(w, "  binaries in hyperfork's images byte-identical to the host's go build: %s\n", yesNo(r.Identical))
	fmt.Fprintf(w, "  hyperfork: pipeline.Main(\"build\") in this process, timed around the call, as `go tool mage build` runs it: ls-remote of the\n")
	fmt.Fprintf(w, "    fork, fetch into its mirror, export of the tree, BuildKit solve (source upload, one `go build` per platform in runc,\n")
	fmt.Fprintf(w, "    GOCACHE in a shared cache mount; cold: also pulling and unpacking the builder image), image packing, push as a candidate.\n")
	fmt.Fprintf(w, "  (go build in BuildKit): the longest platform's `go build` step as BuildKit's progress timed it, part of HYPERFORK;\n")
	fmt.Fprintf(w, "    \"-\" when BuildKit found it cached or hyperfork had nothing to build.\n")
	fmt.Fprintf(w, "  go build on host: on this host with the Go installation the builder image was made from, in the work tree, hyperfork's flags\n")
	fmt.Fprintf(w, "    (-trimpath -buildvcs=false -ldflags with the same version, -s -w), CGO_ENABLED=0, no network. The platforms build in\n")
	fmt.Fprintf(w, "    PARALLEL, one `go build` per GOOS/GOARCH sharing one GOCACHE, exactly as BuildKit runs them; cold starts from an empty\n")
	fmt.Fprintf(w, "    GOCACHE (the standard library is compiled too, on both sides), later rows keep it warm as BuildKit keeps its cache mount.\n")
	fmt.Fprintf(w, "  no-op: the median of %d runs, alternating which side goes first; hyperfork compares the fork head with its state and stops.\n", o.Runs)
	fmt.Fprintf(w, "  one-line change: in package %s, committed and pushed to the fork; both sides then rebuild that package and relink.\n", projectShape{Packages: o.Packages}.leafPackage())
	fmt.Fprintf(w, "  Ratio = hyperfork / go build; targets are goals, never asserted.\n")
	fmt.Fprintf(w, "  results verified: each report says built or up-to-date as expected for the fork head, every image has %d platforms\n", len(o.Platforms))
	fmt.Fprintf(w, "    with every command as an ELF binary for its machine, and the same commit forced again gives the same image digest.\n\n")

	m := r.Memory
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMORY\tPEAK")
	fmt.Fprintf(tw, "this process, peak RSS (VmHWM), whole life\t%s\n", mib(m.SelfPeak))
	fmt.Fprintf(tw, "  the same, before hyperfork first ran\t%s\n", mib(m.SelfPeakBefore))
	fmt.Fprintf(tw, "  resident set sampled while hyperfork's builds ran (VmRSS)\t%s\n", mib(m.OursRSS))
	fmt.Fprintf(tw, "  Go heap objects sampled while hyperfork's builds ran\t%s\n", mib(m.OursHeap))
	fmt.Fprintf(tw, "buildkitd, its own peak RSS (VmHWM), a separate process\t%s\n", mibOrDash(m.BuildKitd))
	fmt.Fprintf(tw, "largest process under buildkitd (go, compile, link), VmHWM sampled\t%s\n", mibOrDash(m.BuildKitChildren))
	fmt.Fprintf(tw, "largest host process (go, compile, link), VmHWM sampled\t%s\n", mibOrDash(m.Host))
	tw.Flush()
	fmt.Fprintf(w, "  \"this process\" runs hyperfork in-process (see the sync benchmark); buildkitd is the daemon it started, which does the\n")
	fmt.Fprintf(w, "    compiling in its own processes: neither is counted in this process's peak. The loopback registry runs in this\n")
	fmt.Fprintf(w, "    process too, with blobs streamed to and from files. Other processes' VmHWM is read from /proc every %s on both sides.\n", buildSampleInterval)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
