package gitsync

import (
	"context"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
)

// moveTag points upstream's annotated tag at commit, as `git tag -f` and a
// forced push of the tag do.
func (w *syncWorld) moveTag(tag, commit string) {
	w.t.Helper()
	w.up.Run(w.t, "tag", "-f", "-a", "-m", tag+" again", tag, commit)
	w.up.Push(w.t, w.upBare, "+refs/tags/"+tag)
}

func (w *syncWorld) mirrorTag(tag string) string {
	w.t.Helper()
	return w.mirrorGit("rev-parse", "refs/tags/"+tag+"^{commit}")
}

func TestSyncFollowsUpstreamTagMoves(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	s := w.syncer(w.options())
	master := []Branch{{Name: "master", Upstream: "master"}}
	first := w.upstreamCommit("master", "upstream: one", map[string]string{"pkg/one.go": "package pkg\n"})
	if o := only(t, s.Sync(ctx, master, false)); o.Sync.Status != report.SyncMerged {
		t.Fatalf("first sync: %+v %v", o.Sync, o.Err)
	}
	// The fork's own release tag reaches the mirror with the build's fetch.
	w.fork.Run(t, "fetch", "-q", w.forkBare, "master")
	w.fork.Run(t, "checkout", "-q", "-B", "master", "FETCH_HEAD")
	w.fork.Run(t, "tag", "-a", "-m", "company", "v1.0.0-company.1")
	w.fork.Push(t, w.forkBare, "v1.0.0-company.1")
	w.fork.Commit(t, "carry: more", map[string]string{"company/more.go": "package company\n"})
	w.fork.Push(t, w.forkBare, "master")
	forkHead := w.forkHead("master")
	if err := s.EnsureCommit(ctx, "master", forkHead); err != nil {
		t.Fatal(err)
	}
	company := w.mirrorTag("v1.0.0-company.1")

	// Upstream moves v1.0.0 onto a new commit: the sync that merges it
	// follows the move instead of failing on "would clobber existing tag".
	second := w.upstreamCommit("master", "upstream: two", map[string]string{"pkg/two.go": "package pkg\n"})
	w.moveTag("v1.0.0", second)
	if o := only(t, s.Sync(ctx, master, false)); o.Err != nil || o.Sync.Status != report.SyncMerged {
		t.Fatalf("sync after the tag moved: %+v %v", o.Sync, o.Err)
	}
	if got := w.mirrorTag("v1.0.0"); got != second {
		t.Fatalf("mirror's v1.0.0 is %s, upstream moved it to %s", got, second)
	}
	if v, err := s.Git().Describe(ctx, second); err != nil || v != "v1.0.0" {
		t.Fatalf("Describe = %q, %v", v, err)
	}

	// A move alone, with every branch up to date, is followed too.
	w.moveTag("v1.0.0", first)
	if o := only(t, s.Sync(ctx, master, false)); o.Err != nil || o.Sync.Status != report.SyncUpToDate {
		t.Fatalf("sync after a tag-only move: %+v %v", o.Sync, o.Err)
	}
	if got := w.mirrorTag("v1.0.0"); got != first {
		t.Fatalf("mirror's v1.0.0 is %s after a tag-only move to %s", got, first)
	}
	// The fork's own tag survives upstream's: tags are not pruned.
	if got := w.mirrorTag("v1.0.0-company.1"); got != company {
		t.Fatalf("the fork's tag became %s", got)
	}

	// Nothing new: not one negotiation.
	w.srv.ResetRequests()
	if o := only(t, s.Sync(ctx, master, false)); o.Sync.Status != report.SyncUpToDate {
		t.Fatalf("%+v", o.Sync)
	}
	if n := w.srv.Requests("fetch"); n != 0 {
		t.Fatalf("an up-to-date sync with unchanged tags fetched %d times", n)
	}
}
