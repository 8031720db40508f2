//go:build mage

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/hyperfork/hyperfork/internal/config"
	"github.com/hyperfork/hyperfork/internal/pipeline"
)

// Matrix prints the fork branches release would run, as a JSON list on stdout (HYPERFORK_BRANCHES filters), for a CI's per-branch jobs.
func Matrix(ctx context.Context) error {
	path := os.Getenv("HYPERFORK_CONFIG")
	if path == "" {
		path = "branches.yaml"
	}
	// Checked as release checks it: a config release would refuse fails
	// here, before any per-branch job starts.
	cfg, err := config.Load(path)
	if err != nil {
		return mg.Fatal(2, fmt.Errorf("%w\nfix the config and run again; nothing was done", err))
	}
	branches, err := cfg.SelectBranches(pipeline.OptionsFromEnv(os.Getenv).Branches)
	if err != nil {
		return mg.Fatal(2, fmt.Errorf("HYPERFORK_BRANCHES: %w", err))
	}
	names := make([]string, len(branches))
	for i, b := range branches {
		names[i] = b.Name
	}
	out, err := json.Marshal(names)
	if err != nil {
		return mg.Fatal(1, err)
	}
	_, err = fmt.Println(string(out))
	return err
}
