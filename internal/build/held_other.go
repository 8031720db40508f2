//go:build !linux

package build

import "os"

// fileIdentity is empty where hyperfork does not read a file's change time:
// every binary is exported on every build there.
type fileIdentity struct{}

func identityOf(os.FileInfo) (fileIdentity, bool) { return fileIdentity{}, false }
