package s3test

import "syscall"

// sysProcAttr kills the server when the test process dies, so a test killed
// by a timeout leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
