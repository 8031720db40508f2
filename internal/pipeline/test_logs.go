package pipeline

// The test stage's files: each run's folder kept in logs.store, the kept
// runs pruned to logs.keep, and the JUnit copied for a CI's own view.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hyperfork/hyperfork/internal/killpoint"
	"github.com/hyperfork/hyperfork/internal/store"
)

// keepTestLogs streams the run's folder (the log, JUnit, artifacts) into the
// artifact store under <branch>/<time>-<commit12>-<result>/ and returns the
// location of its test log.
func (r *Runner) keepTestLogs(ctx context.Context, f *flow, base, result string) string {
	prefix := "test/" + safeName(f.branch.Name) + "/" + r.opts.Now().UTC().Format("20060102T150405Z") + "-" + f.cand.Commit[:12] + "-" + result + "/"
	logLoc := ""
	_ = filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		loc, kerr := r.keepLog(ctx, prefix+filepath.ToSlash(rel), p)
		if kerr != nil {
			r.log.Warn("keep test log", "file", p, "err", kerr)
			return nil
		}
		if rel == filepath.Join("run", "test.log") {
			logLoc = loc
		}
		return nil
	})
	return logLoc
}

// pruneTestLogs keeps the logs.keep newest recorded test runs per branch
// (the runs the branch's record names, and this run, whose log is current),
// by the time the store recorded, never the current candidate's. A run no
// record names (killed, or stopped by a signal, before its verdict was
// recorded) is kept while it is newer than the logs.keep-th recorded one
// but does not count toward logs.keep: a crashed attempt never pushes a
// recorded log out. It returns the locations of the test logs kept (nil
// when the listing failed: then nothing was deleted).
func (r *Runner) pruneTestLogs(ctx context.Context, f *flow, current string) (map[string]bool, error) {
	prefix := "test/" + safeName(f.branch.Name) + "/"
	runOf := func(key string) string {
		run, _, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		return run
	}
	st, err := store.LoadBranch(ctx, r.state, f.branch.Name)
	if err != nil {
		return nil, err
	}
	recorded := map[string]bool{}
	// st.Test.Log too: a record written before RunLogs existed names only it.
	for _, loc := range append(slices.Collect(maps.Values(st.Test.RunLogs)), st.Test.Log, current) {
		if key := r.artifactKey(loc); key != "" {
			recorded[runOf(key)] = true
		}
	}
	objs, err := r.logs.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, o := range objs {
		kept[r.artifactLocation(o.Key)] = true
	}
	runs := map[string][]store.Object{}
	newest := map[string]int64{}
	for _, o := range objs {
		run := runOf(o.Key)
		runs[run] = append(runs[run], o)
		newest[run] = max(newest[run], o.Time.UnixNano())
	}
	var order []string
	for run := range runs {
		order = append(order, run)
	}
	sort.Slice(order, func(i, j int) bool { return newest[order[i]] > newest[order[j]] })
	keep, counted := max(r.cfg.Logs.Keep, 1), 0
	for _, run := range order {
		if recorded[run] {
			counted++
		}
		switch {
		case strings.Contains(run, "-"+f.cand.Commit[:12]+"-"):
			continue // the current candidate's logs are never pruned
		case recorded[run] && counted <= keep, !recorded[run] && counted < keep:
			continue
		}
		for _, o := range runs[run] {
			if err := r.logs.Delete(ctx, o.Key); err != nil {
				return kept, err
			}
			// Crash tests: part of an old run's logs is deleted.
			killpoint.Reach("test.pruned")
			delete(kept, r.artifactLocation(o.Key))
		}
	}
	return kept, nil
}

// exportJUnit copies the run's JUnit files into HYPERFORK_JUNIT/<branch>/,
// named after their pass (run-…, retry-1-…), replacing what an earlier run
// left there: a CI system's test view then shows this run only.
func (r *Runner) exportJUnit(branch string, p passes) error {
	if r.opts.JUnitDir == "" {
		return nil
	}
	dir := filepath.Join(r.opts.JUnitDir, safeName(branch))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, run := range p.runs {
		if run == nil {
			continue
		}
		pass := "run"
		if i > 0 {
			pass = fmt.Sprintf("retry-%d", i)
		}
		for _, src := range run.JUnit {
			if err := copyFile(src, filepath.Join(dir, pass+"-"+filepath.Base(src))); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyFile copies a regular file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
