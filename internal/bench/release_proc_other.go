//go:build !linux

package bench

import "syscall"

// releaseChildAttr is a no-op where Pdeathsig does not exist: close stops
// the server.
func releaseChildAttr() *syscall.SysProcAttr { return nil }
