//go:build mage

package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/hyperfork/hyperfork/internal/bench"
)

// Bench measures sync against plain git on a generated 20,000-commit repository and prints ratios and peak memory.
func Bench(ctx context.Context) error {
	o, err := bench.SyncOptionsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	_, err = bench.Sync(ctx, os.Stdout, o)
	return err
}
