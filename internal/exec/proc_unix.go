//go:build unix && !linux

package exec

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr starts a child in its own process group, so that cancelling
// reaches what it starts in turn. Only Linux can also have the kernel kill
// it when hyperfork dies; here a child of a crashed run lives on.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// lockThread is false: without Pdeathsig no thread needs holding.
const lockThread = false

// signalGroup sends sig to p's process group.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if err := syscall.Kill(-p.Pid, sig); errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	} else if err != nil {
		return err
	}
	return nil
}
