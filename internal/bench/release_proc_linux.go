package bench

import "syscall"

// releaseChildAttr makes the kernel kill a server the benchmark started
// when the benchmark's process dies, so a run stopped hard leaves none
// behind.
func releaseChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
