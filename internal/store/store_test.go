package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestDirPutGetAndBranchState(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "nothing/here"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if err := d.Put(ctx, "a/b.json", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, "a/b.json"); err != nil || string(b) != "1" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	// A key cannot climb out of the folder.
	if err := d.Put(ctx, "../../escape", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, "escape"); err != nil || string(b) != "x" {
		t.Fatalf("the escaping key was not kept inside: %q %v", b, err)
	}
	st := BranchState{Sync: SyncState{Status: "merged", ForkCommit: "abc"}, Build: BuildState{Commit: "abc", Status: "built"}}
	if err := SaveBranch(ctx, d, "release/1.0", st); err != nil {
		t.Fatal(err)
	}
	got, err := LoadBranch(ctx, d, "release/1.0")
	if err != nil || got.Build.Commit != "abc" || got.Sync.Status != "merged" {
		t.Fatalf("LoadBranch = %+v, %v", got, err)
	}
	if err := d.Put(ctx, "branches/bad/state.json", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBranch(ctx, d, "bad"); err == nil {
		t.Fatal("a corrupt state file was accepted")
	}
}

func TestLockIsExclusive(t *testing.T) {
	ctx := context.Background()
	d, _ := NewDir(t.TempDir())
	unlock, err := d.Lock(ctx, "branch-master")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Lock(ctx, "branch-master")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if want := fmt.Sprintf("pid %d, since ", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("the refusal does not name the holder (%q): %v", want, err)
	}
	other, err := d.Lock(ctx, "branch-release")
	if err != nil {
		t.Fatalf("another branch's lock: %v", err)
	}
	other()
	unlock()
	again, err := d.Lock(ctx, "branch-master")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}
