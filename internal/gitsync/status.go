package gitsync

import (
	"context"
	"fmt"
	"strings"
)

// BranchStatus is what `status` shows for one branch.
type BranchStatus struct {
	Branch         string `json:"branch"`
	UpstreamBranch string `json:"upstreamBranch"`
	UpstreamCommit string `json:"upstreamCommit"`
	ForkCommit     string `json:"forkCommit"`
	// Behind is the number of upstream commits the fork does not have.
	Behind int `json:"behind"`
	// Carries is the number of fork-only commits (merges excluded).
	Carries int `json:"carries"`
	// Upstreamed lists carries whose change upstream already has (same
	// patch-id): candidates to drop from the fork.
	Upstreamed []string `json:"upstreamed"`
	Error      string   `json:"error,omitempty"`
}

// Status reports, per branch, how far the fork is from upstream. It fetches
// into the mirror but never changes the fork.
func (s *Syncer) Status(ctx context.Context, branches []Branch) []BranchStatus {
	out := make([]BranchStatus, len(branches))
	for i, b := range branches {
		out[i].Branch, out[i].UpstreamBranch = b.Name, b.Upstream
	}
	h, err := s.lsRemote(ctx, branches, false)
	if err != nil {
		for i := range out {
			out[i].Error = err.Error()
		}
		return out
	}
	var commits []string
	for i, b := range branches {
		out[i].UpstreamCommit, out[i].ForkCommit = h.up[b.Upstream], h.fork[b.Name]
		commits = append(commits, out[i].UpstreamCommit, out[i].ForkCommit)
	}
	have := s.git.haveCommits(ctx, commits)
	var ups, forks []string
	for i, b := range branches {
		if c := out[i].UpstreamCommit; c != "" && !have[c] {
			ups = append(ups, b.Upstream)
		}
		if c := out[i].ForkCommit; c != "" && !have[c] {
			forks = append(forks, b.Name)
		}
	}
	ferr := s.git.Fetch(ctx, s.opts.Upstream, dedupe(ups), false)
	if ferr == nil {
		ferr = s.git.Fetch(ctx, s.opts.Fork, forks, false)
	}
	for i := range out {
		st := &out[i]
		switch {
		case ferr != nil:
			st.Error = ferr.Error()
		case st.UpstreamCommit == "":
			st.Error = fmt.Sprintf("upstream branch %s does not exist", st.UpstreamBranch)
		case st.ForkCommit == "":
			st.Error = "fork branch does not exist yet; sync creates it"
		default:
			if err := s.fillStatus(ctx, st); err != nil {
				st.Error = err.Error()
			}
		}
	}
	return out
}

func (s *Syncer) fillStatus(ctx context.Context, st *BranchStatus) error {
	var err error
	if st.Behind, err = s.git.count(ctx, st.ForkCommit+".."+st.UpstreamCommit); err != nil {
		return fmt.Errorf("count commits behind for %s: %w", st.Branch, err)
	}
	// git cherry compares patch-ids: "-" marks a fork commit whose change
	// upstream already has under another hash.
	out, err := s.git.run(ctx, nil, "cherry", "-v", st.UpstreamCommit, st.ForkCommit)
	if err != nil {
		return fmt.Errorf("compare carries of %s with upstream: %w", st.Branch, err)
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "+ "):
			st.Carries++
		case strings.HasPrefix(line, "- "):
			st.Carries++
			st.Upstreamed = append(st.Upstreamed, strings.TrimPrefix(line, "- "))
		}
	}
	return nil
}
