//go:build mage

// Mage targets for hyperfork. Each target loads the config named by
// HYPERFORK_CONFIG (default branches.yaml), runs one engine function and
// turns its outcome into the contract's exit code. No logic lives here.
package main

import (
	"context"
)

// Sync merges new upstream commits into every configured fork branch.
func Sync(ctx context.Context) error { return run(ctx, "sync") }

// Plan says, per branch and stage, what release would do and why, and changes nothing.
func Plan(ctx context.Context) error { return run(ctx, "plan") }

// Status prints a table per branch: heads, commits behind, carries, last results.
func Status(ctx context.Context) error { return run(ctx, "status") }

// Build compiles and packs every branch whose fork head changed, and pushes the images as candidates.
func Build(ctx context.Context) error { return run(ctx, "build") }

// Test runs conformance (test.runner: kubetest2 on kind, or your own command) on each branch's untested candidate, retries failed specs, and records the verdict.
func Test(ctx context.Context) error { return run(ctx, "test") }

// Publish gives each candidate that passed its tests its stable tags, applies retention, and announces the release.
func Publish(ctx context.Context) error { return run(ctx, "publish") }

// Release runs sync, then build, test and publish per branch, skipping every stage whose inputs did not change.
func Release(ctx context.Context) error { return run(ctx, "release") }

// Report prints the last run's outcome per branch and where its JSON report is.
func Report(ctx context.Context) error { return run(ctx, "report") }

// Prune repacks the mirror, removes work folders, old build logs and delivery records no longer needed, and plans image retention (HYPERFORK_APPLY=1 applies it).
func Prune(ctx context.Context) error { return run(ctx, "prune") }
