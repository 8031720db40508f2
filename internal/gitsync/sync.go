package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/hyperfork/hyperfork/internal/exec"
	"github.com/hyperfork/hyperfork/internal/killpoint"
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
	if err := ensureMirror(ctx, opts.MirrorDir); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return &Syncer{opts: opts, git: &Git{Dir: opts.MirrorDir, Redactor: opts.Redactor, Identity: opts.Identity}}, nil
}

// Git returns the mirror's git runner, for the stages that read it.
func (s *Syncer) Git() *Git { return s.git }

// heads is what ls-remote saw on both sides.
type heads struct {
	up, fork map[string]string
	// upTags is upstream's tags (ref -> object), when asked for;
	// mirrorTags the mirror's, or mirrorTagsErr why they could not be read.
	upTags, mirrorTags map[string]string
	mirrorTagsErr      error
}

// lsRemote lists both remotes at once; with tags, upstream's tags too, and
// the mirror's meanwhile, to compare them with: the mirror answers long
// before the remotes do, so the comparison costs no time of its own.
func (s *Syncer) lsRemote(ctx context.Context, branches []Branch, tags bool) (heads, error) {
	var h heads
	var ups, forks []string
	for _, b := range branches {
		ups, forks = append(ups, b.Upstream), append(forks, b.Name)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		h.up, h.upTags, err = s.git.lsRemote(gctx, s.opts.Upstream, dedupe(ups), tags)
		return
	})
	g.Go(func() (err error) { h.fork, err = s.git.LsRemote(gctx, s.opts.Fork, forks); return })
	if tags {
		g.Go(func() error { h.mirrorTags, h.mirrorTagsErr = s.git.tags(gctx); return nil })
	}
	return h, g.Wait()
}

// Sync brings every branch up to date with its upstream. With dryRun it
// predicts the outcome and pushes nothing. Branches are independent: one
// branch's failure is its own outcome and never stops another.
//
// A run with nothing new costs what plain git needs to ask the same: the
// two ls-remotes and one ancestry check per branch, all at once, and reads
// the mirror's tags beside the ls-remotes.
func (s *Syncer) Sync(ctx context.Context, branches []Branch, dryRun bool) []Outcome {
	out := make([]Outcome, len(branches))
	for i, b := range branches {
		out[i].Branch = b.Name
	}
	fail := func(i int, err error) {
		out[i].Sync.Status, out[i].Err = report.SyncError, err
		out[i].Sync.Message = err.Error()
	}
	h, err := s.lsRemote(ctx, branches, true)
	if err != nil {
		for i := range branches {
			fail(i, err)
		}
		return out
	}

	// The up-to-date check runs in the mirror without asking first whether
	// it holds both commits: when it lacks one, git says so by failing the
	// check, and only then does one cat-file --batch-check tell which
	// commits to fetch. A scheduled run with nothing new fetches nothing.
	// answered[i]: git answered the check, so the mirror holds both commits.
	answered := make([]bool, len(branches))
	var g errgroup.Group
	g.SetLimit(s.opts.Concurrency)
	for i, b := range branches {
		up, fork := h.up[b.Upstream], h.fork[b.Name]
		out[i].Sync.UpstreamCommit, out[i].Sync.ForkCommit = up, fork
		switch {
		case up == "":
			fail(i, fmt.Errorf("upstream branch %s does not exist at %s; fix branches[%s].upstream", b.Upstream, exec.RedactURL(s.opts.Upstream.URL), b.Name))
		case fork != "":
			// Each goroutine writes only its own elements of out and answered.
			g.Go(func() error {
				ok, err := s.git.isAncestor(ctx, up, fork)
				if ok {
					out[i].Sync.Status = report.SyncUpToDate
				}
				answered[i] = err == nil
				return nil
			})
		}
	}
	_ = g.Wait()
	var pending []int
	var unsure []string
	for i := range branches {
		if out[i].Sync.Status != "" {
			continue
		}
		pending = append(pending, i)
		if !answered[i] {
			unsure = append(unsure, out[i].Sync.UpstreamCommit, out[i].Sync.ForkCommit)
		}
	}
	have := s.git.haveCommits(ctx, unsure)
	var fetchUp, fetchFork []string
	for _, i := range pending {
		if answered[i] {
			continue
		}
		b, st := branches[i], out[i].Sync
		if !have[st.UpstreamCommit] {
			fetchUp = append(fetchUp, b.Upstream)
		}
		if st.ForkCommit != "" && !have[st.ForkCommit] {
			fetchFork = append(fetchFork, b.Name)
		}
	}
	// Tags are compared on every run, not only when a branch moved: a tag
	// upstream added or moved on a commit the mirror has would otherwise
	// wait for the next upstream commit, and builds meanwhile would be
	// described from the old one.
	tags := tagsBehind(h.upTags, h.mirrorTags, h.mirrorTagsErr)
	if len(pending) == 0 && !tags {
		return out
	}
	s.opts.Logger.Info("fetching", "upstream", fetchUp, "fork", fetchFork, "tags", tags)
	if err := s.git.Fetch(ctx, s.opts.Upstream, dedupe(fetchUp), tags); err != nil {
		if len(fetchUp) > 0 {
			for _, i := range pending {
				fail(i, err)
			}
			return out
		}
		// Only tags: the branches can still sync; the build stage's version
		// may be described from an old tag, which the log says.
		s.opts.Logger.Warn("could not fetch upstream tags; builds are described from the mirror's old ones", "err", err)
	}
	if err := s.git.Fetch(ctx, s.opts.Fork, fetchFork, false); err != nil {
		for _, i := range pending {
			fail(i, err)
		}
		return out
	}

	g = errgroup.Group{}
	g.SetLimit(s.opts.Concurrency)
	for _, i := range pending {
		g.Go(func() error {
			out[i] = s.syncOne(ctx, branches[i], out[i].Sync, dryRun)
			return nil
		})
	}
	_ = g.Wait()
	if !dryRun {
		s.track(ctx, out)
	}
	return out
}

// leaseRetries is how many times a branch is merged again when the fork
// branch moved between reading it and pushing.
const leaseRetries = 3

// syncOne merges and pushes one branch whose objects are in the mirror.
// When the push is refused because someone else pushed to the fork branch
// meanwhile, it reads the branch again and merges on its new head (which may
// now conflict, or already contain upstream), leaseRetries times at most.
func (s *Syncer) syncOne(ctx context.Context, b Branch, st report.Sync, dryRun bool) Outcome {
	log := s.opts.Logger.With("branch", b.Name)
	for moved := 0; ; moved++ {
		o, err := s.attempt(ctx, b, st, dryRun, log)
		if err == nil {
			return o
		}
		if errors.Is(err, ErrLeaseRefused) && moved < leaseRetries {
			log.Info("fork branch moved while merging; merging again on its new head", "retry", moved+1)
			fork, rerr := s.reread(ctx, b.Name)
			if rerr == nil {
				st.ForkCommit = fork
				continue
			}
			err = fmt.Errorf("%w; then reading it again failed: %w", err, rerr)
		} else if errors.Is(err, ErrLeaseRefused) {
			err = fmt.Errorf("fork branch %s moved %d times during the run, each time between reading it and pushing: %w", b.Name, moved+1, err)
		}
		o.Sync.Status, o.Err, o.Sync.Message = report.SyncError, err, err.Error()
		return o
	}
}

// reread returns the fork branch's head now, fetching it into the mirror
// when the mirror lacks it; "" when the branch is gone.
func (s *Syncer) reread(ctx context.Context, branch string) (string, error) {
	heads, err := s.git.LsRemote(ctx, s.opts.Fork, []string{branch})
	if err != nil {
		return "", err
	}
	fork := heads[branch]
	if fork == "" || s.git.hasCommit(ctx, fork) {
		return fork, nil
	}
	if err := s.git.Fetch(ctx, s.opts.Fork, []string{branch}, false); err != nil {
		return "", err
	}
	if !s.git.hasCommit(ctx, fork) {
		// It moved again, past what ls-remote saw: the fetch has the newer head.
		out, err := s.git.run(ctx, nil, "rev-parse", "--verify", mirrorRef(s.opts.Fork.Name, branch)+"^{commit}")
		if err != nil {
			return "", fmt.Errorf("read fork branch %s in the mirror: %w", branch, err)
		}
		fork = strings.TrimSpace(out)
	}
	return fork, nil
}

// attempt merges upstream into the fork head st.ForkCommit and pushes the
// result. A non-nil error is the outcome's error (ErrLeaseRefused among
// them); the Outcome is then partly filled.
func (s *Syncer) attempt(ctx context.Context, b Branch, st report.Sync, dryRun bool, log *slog.Logger) (Outcome, error) {
	o := Outcome{Branch: b.Name, Sync: st}
	up, fork := st.UpstreamCommit, st.ForkCommit
	if fork == "" {
		// A branch missing on the fork starts as upstream's.
		n, err := s.git.count(ctx, up)
		if err != nil {
			return o, fmt.Errorf("count commits of upstream %s: %w", b.Upstream, err)
		}
		o.Sync.MergedCommits = n
		if dryRun {
			o.Sync.Message = fmt.Sprintf("would create fork branch %s from upstream %s (%d commit(s))", b.Name, b.Upstream, n)
		} else {
			if err := s.git.Push(ctx, s.opts.Fork, b.Name, up, ""); err != nil {
				return o, err
			}
			o.Sync.Message = fmt.Sprintf("fork branch %s created from upstream %s", b.Name, b.Upstream)
		}
		o.Sync.Status, o.Sync.ForkCommit = report.SyncCreated, up
		log.Info(o.Sync.Message, "commit", short(up))
		return o, nil
	}
	res, err := s.git.Merge(ctx, b.Name, b.Upstream, fork, up, b.FFOnly)
	if err == nil && res.Merged == 0 {
		// The fork already holds upstream: on a fetched head, or on the
		// head someone else pushed while this run merged.
		o.Sync.Status = report.SyncUpToDate
		return o, nil
	}
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
		return o, nil
	case err != nil:
		return o, err
	}
	o.Sync.MergedCommits = res.Merged
	if len(res.Conflicts) > 0 {
		if err := s.git.Explain(ctx, fork, up, res.Conflicts); err != nil {
			return o, err
		}
		in.Merged, in.Conflicts, in.Sides = res.Merged, res.Conflicts, res.Sides
		o.Sync.Status = report.SyncConflict
		o.Sync.Conflicts = res.Conflicts
		o.Sync.Resolution = Resolution(in)
		o.Summary = Summary(in)
		log.Warn("merge conflict", "paths", len(res.Conflicts))
		return o, nil
	}
	if !dryRun {
		// Crash tests: the merge commit exists in the mirror only.
		killpoint.Reach("sync.merged")
		if err := s.git.Push(ctx, s.opts.Fork, b.Name, res.Commit, fork); err != nil {
			return o, err
		}
		// Crash tests: the fork moved; the mirror's ref and the state
		// store do not know it yet.
		killpoint.Reach("sync.pushed")
	}
	o.Sync.Status = report.SyncMerged
	o.Sync.PreviousFork = fork
	o.Sync.ForkCommit = res.Commit
	verb := "merged"
	switch {
	case dryRun && res.FastForward:
		verb = "would fast-forward"
	case dryRun:
		verb = "would merge"
	case res.FastForward:
		verb = "fast-forwarded"
	}
	o.Sync.Message = fmt.Sprintf("%s %d upstream commit(s)", verb, res.Merged)
	log.Info(o.Sync.Message, "commit", short(res.Commit))
	return o, nil
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

// track points the mirror's copies of the fork branches that were pushed
// (merged or created) at what was pushed, so the new commits are reachable
// there (gc keeps them, the next run needs no fetch to see them): one
// update-ref for them all. A failure only costs a fetch next time.
func (s *Syncer) track(ctx context.Context, outs []Outcome) {
	var in strings.Builder
	var branches []string
	for _, o := range outs {
		if o.Sync.Status == report.SyncMerged || o.Sync.Status == report.SyncCreated {
			fmt.Fprintf(&in, "update %s %s\n", mirrorRef(s.opts.Fork.Name, o.Branch), o.Sync.ForkCommit)
			branches = append(branches, o.Branch)
		}
	}
	if len(branches) == 0 {
		return
	}
	err := s.git.withWriteLock(ctx, func() error {
		_, err := s.git.runStdin(ctx, in.String(), "update-ref", "--stdin")
		return err
	})
	if err != nil {
		s.opts.Logger.Warn("update the mirror's fork refs", "branches", branches, "err", err)
	}
}
