package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hyperfork/hyperfork/internal/store"
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

// artifactKey is the key of a location artifactLocation made, or "" for a
// location outside logs.store (a record from before it moved).
func (r *Runner) artifactKey(loc string) string {
	if dir := r.cfg.LogsDir(); dir != "" {
		rel, err := filepath.Rel(dir, loc)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return ""
		}
		return filepath.ToSlash(rel)
	}
	key, ok := strings.CutPrefix(loc, strings.TrimSuffix(r.cfg.Logs.Store, "/")+"/")
	if !ok {
		return ""
	}
	return key
}

// artifactLink is a link a person can open for the artifact at loc: a
// presigned GET for S3 (valid for store.DefaultLinkTTL), the path itself
// for a folder; loc when no link can be made.
func (r *Runner) artifactLink(ctx context.Context, loc string) string {
	key := r.artifactKey(loc)
	if key == "" || r.cfg.LogsDir() != "" {
		return loc
	}
	link, err := r.logs.Link(ctx, key, store.DefaultLinkTTL)
	if err != nil {
		r.log.Warn("link to artifact", "location", loc, "err", err)
		return loc
	}
	return link
}

// maxAttached bounds the log read into memory for a notification; each
// channel then applies its own limit (email: maxAttachment, gzipped).
const maxAttached = 64 << 20

// readArtifact reads the artifact at loc from logs.store, whichever
// machine wrote it: up to maxAttached bytes, and whether it was cut.
func (r *Runner) readArtifact(ctx context.Context, loc string) ([]byte, bool, error) {
	key := r.artifactKey(loc)
	if key == "" {
		return nil, false, fmt.Errorf("%s is not in logs.store %s", loc, r.cfg.Logs.Store)
	}
	rc, err := r.logs.Open(ctx, key)
	if err != nil {
		return nil, false, fmt.Errorf("read %s from logs.store: %w", loc, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxAttached+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s from logs.store: %w", loc, err)
	}
	if len(data) > maxAttached {
		return data[:maxAttached], true, nil
	}
	return data, false, nil
}
