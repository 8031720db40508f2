package pipeline

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hyperfork/hyperfork/internal/build"
	"github.com/hyperfork/hyperfork/internal/registry"
)

// extractCandidate takes the candidate's commands for the test platform
// out of its images in the registry, for a test stage that runs on another
// machine than the build did (CI jobs per stage, a rebuilt runner). The
// test binaries must be there (the conformance image carries them);
// commands no image holds are left out and named in the log.
func (r *Runner) extractCandidate(ctx context.Context, f *flow, platform string) (string, error) {
	dir := filepath.Join(r.work, "candidates", safeName(f.branch.Name), f.cand.Commit[:12], build.PlatformDir(platform))
	done := dir + ".complete" // beside, not in, HYPERFORK_BINDIR
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil { // a half-extracted one
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	repo, err := r.builder.repository()
	if err != nil {
		return "", err
	}
	want := slices.Concat(r.cfg.Build.Binaries(), r.cfg.Build.TestBinaries())
	found := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(f.cand.Images)) {
		ref := f.cand.Images[name]
		idx, err := repo.Get(ctx, ref)
		if err != nil {
			return "", fmt.Errorf("read candidate image %s: %w", ref, err)
		}
		var left []string
		for _, w := range want {
			if !found[w] {
				left = append(left, w)
			}
		}
		got, err := registry.ExtractCommands(idx, platform, dir, left)
		if err != nil {
			return "", fmt.Errorf("extract the commands of %s for %s: %w", ref, platform, err)
		}
		for _, g := range got {
			found[g] = true
		}
	}
	var missingTests, missing []string
	for _, t := range r.cfg.Build.TestBinaries() {
		if !found[t] {
			missingTests = append(missingTests, t)
		}
	}
	for _, b := range r.cfg.Build.Binaries() {
		if !found[b] {
			missing = append(missing, b)
		}
	}
	if len(missingTests) > 0 {
		return "", fmt.Errorf("candidate %s was built on another machine, and none of its images holds %s for %s: add them to an image's binaries (images/conformance.yaml carries the test binaries), or build and test on one machine",
			short(f.cand.Commit), strings.Join(missingTests, ", "), platform)
	}
	if len(missing) > 0 {
		r.log.Warn("commands in no image of the candidate are not in HYPERFORK_BINDIR", "branch", f.branch.Name, "commands", missing)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", err
	}
	r.log.Info("took the candidate's commands from its images", "branch", f.branch.Name, "platform", platform, "dir", dir, "commands", len(found))
	return dir, nil
}
