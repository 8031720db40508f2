//go:build !linux

package build

import "github.com/tonistiigi/fsutil"

// newSourceFS is fsutil's own FS where sourceFS's metadata is not read.
func newSourceFS(root string) (fsutil.FS, error) { return fsutil.NewFS(root) }
