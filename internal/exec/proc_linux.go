package exec

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr starts a child in its own process group, so that cancelling
// reaches what it starts in turn (git's ssh and git-remote-https, a test
// script's processes), and has the kernel SIGKILL it if hyperfork dies
// without cancelling (a crash, a SIGKILL).
//
// Pdeathsig fires when the thread that started the child ends, not the
// process; the runtime ends a thread only when a goroutine exits locked to
// it, so Run locks its goroutine to the thread from Start until Wait returns
// (lockThread). The signal reaches the child only: its own children see
// their pipes close and exit, as git's do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// lockThread says whether Run must hold its thread for Pdeathsig's sake.
const lockThread = true

// signalGroup sends sig to p's process group.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if err := syscall.Kill(-p.Pid, sig); errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	} else if err != nil {
		return err
	}
	return nil
}
