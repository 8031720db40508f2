package pipeline_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/notify"
	"github.com/hyperfork/hyperfork/internal/registry"
	"github.com/hyperfork/hyperfork/internal/report"
	"github.com/hyperfork/hyperfork/internal/testutil/ocitest"
)

// TestReleasePublishesToDistribution takes three upstream changes to
// published images in a real distribution v3 registry (delete enabled)
// with publish.keep 2: the oldest loses its stable tag; a candidate that
// fails its tests is announced, not promoted, and deletes nothing; prune
// plans, then applies a smaller keep.
func TestReleasePublishesToDistribution(t *testing.T) {
	addr := needBuildKit(t)
	w, host := buildWorld(t, addr)
	dist := ocitest.StartDistribution(t, ocitest.DistributionOptions{})
	// One platform: what is checked here is the registry's side.
	w.yaml = strings.Replace(w.yaml, "platforms: [linux/amd64, linux/arm64]", "platforms: [linux/amd64]", 1)
	w.yaml = strings.Replace(w.yaml, "registry: "+host+"/team/hyperkube\n", "registry: "+dist+"/team/hyperkube\n  keep: 2\n", 1)
	repo, err := registry.Open(registry.Options{Ref: dist + "/team/hyperkube"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// stable maps each stable tag in the registry to its digest.
	stable := func() map[string]string {
		t.Helper()
		entries, err := repo.List(ctx, "hyperkube")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, e := range entries {
			for _, tag := range e.Tags {
				if !registry.IsCandidateTag(tag) {
					out[tag] = e.Digest
				}
			}
		}
		return out
	}
	digestOf := func(ref string) string { _, d, _ := strings.Cut(ref, "@"); return d }

	var published []*report.Branch
	for round := range 3 {
		if round > 0 {
			w.upstreamCommit("master", fmt.Sprintf("upstream: change %d", round), map[string]string{fmt.Sprintf("cmd/alpha/c%d.go", round): "package main\n"})
		}
		code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
		m := w.branch(rep, "master")
		if code != 0 || m.Publish == nil || m.Publish.Status != report.PublishPublished || !strings.HasPrefix(m.Publish.Image, repo.ImageRef("hyperkube")+"@sha256:") {
			t.Fatalf("round %d: exit %d, publish %+v\n%s", round, code, m.Publish, out)
		}
		published = append(published, m)
		tags := stable()
		if tags[registry.BranchTag("master")] != digestOf(m.Publish.Image) || tags[registry.StableTag(m.Build.Version)] != digestOf(m.Publish.Image) {
			t.Fatalf("round %d: the branch and version tags do not name the published digest %s: %v", round, m.Publish.Image, tags)
		}
	}
	// keep 2: the first image lost its stable tag, the newest two kept theirs.
	tags := stable()
	oldest := registry.StableTag(published[0].Build.Version)
	if _, ok := tags[oldest]; ok {
		t.Errorf("the oldest image's tag %s survived keep 2: %v", oldest, tags)
	}
	if !slices.ContainsFunc(published[2].Publish.Deleted, func(ref string) bool { return strings.Contains(ref, ":"+oldest+"@") }) {
		t.Errorf("the report's deleted is %q, want it to hold %s", published[2].Publish.Deleted, oldest)
	}
	kept := []string{registry.StableTag(published[1].Build.Version), registry.StableTag(published[2].Build.Version)}
	for _, k := range kept {
		if tags[k] == "" {
			t.Errorf("kept tag %s is gone: %v", k, tags)
		}
	}

	// A candidate that fails its tests: not promoted, and nothing of the
	// kept set deleted.
	os.WriteFile(filepath.Join(w.dir, "MODE"), []byte("fail"), 0o644)
	w.upstreamCommit("master", "upstream: breaks beta", map[string]string{"cmd/beta/broken.go": "package main\n"})
	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	m := w.branch(rep, "master")
	if code != report.ExitTests || m.Publish == nil || m.Publish.Status != report.PublishNotPublished || len(m.Publish.Deleted) != 0 {
		t.Fatalf("failing candidate: exit %d, publish %+v\n%s", code, m.Publish, out)
	}
	after := stable()
	if !maps(after, tags) {
		t.Errorf("a failing candidate changed the stable tags: before %v, after %v", tags, after)
	}
	if _, ok := after[registry.StableTag(m.Build.Version)]; ok {
		t.Errorf("the failed candidate %s got a stable tag", m.Build.Version)
	}

	// prune alone: a dry run prints the plan and deletes nothing; applied
	// with keep 1 it deletes the older kept image, never the newest.
	w.yaml = strings.Replace(w.yaml, "  keep: 2\n", "  keep: 1\n", 1)
	code, _, out = w.run("prune", "HYPERFORK_BRANCHES=master")
	if code != 0 || !strings.Contains(out, "retention plan") || !strings.Contains(out, kept[0]) {
		t.Fatalf("prune dry run: exit %d\n%s", code, out)
	}
	if got := stable(); !maps(got, tags) {
		t.Fatalf("prune's dry run deleted: before %v, after %v", tags, got)
	}
	code, _, out = w.run("prune", "HYPERFORK_BRANCHES=master", "HYPERFORK_APPLY=1")
	got := stable()
	if code != 0 || got[kept[0]] != "" || got[kept[1]] == "" || got[registry.BranchTag("master")] != digestOf(published[2].Publish.Image) {
		t.Fatalf("prune applied with keep 1: exit %d, stable tags %v\n%s", code, got, out)
	}
	// Only the tag went: its candidate tag, younger than keepCandidates,
	// still names the manifest, so the plan keeps it and says why.
	if !strings.Contains(out, "manifest stays: tagged "+registry.CandidateTag("master", published[1].Build.Commit)) {
		t.Errorf("the plan does not say why the manifest stays:\n%s", out)
	}
	if _, err := repo.Get(ctx, published[1].Publish.Image); err != nil {
		t.Errorf("the manifest a candidate tag still names was deleted: %v", err)
	}

	// Candidates kept for one second: their old tags go, and with them the
	// manifests no tag names any more; the newest published image and the
	// newest candidate stay.
	w.yaml = strings.Replace(w.yaml, "  keep: 1\n", "  keep: 1\n  keepCandidates: 1s\n", 1)
	time.Sleep(2 * time.Second)
	code, _, out = w.run("prune", "HYPERFORK_BRANCHES=master", "HYPERFORK_APPLY=1")
	if code != 0 {
		t.Fatalf("prune with keepCandidates 1s: exit %d\n%s", code, out)
	}
	if _, err := repo.Get(ctx, published[1].Publish.Image); err == nil {
		t.Errorf("the manifest no tag names any more, %s, is still in the registry\n%s", published[1].Publish.Image, out)
	}
	for _, ref := range []string{published[2].Publish.Image, m.Build.Image} {
		if _, err := repo.Get(ctx, ref); err != nil {
			t.Errorf("%s (the newest published image or the newest candidate) is gone: %v\n%s", ref, err, out)
		}
	}
	if got := stable(); got[registry.BranchTag("master")] != digestOf(published[2].Publish.Image) {
		t.Errorf("the branch tag moved: %v", got)
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestAnnouncementThatFailsIsSentAgain publishes a passed candidate while
// the webhook receiver refuses every delivery: the tags stand and the
// report says published, the run exits 1, and the file channel has the
// message. The next run sends it to the webhook alone (the delivery ledger
// in the state store), and the one after sends nothing.
func TestAnnouncementThatFailsIsSentAgain(t *testing.T) {
	addr := needBuildKit(t)
	w, _ := buildWorld(t, addr)
	w.yaml = strings.Replace(w.yaml, "platforms: [linux/amd64, linux/arm64]", "platforms: [linux/amd64]", 1)
	var (
		mu         sync.Mutex
		down       = true
		refused    int
		deliveries []string // event and delivery id of each accepted delivery
	)
	recv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			refused++
			// Final, not retried: the run gives up on this channel at once.
			http.Error(rw, "receiver disabled", http.StatusForbidden)
			return
		}
		deliveries = append(deliveries, req.Header.Get(notify.HeaderEvent)+" "+req.Header.Get(notify.HeaderDelivery))
	}))
	defer recv.Close()
	w.env["HOOK_URL"] = recv.URL + "/hooks"
	w.notify = "  - type: webhook\n    urlEnv: HOOK_URL\n"
	os.WriteFile(filepath.Join(w.dir, "MODE"), []byte("pass"), 0o644)
	published := func() int {
		n := 0
		for _, m := range w.notifications() {
			if m.Event == notify.EventReleasePublished {
				n++
			}
		}
		return n
	}

	code, rep, out := w.run("release", "HYPERFORK_BRANCHES=master")
	m := w.branch(rep, "master")
	if code != report.ExitFailed || m.Publish == nil || m.Publish.Status != report.PublishPublished || len(m.Publish.Tags) != 2 ||
		!strings.Contains(m.Publish.Reason, "announcement failed") || !strings.Contains(m.Error, "403") {
		t.Fatalf("release while the webhook refuses: exit %d, publish %+v, error %q\n%s", code, m.Publish, m.Error, out)
	}
	mu.Lock()
	if refused == 0 || len(deliveries) != 0 {
		t.Fatalf("the webhook refused %d and took %v", refused, deliveries)
	}
	down = false
	mu.Unlock()
	if n := published(); n != 1 {
		t.Fatalf("the file channel has %d release.published messages, want 1", n)
	}

	code, rep, out = w.run("release", "HYPERFORK_BRANCHES=master")
	if m := w.branch(rep, "master"); code != 0 || m.Publish.Status != report.PublishPublished {
		t.Fatalf("the next release: exit %d, publish %+v\n%s", code, m.Publish, out)
	}
	mu.Lock()
	if len(deliveries) != 1 || !strings.HasPrefix(deliveries[0], notify.EventReleasePublished+" ") {
		t.Errorf("the webhook took %v after it came back, want one release.published", deliveries)
	}
	mu.Unlock()
	if n := published(); n != 1 {
		t.Errorf("the file channel got the message again: %d, want 1", n)
	}

	if code, _, out := w.run("release", "HYPERFORK_BRANCHES=master"); code != 0 {
		t.Fatalf("a no-op release: exit %d\n%s", code, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 1 {
		t.Errorf("a no-op release sent again: %v", deliveries)
	}
}
