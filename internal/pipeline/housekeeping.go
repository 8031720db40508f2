package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// workTargets are the targets whose reports say what was done; status,
// plan, report and prune only look.
var workTargets = map[string]bool{"sync": true, "build": true, "test": true, "publish": true, "release": true}

// lastReport returns the newest report of work in the state folder, by its
// finish time.
func (r *Runner) lastReport() (*report.Report, string, error) {
	files, _ := filepath.Glob(filepath.Join(r.store.Root(), "reports", "*.json"))
	var best *report.Report
	var bestPath string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rep report.Report
		if json.Unmarshal(b, &rep) != nil || !workTargets[rep.Target] {
			continue
		}
		if best == nil || rep.Finished > best.Finished {
			best, bestPath = &rep, f
		}
	}
	if best == nil {
		return nil, "", fmt.Errorf("no run report in %s yet: run go tool mage sync, build or release first", filepath.Join(r.store.Root(), "reports"))
	}
	return best, bestPath, nil
}

// runReport prints the last run's report, one line per branch and stage,
// and where its JSON is.
func (r *Runner) runReport() (*report.Report, error) {
	last, path, err := r.lastReport()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.out, "last run: %s, finished %s, exit code %d (%s)\n", last.Target, last.Finished, last.ExitCode, path)
	for _, b := range last.Branches {
		var parts []string
		if b.Sync != nil {
			parts = append(parts, "sync "+b.Sync.Status)
		}
		if b.Build != nil {
			s := "build " + b.Build.Status
			if b.Build.Image != "" {
				s += " " + b.Build.Image
			}
			parts = append(parts, s)
		}
		if b.Error != "" {
			parts = append(parts, "error: "+b.Error)
		}
		fmt.Fprintf(r.out, "  %s: %s\n", b.Name, strings.Join(parts, "; "))
	}
	return last, nil
}

// runPrune keeps the state folder from growing without bound: it repacks
// the mirror (runs keep gc.auto off so no repack starts in the middle of a
// merge), deletes the work folders of branches no longer configured, and
// keeps the logs.keep newest build logs per branch.
func (r *Runner) runPrune(ctx context.Context, rep *report.Report) {
	s, err := r.syncer(ctx)
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	// A killed fetch leaves temporary packs and locks; young ones may be a
	// running fetch's, so only those older than an hour go.
	removed, err := s.Git().RemoveStale(ctx, time.Hour)
	if err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	for _, p := range removed {
		fmt.Fprintf(r.out, "removed stale %s\n", p)
	}
	if err := s.Git().Maintain(ctx); err != nil {
		rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
		return
	}
	fmt.Fprintln(r.out, "mirror repacked")
	configured := map[string]bool{}
	for _, b := range r.cfg.Branches {
		configured[safeName(b.Name)] = true
	}
	for _, sub := range []string{"src", "out", filepath.Join("logs", "build")} {
		entries, _ := os.ReadDir(filepath.Join(r.store.Root(), sub))
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				name = strings.TrimSuffix(strings.TrimPrefix(name, "."), ".commit")
			}
			p := filepath.Join(r.store.Root(), sub, e.Name())
			if !configured[name] {
				if err := os.RemoveAll(p); err != nil {
					rep.Error, rep.ExitCode = err.Error(), report.ExitFailed
					return
				}
				fmt.Fprintf(r.out, "removed %s (branch no longer configured)\n", p)
				continue
			}
			if sub == filepath.Join("logs", "build") && e.IsDir() {
				r.pruneLogs(p)
			}
		}
	}
}

// pruneLogs keeps the logs.keep newest files of a folder.
func (r *Runner) pruneLogs(dir string) {
	entries, _ := os.ReadDir(dir)
	type aged struct {
		path string
		mod  int64
	}
	var logs []aged
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			logs = append(logs, aged{filepath.Join(dir, e.Name()), fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].mod > logs[j].mod })
	keep := max(r.cfg.Logs.Keep, 1)
	for _, l := range slices.Clip(logs)[min(keep, len(logs)):] {
		if err := os.Remove(l.path); err == nil {
			fmt.Fprintf(r.out, "removed old build log %s\n", l.path)
		}
	}
}
