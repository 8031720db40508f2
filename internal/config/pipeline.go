package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ErrUnknownBranch is returned by SelectBranches for a name that
// branches.yaml does not list; it is a usage error (exit code 2).
var ErrUnknownBranch = errors.New("unknown branch")

// resolve makes a path from the file absolute against the pipeline's folder.
func (p *Pipeline) resolve(rel string) string {
	if rel == "" || filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(p.Dir, rel)
}

// resolvePaths rewrites every relative folder or file in the pipeline to an
// absolute path, so that no other package depends on the working directory.
func (p *Pipeline) resolvePaths() {
	for i, img := range p.Build.Images {
		p.Build.Images[i] = p.resolve(img)
	}
	if _, _, s3 := S3Location(p.State.Store); !s3 {
		p.State.Store = p.resolve(p.State.Store)
	}
	if _, _, s3 := S3Location(p.Logs.Store); !s3 {
		p.Logs.Store = p.resolve(p.Logs.Store)
	}
	p.State.WorkDir = p.resolve(p.State.WorkDir)
	if t := p.Build.BuildKitTLS; t != nil {
		t.CA, t.Cert, t.Key = p.resolve(t.CA), p.resolve(t.Cert), p.resolve(t.Key)
	}
	for i := range p.Notify {
		if p.Notify[i].Type == NotifyFile {
			p.Notify[i].Dir = p.resolve(p.Notify[i].Dir)
		}
	}
}

// StateDir is the absolute folder of the state store, or "" when the state
// store is in S3 (see S3Location).
func (p *Pipeline) StateDir() string {
	if _, _, s3 := S3Location(p.State.Store); s3 {
		return ""
	}
	return p.resolve(p.State.Store)
}

// WorkDir is the absolute local work folder: the mirror, exported sources,
// build outputs and buildkitd's state. It is always local, and disposable.
func (p *Pipeline) WorkDir() string { return p.State.WorkDir }

// LogsDir is the absolute folder where test logs are kept, or "" when they
// are kept in S3 (see S3Location).
func (p *Pipeline) LogsDir() string {
	if _, _, s3 := S3Location(p.Logs.Store); s3 {
		return ""
	}
	return p.resolve(p.Logs.Store)
}

// ImagePath is the absolute path of the i-th file of build.images.
func (p *Pipeline) ImagePath(i int) string {
	return p.resolve(p.Build.Images[i])
}

// SelectBranches returns the configured branches named in names (the
// comma-separated HYPERFORK_BRANCHES, already split), in the order of
// branches.yaml. No names, or only empty ones, selects every branch. A name
// that is not configured is an error wrapping ErrUnknownBranch that lists the
// configured names.
func (p *Pipeline) SelectBranches(names []string) ([]Branch, error) {
	want := map[string]bool{}
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	if len(want) == 0 {
		return slices.Clone(p.Branches), nil
	}
	var out []Branch
	configured := make([]string, len(p.Branches))
	for i, b := range p.Branches {
		configured[i] = b.Name
		if want[b.Name] {
			out = append(out, b)
			delete(want, b.Name)
		}
	}
	if len(want) > 0 {
		unknown := make([]string, 0, len(want))
		for n := range want {
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
		named := make([]string, len(unknown))
		for i, n := range unknown {
			named[i] = n + nearestBranch(n, configured)
		}
		return nil, fmt.Errorf("HYPERFORK_BRANCHES names %s, which %s lists: use some of %s, or add the branch to branches: in %s: %w",
			strings.Join(named, ", "), notIn(len(unknown)), strings.Join(configured, ", "), p.File, ErrUnknownBranch)
	}
	return out, nil
}

// nearestBranch names the configured branch closest to name, for a
// message: "did you mean" when it is a likely typo, else just the nearest
// (main and master are far apart as strings, and still the usual mix-up).
func nearestBranch(name string, configured []string) string {
	if s := suggest(name, configured); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", s)
	}
	best, bestDist := "", 0
	for _, c := range configured {
		if d := levenshtein(strings.ToLower(name), strings.ToLower(c)); best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (the nearest configured is %s)", best)
}

func notIn(n int) string {
	if n == 1 {
		return "no entry of branches.yaml"
	}
	return "no entries of branches.yaml"
}

// Secrets returns the values of every environment variable named by an *Env
// field of the pipeline (tokens, passwords, webhook URLs), as getenv reports
// them, without empty values or repeats. They are what redaction must hide.
func (p *Pipeline) Secrets(getenv func(string) string) []string {
	var out []string
	for _, f := range p.envFields() {
		if f.value == "" {
			continue
		}
		if v := getenv(f.value); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
