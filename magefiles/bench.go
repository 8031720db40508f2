//go:build mage

package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/hyperfork/hyperfork/internal/bench"
)

// Bench measures sync against plain git and build against a host go build, and prints ratios (HYPERFORK_BENCH=sync|build; release: a no-op release with state in a folder and in S3; k8s: the real Kubernetes tree).
func Bench(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	which := os.Getenv("HYPERFORK_BENCH")
	if which == "" || which == "sync" {
		o, err := bench.SyncOptionsFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		o.Logger = log
		if _, err := bench.Sync(ctx, os.Stdout, o); err != nil {
			return err
		}
	}
	if which == "" || which == "build" {
		o, err := bench.BuildOptionsFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		o.Logger = log
		if _, err := bench.Build(ctx, os.Stdout, o); err != nil {
			return err
		}
	}
	if which == "k8s" {
		// Opt in only: it makes the real Kubernetes tree (tens of minutes cold).
		o, err := bench.K8sOptionsFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		o.Logger = log
		if _, err := bench.K8s(ctx, os.Stdout, o); err != nil {
			return err
		}
	}
	if which == "release" {
		o, err := bench.ReleaseOptionsFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		o.Logger = log
		if _, err := bench.Release(ctx, os.Stdout, o); err != nil {
			return err
		}
	}
	return nil
}
