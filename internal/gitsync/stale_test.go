package gitsync

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

func TestRemoveStaleKeepsYoungFiles(t *testing.T) {
	w := newSyncWorld(t)
	ctx := context.Background()
	s := w.syncer(w.options())
	master := []Branch{{Name: "master", Upstream: "master"}}
	if o := only(t, s.Sync(ctx, master, false)); o.Err != nil {
		t.Fatal(o.Err)
	}
	m := w.mirror
	old := time.Now().Add(-3 * time.Hour)
	plant := func(rel, content string, when time.Time) string {
		t.Helper()
		p := filepath.Join(m, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What a killed fetch leaves, long ago.
	stale := []string{
		plant("objects/pack/tmp_pack_a1b2c3", "PACK", old),
		plant("objects/pack/tmp_idx_a1b2c3", "idx", old),
		plant("objects/pack/pack-0123456789abcdef0123456789abcdef01234567.keep", "fetch-pack 4242 on ci-runner\n", old),
		plant("objects/ab/tmp_obj_x1y2z3", "obj", old),
		plant("objects/info/commit-graphs/commit-graph-chain.lock", "", old),
		plant("refs/hyperfork/fork/master.lock", "", old),
		plant("packed-refs.lock", "", old),
	}
	// What a running git may be writing right now, and what is not debris.
	now := time.Now()
	keep := []string{
		plant("objects/pack/tmp_pack_d4e5f6", "PACK", now),
		plant("objects/pack/tmp_idx_d4e5f6", "idx", now),
		plant("config.lock", "", now),
		plant("objects/pack/pack-fedcba9876543210fedcba9876543210fedcba98.keep", "kept on purpose\n", old),
		plant("refs/tags/tmp_release", "0000000000000000000000000000000000000000\n", old),
	}
	// The mirror's own write lock, old as it is, must stay: removing it
	// while a run holds it would let the next run lock another file.
	writeLock := filepath.Join(m, writeLockName)
	if err := os.Chtimes(writeLock, old, old); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, writeLock)

	if _, err := s.Git().RemoveStale(ctx, 0); err == nil {
		t.Fatal("a zero threshold was accepted")
	}
	removed, err := s.Git().RemoveStale(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	slices.Sort(stale)
	if !slices.Equal(removed, stale) {
		t.Fatalf("removed\n%q\nwant\n%q", removed, stale)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	// The leftover locks blocked nothing afterwards: the next fetch works.
	for _, p := range keep {
		if filepath.Ext(p) != ".keep" && p != writeLock {
			os.Remove(p)
		}
	}
	w.upstreamCommit("master", "upstream: after the kill", map[string]string{"pkg/k.go": "package pkg\n"})
	if o := only(t, s.Sync(ctx, master, false)); o.Err != nil || o.Sync.Status != report.SyncMerged {
		t.Fatalf("%+v %v", o.Sync, o.Err)
	}
}
