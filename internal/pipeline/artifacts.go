package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// keepLog streams the file at local into the artifact store under key and
// returns where it now is: a path for a folder store, s3://bucket/key for
// S3, the forms a person can open or copy.
func (r *Runner) keepLog(ctx context.Context, key, local string) (string, error) {
	f, err := os.Open(local)
	if err != nil {
		return "", fmt.Errorf("keep log %s: %w", key, err)
	}
	defer f.Close()
	// A log is kept even when a signal stopped the run: it says how far it got.
	if _, err := r.logs.PutStream(context.WithoutCancel(ctx), key, f); err != nil {
		return "", fmt.Errorf("keep log %s in logs.store: %w", key, err)
	}
	return r.artifactLocation(key), nil
}

// artifactLocation is where an artifact key is, for reports and messages.
func (r *Runner) artifactLocation(key string) string {
	if dir := r.cfg.LogsDir(); dir != "" {
		return filepath.Join(dir, filepath.FromSlash(key))
	}
	return strings.TrimSuffix(r.cfg.Logs.Store, "/") + "/" + key
}
