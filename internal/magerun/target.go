package magerun

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Interrupted is the cause of a target's context ending by a signal.
type Interrupted struct{ Signal os.Signal }

// Error names the signal the way people read it.
func (e *Interrupted) Error() string {
	name := e.Signal.String()
	if s, ok := e.Signal.(syscall.Signal); ok {
		switch s {
		case syscall.SIGINT:
			name = "SIGINT"
		case syscall.SIGTERM:
			name = "SIGTERM"
		case syscall.SIGHUP:
			name = "SIGHUP"
		}
	}
	return "interrupted by " + name
}

// cleanupLimit bounds how long a target may take to stop after a signal:
// long enough to end its children and write its report, short enough that a
// supervisor's own kill timeout (docker stop: 10 s) is rarely reached first.
const cleanupLimit = 8 * time.Second

// TargetContext returns a context that ends, with an *Interrupted cause, on
// the first SIGINT, SIGTERM or SIGHUP, and when the parent process (mage)
// dies. A target that has not returned cleanupLimit later is ended with exit
// code 1. stop releases the signal handlers.
func TargetContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	dieWithParent()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cancel(&Interrupted{Signal: sig})
			select {
			case <-done:
			case <-time.After(cleanupLimit):
				fmt.Fprintf(os.Stderr, "hyperfork: still stopping %s after the signal; exiting\n", cleanupLimit)
				os.Exit(1)
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	}
}
