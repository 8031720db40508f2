package gitsync

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownCommit means a commit asked about is not in the mirror, even
// after fetching the fork branch it should be on.
var ErrUnknownCommit = errors.New("commit not found")

// SuspectRange is what changed on a fork branch between the last candidate
// that passed its tests (Good) and the one that failed (Bad): the changes
// that likely broke it.
type SuspectRange struct {
	Branch string `json:"branch"`
	// Good is the fork commit of the last passing candidate, "" when no
	// candidate has passed yet (NoPassing): then there is nothing to compare
	// with and the lists are empty.
	Good      string `json:"good,omitempty"`
	Bad       string `json:"bad"`
	NoPassing bool   `json:"noPassing,omitempty"`
	// Rewritten says Good is not in Bad's history: the fork branch was
	// rebased or reset between the two. Carries then lists only the carries
	// whose change (patch-id) Good did not have, so a rebase that replays
	// the same patches under new hashes does not make them all suspects.
	Rewritten bool `json:"rewritten,omitempty"`
	// Upstream is the upstream commits Bad has and Good had not, merges
	// among them (upstream's pull-request merges name the PR), newest
	// first; MoreUpstream is how many more the limit left off.
	Upstream     []SuspectCommit `json:"upstream"`
	MoreUpstream int             `json:"moreUpstream,omitempty"`
	// Carries is the fork's own non-merge commits added (or, when
	// Rewritten, changed) between the two, newest first; MoreCarries is
	// how many more the limit left off.
	Carries     []SuspectCommit `json:"carries"`
	MoreCarries int             `json:"moreCarries,omitempty"`
}

// Empty reports whether nothing at all changed between the two candidates.
func (r *SuspectRange) Empty() bool {
	return len(r.Upstream)+r.MoreUpstream+len(r.Carries)+r.MoreCarries == 0
}

// SuspectCommit is one commit of a SuspectRange.
type SuspectCommit struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
	// Author is "Name <email>".
	Author string `json:"author"`
	// Time is the committer time: for upstream's merge commits, when the
	// pull request merged.
	Time time.Time `json:"time"`
}

// hexCommit is what a candidate records as its commit: a hash, full or
// abbreviated. Anything else (a ref name, "HEAD~1", an option) is refused
// rather than resolved in the mirror, where it would mean something else.
var hexCommit = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// Suspects returns what changed on fork branch between the fork commit
// good of the last passing candidate and bad of this one, at most limit
// commits per list (limit <= 0: all). Commits the mirror lacks are fetched
// from the fork branch first. good == "" returns a range that says no
// candidate has passed yet.
func (s *Syncer) Suspects(ctx context.Context, branch, good, bad string, limit int) (*SuspectRange, error) {
	if err := checkSuspectArgs(good, bad); err != nil {
		return nil, fmt.Errorf("suspects on %s: %w", branch, err)
	}
	if good == "" {
		return &SuspectRange{Branch: branch, Bad: bad, NoPassing: true}, nil
	}
	full := s.git.resolveCommits(ctx, good, bad)
	if full[good] == "" || full[bad] == "" {
		if err := s.git.Fetch(ctx, s.opts.Fork, []string{branch}, false); err != nil {
			return nil, fmt.Errorf("suspects on %s: fetch the candidates' commits: %w", branch, err)
		}
		full = s.git.resolveCommits(ctx, good, bad)
	}
	if err := unknown(full, good, bad, "on fork branch "+branch+" (fetched just now)"); err != nil {
		return nil, fmt.Errorf("suspects on %s: %w", branch, err)
	}
	r, err := s.git.suspects(ctx, full[good], full[bad], limit)
	if err != nil {
		return nil, fmt.Errorf("suspects on %s between %s and %s: %w", branch, short(good), short(bad), err)
	}
	r.Branch = branch
	return r, nil
}

// Suspects is Syncer.Suspects on commits the repository already holds: it
// fetches nothing, and a missing commit is ErrUnknownCommit.
func (g *Git) Suspects(ctx context.Context, good, bad string, limit int) (*SuspectRange, error) {
	if err := checkSuspectArgs(good, bad); err != nil {
		return nil, err
	}
	if good == "" {
		return &SuspectRange{Bad: bad, NoPassing: true}, nil
	}
	full := g.resolveCommits(ctx, good, bad)
	if err := unknown(full, good, bad, "in "+g.Dir); err != nil {
		return nil, err
	}
	r, err := g.suspects(ctx, full[good], full[bad], limit)
	if err != nil {
		return nil, fmt.Errorf("suspects between %s and %s: %w", short(good), short(bad), err)
	}
	return r, nil
}

func checkSuspectArgs(good, bad string) error {
	if !hexCommit.MatchString(bad) {
		return fmt.Errorf("failing candidate's commit %q is not a commit hash; pass the fork commit the candidate was built from", bad)
	}
	if good != "" && !hexCommit.MatchString(good) {
		return fmt.Errorf("passing candidate's commit %q is not a commit hash; pass the fork commit the candidate was built from, or \"\" when none has passed", good)
	}
	return nil
}

// unknown names the commits that resolveCommits did not find.
func unknown(full map[string]string, good, bad, where string) error {
	var missing []string
	if full[good] == "" {
		missing = append(missing, "the last passing candidate's commit "+good)
	}
	if full[bad] == "" {
		missing = append(missing, "this candidate's commit "+bad)
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w %s; a force-push may have removed it from the branch, or it belongs to another branch: pass the fork commit a candidate of this branch was built from",
		strings.Join(missing, " and "), ErrUnknownCommit, where)
}

// resolveCommits maps each commit that names a commit object in the
// repository to its full hash, in one process; the others are absent.
func (g *Git) resolveCommits(ctx context.Context, commits ...string) map[string]string {
	full := make(map[string]string, len(commits))
	var in strings.Builder
	for _, c := range commits {
		in.WriteString(c + "^{commit}\n")
	}
	// One line per question: "<hash> commit", or "<question> missing"
	// (or "ambiguous" for a short hash two objects share).
	out, err := g.runStdin(ctx, in.String(), "cat-file", "--batch-check=%(objectname) %(objecttype)")
	if err != nil {
		return full
	}
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if hash, typ, _ := strings.Cut(line, " "); i < len(commits) && typ == "commit" {
			full[commits[i]] = hash
		}
	}
	return full
}

// upstreamGlob matches the mirror's copies of upstream's branches.
var upstreamGlob = mirrorRef("upstream", "*")

// suspects computes the range between full hashes good and bad.
//
// A fork branch's history is its own line of first parents, on which the
// carries sit, with upstream merged into it: the merged-in (second and
// later) parents of the merges on that line and everything they reach are
// upstream's. The mirror's copies of upstream's branches count as well, so
// that upstream commits the fork took by fast-forward (strategy ff-only, a
// branch created from upstream, a rebase onto upstream) are not taken for
// carries; they are not needed otherwise, and a fresh mirror without them
// still tells merged-in upstream commits apart. Carries are the non-merge
// commits of good..bad that none of that reaches. A pull request merged
// into the fork with a merge commit looks like an upstream merge by
// structure, so its commits are listed as upstream ones.
func (g *Git) suspects(ctx context.Context, good, bad string, limit int) (*SuspectRange, error) {
	r := &SuspectRange{Good: good, Bad: bad, Upstream: []SuspectCommit{}, Carries: []SuspectCommit{}}
	if good == bad {
		return r, nil
	}
	ok, err := g.isAncestor(ctx, good, bad)
	if err != nil {
		return nil, fmt.Errorf("check whether %s is in the history of %s: %w", short(good), short(bad), err)
	}
	r.Rewritten = !ok

	// Every commit of the range with its parents, newest first.
	out, err := g.run(ctx, nil, "rev-list", "--parents", bad, "^"+good)
	if err != nil {
		return nil, fmt.Errorf("list commits: %w", err)
	}
	var all []string
	parents := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		all = append(all, f[0])
		parents[f[0]] = f[1:]
	}
	// The merged-in parents along the fork's first-parent line, as far as
	// the range goes: that is where git stops too (rev-list --first-parent).
	var sides []string
	for c := bad; ; {
		p, inRange := parents[c]
		if !inRange || len(p) == 0 {
			break
		}
		sides = append(sides, p[1:]...)
		c = p[0]
	}
	negSides := "^" + good + "\n"
	for _, s := range sides {
		negSides += "^" + s + "\n"
	}

	// The fork's own commits of the range: carries, and its merges.
	out, err = g.runStdin(ctx, negSides, "log", "--format="+suspectFormat, "--stdin", bad, "--not", "--glob="+upstreamGlob)
	if err != nil {
		return nil, fmt.Errorf("list the fork's own commits: %w", err)
	}
	own := map[string]bool{}
	var carries []SuspectCommit
	for _, rec := range parseSuspects(out) {
		own[rec.Hash] = true
		if rec.parents <= 1 {
			carries = append(carries, rec.SuspectCommit)
		}
	}
	if r.Rewritten && len(carries) > 0 {
		if carries, err = g.changedCarries(ctx, good, bad, negSides, carries); err != nil {
			return nil, err
		}
	}
	r.Carries, r.MoreCarries = capped(carries, limit)

	var upstream []string
	for _, c := range all {
		if !own[c] {
			upstream = append(upstream, c)
		}
	}
	shown := upstream
	if limit > 0 && len(shown) > limit {
		shown = shown[:limit]
	}
	r.MoreUpstream = len(upstream) - len(shown)
	if len(shown) > 0 {
		out, err := g.runStdin(ctx, strings.Join(shown, "\n")+"\n", "log", "--no-walk=unsorted", "--format="+suspectFormat, "--stdin")
		if err != nil {
			return nil, fmt.Errorf("describe upstream commits: %w", err)
		}
		for _, rec := range parseSuspects(out) {
			r.Upstream = append(r.Upstream, rec.SuspectCommit)
		}
	}
	return r, nil
}

// changedCarries keeps the carries of a rewritten range whose patch good's
// side of the branch did not have (git's --cherry-pick): a rebase replays
// carries under new hashes, and only the changed ones are suspects.
func (g *Git) changedCarries(ctx context.Context, good, bad, negSides string, carries []SuspectCommit) ([]SuspectCommit, error) {
	// negSides holds ^good, which would hide good's side of the symmetric
	// range; the merged-in parents alone are what is excluded here.
	sidesOnly := strings.TrimPrefix(negSides, "^"+good+"\n")
	out, err := g.runStdin(ctx, sidesOnly, "rev-list", "--no-merges", "--cherry-pick", "--right-only", "--stdin",
		good+"..."+bad, "--not", "--glob="+upstreamGlob)
	if err != nil {
		return nil, fmt.Errorf("compare carries with those of %s: %w", short(good), err)
	}
	changed := map[string]bool{}
	for _, h := range strings.Fields(out) {
		changed[h] = true
	}
	kept := carries[:0]
	for _, c := range carries {
		if changed[c.Hash] {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// capped returns the first limit commits and how many it left off.
func capped(cs []SuspectCommit, limit int) ([]SuspectCommit, int) {
	if cs == nil {
		cs = []SuspectCommit{}
	}
	if limit <= 0 || len(cs) <= limit {
		return cs, 0
	}
	return cs[:limit], len(cs) - limit
}

// suspectFormat is one record per commit: hash, parents, author, committer
// time and subject, the subject last because only it could hold anything.
const suspectFormat = "%H%x1f%P%x1f%an <%ae>%x1f%ct%x1f%s%x1e"

type suspectRecord struct {
	SuspectCommit
	parents int
}

func parseSuspects(out string) []suspectRecord {
	var recs []suspectRecord
	for _, rec := range strings.Split(out, "\x1e") {
		f := strings.SplitN(strings.TrimLeft(rec, "\n"), "\x1f", 5)
		if len(f) != 5 {
			continue
		}
		sec, _ := strconv.ParseInt(f[3], 10, 64)
		recs = append(recs, suspectRecord{
			SuspectCommit: SuspectCommit{Hash: f[0], Subject: f[4], Author: f[2], Time: time.Unix(sec, 0).UTC()},
			parents:       len(strings.Fields(f[1])),
		})
	}
	return recs
}
