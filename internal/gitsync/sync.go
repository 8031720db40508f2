package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/report"
)

// Options configures a Syncer.
type Options struct {
	// MirrorDir is the persistent bare mirror, created on first use.
	MirrorDir string
	Upstream  Remote
	Fork      Remote
	Redactor  *exec.Redactor
	Logger    *slog.Logger
	Identity  Identity
	// Concurrency bounds how many branches merge at once; default 4.
	Concurrency int
}

// Branch is one fork branch and the upstream branch it follows.
type Branch struct {
	Name     string
	Upstream string
	FFOnly   bool
}

// Outcome is one branch's sync result.
type Outcome struct {
	Branch string
	Sync   report.Sync
	// Err is set when Sync.Status is error.
	Err error
	// Summary is the text for people when Sync.Status is conflict.
	Summary string
}

// Syncer merges upstream branches into fork branches.
type Syncer struct {
	opts Options
	git  *Git
}

// New returns a Syncer; the mirror is created if missing.
func New(ctx context.Context, opts Options) (*Syncer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	opts.Upstream.Name, opts.Fork.Name = "upstream", "fork"
	if err := EnsureBare(ctx, opts.MirrorDir); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return &Syncer{opts: opts, git: &Git{Dir: opts.MirrorDir, Redactor: opts.Redactor, Identity: opts.Identity}}, nil
}

// Git returns the mirror's git runner, for the stages that read it.
func (s *Syncer) Git() *Git { return s.git }

// heads is what ls-remote saw on both sides.
type heads struct {
	up, fork map[string]string
}

// lsRemote lists both remotes at once.
func (s *Syncer) lsRemote(ctx context.Context, branches []Branch) (heads, error) {
	var h heads
	var ups, forks []string
	for _, b := range branches {
		ups, forks = append(ups, b.Upstream), append(forks, b.Name)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { h.up, err = s.git.LsRemote(gctx, s.opts.Upstream, ups); return })
	g.Go(func() (err error) { h.fork, err = s.git.LsRemote(gctx, s.opts.Fork, forks); return })
	return h, g.Wait()
}

// Sync brings every branch up to date with its upstream. With dryRun it
// predicts the outcome and pushes nothing. Branches are independent: one
// branch's failure is its own outcome and never stops another.
func (s *Syncer) Sync(ctx context.Context, branches []Branch, dryRun bool) []Outcome {
	out := make([]Outcome, len(branches))
	for i, b := range branches {
		out[i].Branch = b.Name
	}
	fail := func(i int, err error) {
		out[i].Sync.Status, out[i].Err = report.SyncError, err
		out[i].Sync.Message = err.Error()
	}
	h, err := s.lsRemote(ctx, branches)
	if err != nil {
		for i := range branches {
			fail(i, err)
		}
		return out
	}

	// Decide what needs objects. The up-to-date check uses the mirror when it
	// already holds both commits, so a scheduled run with nothing new
	// fetches nothing.
	var fetchUp, fetchFork []string
	pending := map[int]bool{}
	for i, b := range branches {
		up, fork := h.up[b.Upstream], h.fork[b.Name]
		out[i].Sync.UpstreamCommit, out[i].Sync.ForkCommit = up, fork
		if up == "" {
			fail(i, fmt.Errorf("upstream branch %s does not exist at %s; fix branches[%s].upstream", b.Upstream, exec.RedactURL(s.opts.Upstream.URL), b.Name))
			continue
		}
		haveUp, haveFork := s.git.hasCommit(ctx, up), fork != "" && s.git.hasCommit(ctx, fork)
		if haveUp && haveFork {
			if ok, _ := s.git.isAncestor(ctx, up, fork); ok {
				out[i].Sync.Status = report.SyncUpToDate
				continue
			}
		}
		pending[i] = true
		if !haveUp {
			fetchUp = append(fetchUp, b.Upstream)
		}
		if fork != "" && !haveFork {
			fetchFork = append(fetchFork, b.Name)
		}
	}
	if len(pending) == 0 {
		return out
	}
	s.opts.Logger.Info("fetching", "upstream", fetchUp, "fork", fetchFork)
	if err := s.git.Fetch(ctx, s.opts.Upstream, dedupe(fetchUp), true); err != nil {
		for i := range pending {
			fail(i, err)
		}
		return out
	}
	if err := s.git.Fetch(ctx, s.opts.Fork, fetchFork, false); err != nil {
		for i := range pending {
			fail(i, err)
		}
		return out
	}

	// Each goroutine writes only its own element of out.
	var g errgroup.Group
	g.SetLimit(s.opts.Concurrency)
	for i := range pending {
		g.Go(func() error {
			out[i] = s.syncOne(ctx, branches[i], out[i].Sync, dryRun)
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// syncOne merges and pushes one branch whose objects are in the mirror.
func (s *Syncer) syncOne(ctx context.Context, b Branch, st report.Sync, dryRun bool) Outcome {
	o := Outcome{Branch: b.Name, Sync: st}
	up, fork := st.UpstreamCommit, st.ForkCommit
	log := s.opts.Logger.With("branch", b.Name)
	fail := func(err error) Outcome {
		o.Sync.Status, o.Err, o.Sync.Message = report.SyncError, err, err.Error()
		return o
	}
	if fork == "" {
		// A branch missing on the fork starts as upstream's.
		n, err := s.git.count(ctx, up)
		if err != nil {
			return fail(fmt.Errorf("count commits of upstream %s: %w", b.Upstream, err))
		}
		o.Sync.MergedCommits = n
		o.Sync.Message = fmt.Sprintf("fork branch %s created from upstream %s", b.Name, b.Upstream)
		if !dryRun {
			if err := s.git.Push(ctx, s.opts.Fork, b.Name, up, ""); err != nil {
				return fail(err)
			}
			s.track(ctx, b.Name, up)
		}
		o.Sync.Status, o.Sync.ForkCommit = report.SyncCreated, up
		log.Info("created fork branch", "commit", short(up))
		return o
	}
	if ok, err := s.git.isAncestor(ctx, up, fork); err != nil {
		return fail(fmt.Errorf("check %s against upstream %s: %w", b.Name, b.Upstream, err))
	} else if ok {
		o.Sync.Status = report.SyncUpToDate
		return o
	}
	res, err := s.git.Merge(ctx, b.Name, b.Upstream, fork, up, b.FFOnly)
	in := ResolutionInput{Branch: b.Name, UpstreamBranch: b.Upstream, ForkURL: s.opts.Fork.URL,
		UpstreamURL: s.opts.Upstream.URL, UpstreamCommit: up, ForkCommit: fork}
	switch {
	case errors.Is(err, ErrNotFastForward):
		carries, _ := s.git.count(ctx, "--no-merges", up+".."+fork)
		o.Sync.Status = report.SyncConflict
		o.Sync.MergedCommits = res.Merged
		o.Sync.Message = fmt.Sprintf("strategy ff-only: fork branch %s carries %d commit(s) that upstream %s does not have, so it cannot fast-forward; rebase or drop the carries, or set strategy: merge", b.Name, carries, b.Upstream)
		in.Merged = res.Merged
		o.Sync.Resolution = Resolution(in)
		o.Summary = o.Sync.Message + "\n\n" + o.Sync.Resolution
		return o
	case err != nil:
		return fail(err)
	}
	o.Sync.MergedCommits = res.Merged
	if len(res.Conflicts) > 0 {
		if err := s.git.Explain(ctx, fork, up, res.Conflicts); err != nil {
			return fail(err)
		}
		in.Merged, in.Conflicts = res.Merged, res.Conflicts
		o.Sync.Status = report.SyncConflict
		o.Sync.Conflicts = res.Conflicts
		o.Sync.Resolution = Resolution(in)
		o.Summary = Summary(in)
		log.Warn("merge conflict", "paths", len(res.Conflicts))
		return o
	}
	if !dryRun {
		if err := s.git.Push(ctx, s.opts.Fork, b.Name, res.Commit, fork); err != nil {
			return fail(err)
		}
		s.track(ctx, b.Name, res.Commit)
	}
	o.Sync.Status = report.SyncMerged
	o.Sync.PreviousFork = fork
	o.Sync.ForkCommit = res.Commit
	if res.FastForward {
		o.Sync.Message = fmt.Sprintf("fast-forwarded %d upstream commit(s)", res.Merged)
	} else {
		o.Sync.Message = fmt.Sprintf("merged %d upstream commit(s)", res.Merged)
	}
	log.Info(o.Sync.Message, "commit", short(res.Commit))
	return o
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// track points the mirror's copy of the fork branch at what was pushed, so
// the merge commit is reachable there (gc keeps it, the next run needs no
// fetch to see it). A failure only costs a fetch next time.
func (s *Syncer) track(ctx context.Context, branch, commit string) {
	if _, err := s.git.run(ctx, nil, "update-ref", mirrorRef(s.opts.Fork.Name, branch), commit); err != nil {
		s.opts.Logger.Warn("update the mirror's fork ref", "branch", branch, "err", err)
	}
}
