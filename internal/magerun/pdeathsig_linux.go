package magerun

import (
	osexec "os/exec"
	"runtime"
	"syscall"
)

// dieWithParent asks the kernel for SIGTERM when this process's parent
// dies: when `go tool` is killed with -9, nobody is left to forward a signal.
func dieWithParent() {
	setPdeathsig(syscall.SIGTERM)
}

// start starts c in its own process group, to receive SIGTERM if this
// process dies. Pdeathsig fires when the *thread* that forked the child
// exits, so the fork happens on a thread locked for the call; Go ends a
// thread only when a goroutine exits while locked to it, which this one
// does not.
func start(c *osexec.Cmd) error {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return c.Start()
}

// setPdeathsig is prctl(PR_SET_PDEATHSIG, sig) for the calling process.
func setPdeathsig(sig syscall.Signal) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(sig), 0)
}
