package gitsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/gitfixture"
)

// forkCommit adds a carry on top of the served fork branch and pushes it.
func (w *syncWorld) forkCommit(branch, msg string, files map[string]string) string {
	w.t.Helper()
	w.fork.Run(w.t, "fetch", "-q", w.forkBare, branch)
	w.fork.Run(w.t, "checkout", "-q", "-B", branch, "FETCH_HEAD")
	h := w.fork.Commit(w.t, msg, files)
	w.fork.Push(w.t, w.forkBare, branch)
	return h
}

// syncAs syncs branches and fails unless every one ends in status want.
func syncAs(t *testing.T, w *syncWorld, s *Syncer, branches []Branch, want string) {
	t.Helper()
	for _, o := range s.Sync(context.Background(), branches, false) {
		if o.Err != nil || o.Sync.Status != want {
			t.Fatalf("sync %s: %s, %v, want %s\n%s", o.Branch, o.Sync.Status, o.Err, want, w.log)
		}
	}
}

func hashes(cs []SuspectCommit) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Hash)
	}
	return out
}

// twoSyncs makes a fork whose master went through two syncs after good:
// upstream added u1 and u2, the fork a carry, then upstream u3. It returns
// good, bad and the new commits, upstream's newest first.
func twoSyncs(t *testing.T, w *syncWorld, s *Syncer) (good, bad string, upstream []string, carry string) {
	t.Helper()
	master := []Branch{{Name: "master", Upstream: "master"}}
	// good is itself a sync's merge, with a carry and an upstream commit of
	// its own before it, none of which may show.
	w.upstreamCommit("master", "upstream: before good", map[string]string{"pkg/old.go": "package old\n"})
	syncAs(t, w, s, master, report.SyncMerged)
	good = w.forkHead("master")

	u1 := w.upstreamCommit("master", "upstream: one", map[string]string{"pkg/one.go": "package one\n"})
	u2 := w.upstreamCommit("master", "upstream: two", map[string]string{"pkg/a.go": "package a\n\nconst A = 2\n"})
	syncAs(t, w, s, master, report.SyncMerged)
	carry = w.forkCommit("master", "carry: company tuning", map[string]string{"company/tuning.go": "package company\n"})
	u3 := w.upstreamCommit("master", "upstream: three", map[string]string{"docs/x.md": "y\n"})
	syncAs(t, w, s, master, report.SyncMerged)
	return good, w.forkHead("master"), []string{u3, u2, u1}, carry
}

func TestSuspectsBetweenTwoSyncsAreTheMergedUpstreamCommitsAndTheNewCarry(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	s := w.syncer(w.options())
	good, bad, upstream, carry := twoSyncs(t, w, s)

	// What the definition rests on, in plain git: the range's non-merge
	// commits are exactly the three upstream ones and the carry.
	plain := strings.Fields(w.mirrorGit("log", "--no-merges", "--format=%H", good+".."+bad))
	if want := append(slices.Clone(upstream), carry); !sameSet(plain, want) {
		t.Fatalf("git log --no-merges good..bad = %v, want %v", plain, want)
	}

	// The syncing mirror knows upstream's branch; a fresh one is filled
	// from the fork by Suspects and tells them apart by the merges alone.
	fresh := w.options()
	fresh.MirrorDir = filepath.Join(w.dir, "fresh", "mirror.git")
	for name, s := range map[string]*Syncer{"syncing mirror": s, "fresh mirror": w.syncer(fresh)} {
		r, err := s.Suspects(ctx, "master", good, bad, 10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := hashes(r.Upstream); !slices.Equal(got, upstream) || r.MoreUpstream != 0 {
			t.Errorf("%s: upstream %v (+%d), want %v", name, got, r.MoreUpstream, upstream)
		}
		if got := hashes(r.Carries); !slices.Equal(got, []string{carry}) || r.MoreCarries != 0 {
			t.Errorf("%s: carries %v (+%d), want [%s]", name, got, r.MoreCarries, carry)
		}
		if r.Branch != "master" || r.Good != good || r.Bad != bad || r.Rewritten || r.NoPassing || r.Empty() {
			t.Errorf("%s: range %+v", name, r)
		}
	}

	c := func() SuspectCommit {
		r, err := s.Suspects(ctx, "master", good, bad, 0)
		if err != nil {
			t.Fatal(err)
		}
		return r.Upstream[0]
	}()
	when, err := s.Git().CommitTime(ctx, upstream[0])
	if err != nil {
		t.Fatal(err)
	}
	want := SuspectCommit{Hash: upstream[0], Subject: "upstream: three", Author: gitfixture.AuthorName + " <" + gitfixture.AuthorEmail + ">", Time: when}
	if c != want {
		t.Fatalf("newest upstream commit %+v, want %+v", c, want)
	}
}

func TestSuspectsAreCappedAtTheLimitWithACountOfTheRest(t *testing.T) {
	w := newSyncWorld(t)
	s := w.syncer(w.options())
	good, bad, upstream, carry := twoSyncs(t, w, s)
	r, err := s.Suspects(context.Background(), "master", good, bad, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := hashes(r.Upstream); !slices.Equal(got, upstream[:2]) || r.MoreUpstream != 1 {
		t.Fatalf("upstream %v (+%d), want the newest two %v (+1)", got, r.MoreUpstream, upstream[:2])
	}
	if got := hashes(r.Carries); !slices.Equal(got, []string{carry}) || r.MoreCarries != 0 {
		t.Fatalf("carries %v (+%d), want [%s]", got, r.MoreCarries, carry)
	}
}

func TestSuspectsOfTheSameCandidateAreEmpty(t *testing.T) {
	w := newSyncWorld(t)
	s := w.syncer(w.options())
	head := w.forkHead("master")
	// Abbreviated as some records show it: still the same commit.
	r, err := s.Suspects(context.Background(), "master", head[:12], head, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Empty() || r.NoPassing || r.Rewritten || r.Upstream == nil || r.Carries == nil {
		t.Fatalf("range %+v, want empty lists", r)
	}
}

func TestSuspectsWithoutAPassingCandidateSaySo(t *testing.T) {
	w := newSyncWorld(t)
	head := w.forkHead("master")
	r, err := w.syncer(w.options()).Suspects(context.Background(), "master", "", head, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !r.NoPassing || r.Good != "" || r.Bad != head || !r.Empty() {
		t.Fatalf("range %+v, want NoPassing and nothing listed", r)
	}
}

func TestSuspectsOfAnUnknownCommitIsAClearError(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	s := w.syncer(w.options())
	head := w.forkHead("master")
	const nowhere = "0123456789abcdef0123456789abcdef01234567"

	_, err := s.Suspects(ctx, "master", nowhere, head, 10)
	if !errors.Is(err, ErrUnknownCommit) {
		t.Fatalf("err = %v, want ErrUnknownCommit", err)
	}
	for _, want := range []string{"last passing candidate's commit " + nowhere, "fork branch master", "force-push"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The mirror fetched the branch looking for it: bad is there now.
	if !s.git.hasCommit(ctx, head) {
		t.Error("the fork branch was not fetched")
	}
	if _, err := s.Suspects(ctx, "master", head, nowhere, 10); !errors.Is(err, ErrUnknownCommit) || !strings.Contains(err.Error(), "this candidate's commit "+nowhere) {
		t.Errorf("unknown bad: %v", err)
	}
	if _, err := s.Git().Suspects(ctx, nowhere, head, 10); !errors.Is(err, ErrUnknownCommit) {
		t.Errorf("Git.Suspects: %v, want ErrUnknownCommit", err)
	}
	// A revision expression or an option is refused, not resolved.
	for _, good := range []string{"HEAD~1", "--all", "master"} {
		if _, err := s.Suspects(ctx, "master", good, head, 10); err == nil || !strings.Contains(err.Error(), "not a commit hash") {
			t.Errorf("good %q: %v", good, err)
		}
	}
}

func TestSuspectsCountFastForwardedUpstreamCommitsAsUpstream(t *testing.T) {
	w := newSyncWorld(t)
	w.up.Checkout(t, "master")
	w.up.Run(t, "checkout", "-q", "-b", "release-2.0")
	w.up.Push(t, w.upBare, "release-2.0")
	s := w.syncer(w.options())
	rel := []Branch{{Name: "release-2.0", Upstream: "release-2.0", FFOnly: true}}
	syncAs(t, w, s, rel, report.SyncCreated)
	good := w.forkHead("release-2.0")
	u1 := w.upstreamCommit("release-2.0", "upstream: release fix one", map[string]string{"pkg/one.go": "package one\n"})
	u2 := w.upstreamCommit("release-2.0", "upstream: release fix two", map[string]string{"pkg/two.go": "package two\n"})
	syncAs(t, w, s, rel, report.SyncMerged)
	bad := w.forkHead("release-2.0")
	if bad != u2 {
		t.Fatalf("fork at %s, want the fast-forward to %s", bad, u2)
	}
	r, err := s.Suspects(context.Background(), "release-2.0", good, bad, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := hashes(r.Upstream); !slices.Equal(got, []string{u2, u1}) || len(r.Carries) != 0 {
		t.Fatalf("upstream %v, carries %v; want upstream [%s %s] and no carries", got, hashes(r.Carries), u2, u1)
	}
}

func TestSuspectsAfterARebaseListOnlyTheChangedCarries(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	s := w.syncer(w.options())
	w.forkCommit("master", "carry: B", map[string]string{"company/b.go": "package company\n\nconst B = 1\n"})
	good := w.forkHead("master")
	// The mirror built good before the rebase made it unreachable.
	if err := s.EnsureCommit(ctx, "master", good); err != nil {
		t.Fatal(err)
	}
	u1 := w.upstreamCommit("master", "upstream: one", map[string]string{"pkg/one.go": "package one\n"})
	u2 := w.upstreamCommit("master", "upstream: two", map[string]string{"pkg/two.go": "package two\n"})
	if err := s.git.Fetch(ctx, s.opts.Upstream, []string{"master"}, false); err != nil {
		t.Fatal(err)
	}

	// The fork rebases its carries A and B onto upstream, reworks B and
	// adds C: A is the same patch under a new hash and no suspect.
	w.fork.Run(t, "fetch", "-q", w.forkBare, "master")
	w.fork.Run(t, "checkout", "-q", "-B", "master", "FETCH_HEAD")
	w.fork.Run(t, "fetch", "-q", w.upBare, "master")
	w.fork.Run(t, "rebase", "-q", "FETCH_HEAD")
	if err := os.WriteFile(filepath.Join(w.fork.Dir, "company", "b.go"), []byte("package company\n\nconst B = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.fork.Run(t, "commit", "-q", "-a", "--amend", "-m", "carry: B, reworked")
	b2 := w.fork.Head(t)
	c := w.fork.Commit(t, "carry: C", map[string]string{"company/c.go": "package company\n"})
	w.fork.Run(t, "push", "-q", "-f", w.forkBare, "master")

	r, err := s.Suspects(ctx, "master", good, c, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Rewritten {
		t.Fatal("a rebased fork is not reported as rewritten")
	}
	if got := hashes(r.Upstream); !slices.Equal(got, []string{u2, u1}) {
		t.Errorf("upstream %v, want [%s %s]", got, u2, u1)
	}
	if got := hashes(r.Carries); !slices.Equal(got, []string{c, b2}) {
		t.Errorf("carries %v, want C and the reworked B [%s %s]", got, c, b2)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
