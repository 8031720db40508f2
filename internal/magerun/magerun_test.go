package magerun

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/magefile/mage/mage"
)

func TestHelpAfterTargetBecomesMageHelp(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantHelp bool
		wantArgs []string
		mageArgs []string
	}{
		{[]string{"sync", "--help"}, true, []string{"sync"}, []string{"-h", "sync"}},
		{[]string{"-v", "sync", "-h"}, true, []string{"sync"}, []string{"-v", "-h", "sync"}},
		{[]string{"sync"}, false, []string{"sync"}, []string{"sync"}},
		{[]string{"sync", "build"}, false, []string{"sync", "build"}, []string{"sync", "build"}},
	} {
		inv := mage.Invocation{Args: slices.Clone(tc.args)}
		// What mage.Parse leaves in Args: everything after the flags.
		for len(inv.Args) > 0 && inv.Args[0][0] == '-' {
			inv.Args = inv.Args[1:]
		}
		helpAfterTarget(&inv)
		if inv.Help != tc.wantHelp || !slices.Equal(inv.Args, tc.wantArgs) {
			t.Errorf("%v: help %v args %v, want %v %v", tc.args, inv.Help, inv.Args, tc.wantHelp, tc.wantArgs)
		}
		if got := rewriteHelp(tc.args, inv); !slices.Equal(got, tc.mageArgs) {
			t.Errorf("%v: mage gets %v, want %v", tc.args, got, tc.mageArgs)
		}
	}
}

func TestTargetContextEndsOnASignal(t *testing.T) {
	ctx, stop := TargetContext(context.Background())
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context did not end on SIGHUP")
	}
	var in *Interrupted
	if !errors.As(context.Cause(ctx), &in) || in.Error() != "interrupted by SIGHUP" {
		t.Fatalf("cause %v, want interrupted by SIGHUP", context.Cause(ctx))
	}
}

func TestExitCodeOfTargets(t *testing.T) {
	if exitCode(nil) != 0 {
		t.Error("a clean exit is 0")
	}
	if exitCode(errors.New("start failed")) != 1 {
		t.Error("a failure without an exit status is 1")
	}
}
