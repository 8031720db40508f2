//go:build !linux

package build

import (
	"context"
	"errors"
)

// errLinuxOnly explains why the embedded daemon is unavailable: buildkitd
// with runc runs on Linux only.
var errLinuxOnly = errors.New("the embedded buildkitd runs on Linux only: set BUILDKIT_HOST or build.buildkit to a BuildKit daemon (e.g. docker-container://buildkitd)")

func overlaySupported(string) error { return errLinuxOnly }

func lockFile(context.Context, string) (func(), error) { return nil, errLinuxOnly }
