//go:build linux

package build

import (
	"os"
	"syscall"
)

// fileIdentity tells a file from the one it replaced (another inode) or
// from what it was before a write (another size or modification time). The
// change time is left out on purpose: a hard link to the binary, such as
// registry.Pack's layer cache keeps, changes it without changing the file.
type fileIdentity struct {
	Dev, Ino, Size uint64
	MtimeNs        int64
}

func identityOf(fi os.FileInfo) (fileIdentity, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}, false
	}
	return fileIdentity{Dev: uint64(st.Dev), Ino: st.Ino, Size: uint64(st.Size), MtimeNs: fi.ModTime().UnixNano()}, true
}
