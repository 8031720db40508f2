package gitsync

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/hyperfork/hyperfork/internal/report"
)

// plan predicts: neither its log nor its messages say a branch was merged
// or created, and nothing reaches the fork.
func TestDryRunSaysWould(t *testing.T) {
	w := newSyncWorld(t)
	w.upstreamCommit("master", "upstream: add c", map[string]string{"pkg/c.go": "package c\n"})
	w.up.Run(t, "branch", "-f", "release-1.1", "master")
	w.up.Push(t, w.upBare, "release-1.1")
	before := w.forkHead("master")
	s := w.syncer(w.options())
	out := s.Sync(context.Background(), []Branch{{Name: "master", Upstream: "master"}, {Name: "release-1.1", Upstream: "release-1.1"}}, true)
	m, r := out[0], out[1]
	if m.Sync.Status != report.SyncMerged || m.Sync.Message != "would merge 1 upstream commit(s)" {
		t.Fatalf("master: %+v %v", m.Sync, m.Err)
	}
	if r.Sync.Status != report.SyncCreated || !strings.HasPrefix(r.Sync.Message, "would create fork branch release-1.1 from upstream release-1.1") {
		t.Fatalf("release-1.1: %+v %v", r.Sync, r.Err)
	}
	log := w.log.String()
	if regexp.MustCompile(`(?i)\b(merged|created)\b`).MatchString(log) || !strings.Contains(log, "would merge 1 upstream commit(s)") || !strings.Contains(log, "would create fork branch") {
		t.Fatalf("the dry run's log:\n%s", log)
	}
	if w.forkHead("master") != before {
		t.Fatal("the dry run pushed")
	}
	if _, err := w.srvHead("release-1.1"); err == nil {
		t.Fatal("the dry run created the fork branch")
	}

	// The real run says what it did.
	out = s.Sync(context.Background(), []Branch{{Name: "master", Upstream: "master"}, {Name: "release-1.1", Upstream: "release-1.1"}}, false)
	if out[0].Sync.Message != "merged 1 upstream commit(s)" || out[1].Sync.Message != "fork branch release-1.1 created from upstream release-1.1" {
		t.Fatalf("%q %q", out[0].Sync.Message, out[1].Sync.Message)
	}
}
