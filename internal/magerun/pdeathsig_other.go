//go:build !linux

package magerun

import (
	osexec "os/exec"
	"syscall"
)

// dieWithParent has no equivalent outside Linux; signals still reach the
// targets through this process.
func dieWithParent() {}

func start(c *osexec.Cmd) error {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c.Start()
}
