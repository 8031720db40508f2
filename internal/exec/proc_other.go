//go:build !unix

package exec

import (
	"os"
	"syscall"
)

// sysProcAttr is nil: there are no process groups to put a child in here.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// lockThread is false: without Pdeathsig no thread needs holding.
const lockThread = false

// signalGroup kills p itself, whatever sig: there is no SIGTERM to send,
// and its children are not reached.
func signalGroup(p *os.Process, _ syscall.Signal) error { return p.Kill() }
