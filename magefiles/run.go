//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/hyperfork/hyperfork/internal/magerun"
	"github.com/hyperfork/hyperfork/internal/pipeline"
)

// run runs one target and maps its report's exit code onto mage's. A
// signal ends the run through its context.
func run(ctx context.Context, target string) error {
	ctx, stop := magerun.TargetContext(ctx)
	defer stop()
	code, err := pipeline.Main(ctx, target, pipeline.Env{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	if code == 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("%s finished with exit code %d", target, code)
	}
	return mg.Fatal(code, err)
}
