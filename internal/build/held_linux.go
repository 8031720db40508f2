//go:build linux

package build

import (
	"os"
	"syscall"
)

// fileIdentity tells a file from the one it replaced or was before a write:
// any write, rename or replacement changes the change time, a replacement
// the inode.
type fileIdentity struct {
	Dev, Ino, Size   uint64
	MtimeNs, CtimeNs int64
}

func identityOf(fi os.FileInfo) (fileIdentity, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}, false
	}
	return fileIdentity{Dev: uint64(st.Dev), Ino: st.Ino, Size: uint64(st.Size),
		MtimeNs: fi.ModTime().UnixNano(), CtimeNs: st.Ctim.Nano()}, true
}
