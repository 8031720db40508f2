package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperfork/hyperfork/internal/testutil/s3test"
)

// The refusal names the holder: host, pid, run, target and since when, and
// matches ErrLocked for the exit code 5.
func TestLockedErrorNamesTheHolder(t *testing.T) {
	since := time.Date(2026, 12, 2, 20, 31, 0, 0, time.UTC)
	e := &LockedError{Name: "rel/1", Holder: Holder{Host: "h", PID: 123, RunID: "r-7", Target: "sync", Since: since},
		Expires: since.Add(2 * time.Minute)}
	want := "branch rel/1 is locked by run r-7 (target sync) on host h, pid 123, since 2026-12-02T20:31:00Z; " +
		"wait for it to finish, or if that process is gone the lock expires at 2026-12-02T20:33:00Z and the next run takes it over"
	if e.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", e.Error(), want)
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", e), ErrLocked) {
		t.Error("a wrapped LockedError does not match ErrLocked")
	}
	folder := &LockedError{Name: "master", Holder: e.Holder}
	if !strings.Contains(folder.Error(), "released the moment its process exits") {
		t.Errorf("folder message: %s", folder.Error())
	}
}

// Both stores: a second taker is refused with the first one's record;
// branches whose names differ only by "/" and "_" have separate locks; after
// Release the lock is free and the next holder took nothing over.
func TestLockBranchIsExclusivePerBranch(t *testing.T) {
	ctx := context.Background()
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			first := Holder{Host: "host-a", PID: 11, RunID: "run-a", Target: "sync"}
			l, err := b.LockBranch(ctx, "rel/1", first)
			if err != nil {
				t.Fatal(err)
			}
			if l.TookOver != nil {
				t.Errorf("a fresh lock reports a takeover of %v", l.TookOver)
			}
			_, err = b.LockBranch(ctx, "rel/1", Holder{RunID: "run-b", Target: "build"})
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
				t.Fatalf("second taker: %v, want a LockedError", err)
			}
			if le.Holder.RunID != "run-a" || le.Holder.Host != "host-a" || le.Holder.PID != 11 || le.Holder.Target != "sync" || le.Holder.Since.IsZero() {
				t.Errorf("refusal names %+v, want the first holder", le.Holder)
			}
			if name == "s3" && le.Expires.IsZero() {
				t.Error("an S3 refusal does not say when the lease expires")
			}
			other, err := b.LockBranch(ctx, "rel_1", Holder{RunID: "run-c"})
			if err != nil {
				t.Fatalf("rel_1 shares rel/1's lock: %v", err)
			}
			if err := other.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-l.Done():
			default:
				t.Error("Done is open after Release")
			}
			if l.Err() != nil {
				t.Errorf("Err after a clean release: %v", l.Err())
			}
			again, err := b.LockBranch(ctx, "rel/1", Holder{RunID: "run-d"})
			if err != nil {
				t.Fatalf("lock after release: %v", err)
			}
			if again.TookOver != nil {
				t.Errorf("after a clean release the next holder took over %v", again.TookOver)
			}
			_ = again.Release(ctx)
		})
	}
}

// Two takers at the same moment: exactly one wins, the other is told who.
func TestLockBranchTwoTakersAtOnce(t *testing.T) {
	ctx := context.Background()
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			for round := range 5 {
				branch := fmt.Sprintf("master-%d", round)
				var wg sync.WaitGroup
				leases := make([]*Lease, 2)
				errs := make([]error, 2)
				start := make(chan struct{})
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						leases[i], errs[i] = b.LockBranch(ctx, branch, Holder{RunID: fmt.Sprintf("taker-%d", i)})
					}()
				}
				close(start)
				wg.Wait()
				won := 0
				for i := range 2 {
					if errs[i] == nil {
						won++
						defer leases[i].Release(ctx) //nolint:errcheck
						continue
					}
					var le *LockedError
					if !errors.As(errs[i], &le) {
						t.Fatalf("round %d taker %d: %v, want a LockedError", round, i, errs[i])
					}
					if want := fmt.Sprintf("taker-%d", 1-i); le.Holder.RunID != want {
						t.Errorf("round %d taker %d refused naming %q, want %q", round, i, le.Holder.RunID, want)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d takers won", round, won)
				}
			}
		})
	}
}

// An S3 lease outlives many TTLs while its holder runs (the three-hour test
// run, scaled down), and is lost when renewal cannot reach the server.
func TestS3LeaseRenewsWhileHeldAndIsLostWhenItCannot(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	st := s3Store(t, srv, "state")
	ttl := 2 * time.Second
	l, err := st.LockBranch(ctx, "master", Holder{RunID: "long-run", Target: "test"}, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := l.Context(ctx)
	defer cancel()
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if _, err := st.LockBranch(ctx, "master", Holder{RunID: "intruder"}, WithTTL(ttl)); !errors.Is(err, ErrLocked) {
			t.Fatalf("%s before the end of 3 TTLs of %s, another taker got: %v", time.Until(deadline), ttl, err)
		}
		time.Sleep(ttl / 4)
	}
	if l.Err() != nil {
		t.Fatalf("lease lost while the server was up: %v", l.Err())
	}
	srv.Stop()
	select {
	case <-l.Done():
	case <-time.After(3 * ttl):
		t.Fatal("the lease is still held 3 TTLs after the server went away")
	}
	if !errors.Is(l.Err(), ErrLeaseLost) {
		t.Errorf("Err = %v, want ErrLeaseLost", l.Err())
	}
	<-lctx.Done()
	if !errors.Is(context.Cause(lctx), ErrLeaseLost) {
		t.Errorf("the lease's context ended with %v, want ErrLeaseLost", context.Cause(lctx))
	}
	srv.Start()
	if err := l.Release(ctx); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
}

// A holder that stops renewing without releasing (what kill -9 leaves,
// made inside this process) is refused while its lease lasts and taken over
// after, with TookOver naming it.
func TestS3StaleLeaseIsTakenOverAfterExpiry(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	st := s3Store(t, srv, "state")
	ttl := 2 * time.Second
	dead, err := st.LockBranch(ctx, "master", Holder{RunID: "dead-run", Target: "release"}, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	dead.abandon()
	_, err = st.LockBranch(ctx, "master", Holder{RunID: "next"}, WithTTL(ttl))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("while the stale lease lasts: %v, want ErrLocked", err)
	}
	l := waitForLock(t, st, "master", Holder{RunID: "next"}, 4*ttl)
	defer l.Release(ctx) //nolint:errcheck
	if l.TookOver == nil || l.TookOver.RunID != "dead-run" {
		t.Fatalf("TookOver = %+v, want the dead run", l.TookOver)
	}
}

// Two runs find the same stale lock at once: the conditional replace on the
// stale ETag lets exactly one of them take it.
func TestS3StaleLeaseTwoTakers(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	st := s3Store(t, srv, "state")
	ttl := time.Second
	for round := range 2 {
		branch := fmt.Sprintf("b%d", round)
		dead, err := st.LockBranch(ctx, branch, Holder{RunID: "dead"}, WithTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		dead.abandon()
		time.Sleep(ttl + clockSlack + 1500*time.Millisecond) // past expiry by the server's one-second clock
		var wg sync.WaitGroup
		leases := make([]*Lease, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				leases[i], errs[i] = st.LockBranch(ctx, branch, Holder{RunID: fmt.Sprintf("taker-%d", i)}, WithTTL(10*time.Second))
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for i := range 2 {
			if errs[i] == nil {
				won++
				if leases[i].TookOver == nil || leases[i].TookOver.RunID != "dead" {
					t.Errorf("round %d: the winner's TookOver = %+v", round, leases[i].TookOver)
				}
				defer leases[i].Release(ctx) //nolint:errcheck
			} else if !errors.Is(errs[i], ErrLocked) {
				t.Fatalf("round %d taker %d: %v", round, i, errs[i])
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d takers won the stale lock", round, won)
		}
	}
}

// kill -9 of a process that holds the lock: the folder lock is free at once
// (the kernel drops the flock) and reports the takeover; the S3 lease is
// refused until it expires, then taken over.
func TestLockHolderKilled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	st := s3Store(t, srv, "state")
	for _, tc := range []struct {
		name     string
		location string
		open     Locker
		ttl      time.Duration
	}{
		{"folder", dir, mustDir(t, dir), 0},
		{"s3", "s3://state/hf/state", st, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			holder := startHolderProcess(t, tc.location, srv.Env(), "master", tc.ttl)
			pid := holder.Process.Pid
			_, err := tc.open.LockBranch(ctx, "master", Holder{RunID: "next"})
			var le *LockedError
			if !errors.As(err, &le) {
				t.Fatalf("while the holder runs: %v, want a LockedError", err)
			}
			if le.Holder.PID != pid || le.Holder.RunID != "child" || le.Holder.Target != "release" {
				t.Fatalf("refusal names %+v, want pid %d run child", le.Holder, pid)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = holder.Wait()
			l := waitForLock(t, tc.open, "master", Holder{RunID: "next"}, 3*tc.ttl+2*time.Second)
			defer l.Release(ctx) //nolint:errcheck
			if l.TookOver == nil || l.TookOver.PID != pid {
				t.Fatalf("TookOver = %+v, want the killed pid %d", l.TookOver, pid)
			}
		})
	}
}

func mustDir(t *testing.T, root string) *Dir {
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitForLock polls until the lock is taken; only ErrLocked is retried.
func waitForLock(t *testing.T, l Locker, branch string, h Holder, within time.Duration) *Lease {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		lease, err := l.LockBranch(context.Background(), branch, h)
		if err == nil {
			return lease
		}
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("lock %s within %s: %v", branch, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startHolderProcess runs this test binary as a lock holder (see TestMain)
// and returns once it holds the lock.
func startHolderProcess(t *testing.T, location string, env []string, branch string, ttl time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), env...),
		"HYPERFORK_LOCK_HELPER="+location, "HYPERFORK_LOCK_BRANCH="+branch, "HYPERFORK_LOCK_TTL="+ttl.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "HELD ") || strings.HasPrefix(sc.Text(), "ERROR ") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		pid, held := strings.CutPrefix(line, "HELD ")
		if !ok || !held {
			t.Fatalf("the holder process did not take the lock: %s", line)
		}
		n, _ := strconv.Atoi(pid)
		if n != cmd.Process.Pid {
			t.Fatalf("holder reports pid %s, started %d", pid, cmd.Process.Pid)
		}
		return cmd
	case <-time.After(30 * time.Second):
		t.Fatal("the holder process did not take the lock within 30s")
	}
	return nil
}

// TestMain lets this test binary serve as a lock holder for
// TestLockHolderKilled: with HYPERFORK_LOCK_HELPER set it takes the lock and
// holds it, renewing, until it is killed.
func TestMain(m *testing.M) {
	if location := os.Getenv("HYPERFORK_LOCK_HELPER"); location != "" {
		holdLock(location)
	}
	os.Exit(m.Run())
}

func holdLock(location string) {
	ctx := context.Background()
	b, err := Open(ctx, location, S3Options{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	var opts []LeaseOption
	if ttl, _ := time.ParseDuration(os.Getenv("HYPERFORK_LOCK_TTL")); ttl > 0 {
		opts = append(opts, WithTTL(ttl))
	}
	if _, err := b.LockBranch(ctx, os.Getenv("HYPERFORK_LOCK_BRANCH"), NewHolder("child", "release"), opts...); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("HELD %d\n", os.Getpid())
	time.Sleep(time.Minute)
	os.Exit(0)
}

// lossyTransport sends a request on to the server and then loses the
// answer, for the next drop PUTs of a lock: what a timed-out renewal that
// landed looks like to its client. A real server cannot be made to do it.
type lossyTransport struct {
	next http.RoundTripper
	drop *atomic.Int32
}

func (l lossyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPut || !strings.Contains(req.URL.Path, "/locks/") || l.drop.Add(-1) < 0 {
		return l.next.RoundTrip(req)
	}
	resp, err := l.next.RoundTrip(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}

// A renewal that lands but whose answer is lost is still this run's lease:
// the next renewal finds its own record under an ETag it never saw, keeps
// the lease instead of calling it lost, and Release frees the lock at once.
func TestS3LeaseRenewalThatLandedUnseenIsStillHeld(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	srv.MakeBucket("state")
	var drop atomic.Int32
	st := s3Store(t, srv, "state", func(o *s3.Options) {
		o.HTTPClient = &http.Client{Transport: lossyTransport{next: http.DefaultTransport, drop: &drop}}
	})
	ttl := 2 * time.Second
	l, err := st.LockBranch(ctx, "master", Holder{RunID: "held", Target: "release"}, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	drop.Store(1)
	deadline := time.Now().Add(4 * ttl)
	for drop.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if drop.Load() > 0 {
		t.Fatal("no renewal was made")
	}
	time.Sleep(2 * ttl) // renewals after the lost answer
	if err := l.Err(); err != nil {
		t.Fatalf("the lease was called lost after a renewal that landed: %v", err)
	}
	if _, err := st.LockBranch(ctx, "master", Holder{RunID: "intruder"}, WithTTL(ttl)); !errors.Is(err, ErrLocked) {
		t.Fatalf("while held, another taker got: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	next, err := st.LockBranch(ctx, "master", Holder{RunID: "next"}, WithTTL(ttl))
	if err != nil {
		t.Fatalf("right after Release, the next run is refused: %v", err)
	}
	next.Release(ctx)
}
