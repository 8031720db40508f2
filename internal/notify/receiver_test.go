package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

// request is what a receiver saw of one delivery attempt.
type request struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is a real HTTP server on loopback that records every request and
// answers the n-th (from 1) with answer(n, w).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{header: r.Header.Clone(), body: body, at: time.Now()})
		n := len(rc.reqs)
		rc.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(n, w)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// fast are options that keep retry tests quick.
func fast(attempts int) []Option {
	return []Option{WithRetry(attempts, time.Millisecond), WithTimeout(2 * time.Second)}
}

// conflictMessage is a message as the sync stage sends it.
func conflictMessage() Message {
	return Message{
		Event:  EventSyncConflict,
		Branch: "release-1.34",
		Title:  "release-1.34: upstream does not merge: 1 conflicted path",
		Text: "Conflicted paths:\n  pkg/kubelet/kubelet.go\n" +
			"    upstream: 1a2b3c4 kubelet: fix restart\n    fork:     5d6e7f8 carry: our patch\n\n" +
			"Resolve:\n  git fetch upstream && git merge upstream/release-1.34\n",
		Status: report.SyncConflict,
		Sync: &report.Sync{
			Status:         report.SyncConflict,
			UpstreamCommit: "1a2b3c4",
			ForkCommit:     "5d6e7f8",
			Conflicts: []report.Conflict{{
				Path:     "pkg/kubelet/kubelet.go",
				Kind:     "content",
				Upstream: []report.Commit{{Hash: "1a2b3c4", Subject: "kubelet: fix restart", Author: "a@example.com"}},
				Carries:  []report.Commit{{Hash: "5d6e7f8", Subject: "carry: our patch", Author: "b@example.com"}},
			}},
			Resolution: "git fetch upstream && git merge upstream/release-1.34",
		},
		Attachments: []Attachment{{Name: "merge.txt", ContentType: "text/plain", Data: []byte("CONFLICT (content)\n")}},
		Time:        time.Date(2025, 1, 2, 6, 0, 0, 123, time.UTC),
	}
}

func background(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// failedMessage is a message as the publish stage sends it for a candidate
// whose tests failed, with the test log attached.
func failedMessage(log []byte) Message {
	return Message{
		Event:  EventTestFailed,
		ID:     "release-1.34/test.failed/0123abcd4567ef0123abcd4567ef0123abcd45",
		Branch: "release-1.34",
		Title:  "hyperfork: release-1.34 at 0123abcd4567 has 2 new test failures; not published",
		Text:   "The candidate was not promoted.\nRerun: go tool mage release\n",
		Status: report.TestFailed,

		ForkCommit:     "0123abcd4567ef0123abcd4567ef0123abcd45",
		UpstreamCommit: "89abcdef0123456789abcdef0123456789abcdef",
		Counts:         &Counts{Passed: 410, Failed: 2, Flaky: 1, Skipped: 37},
		NewFailures: []Failure{
			{
				Test:    "[sig-network] Services should serve endpoints on same port and different protocols",
				Message: "timed out waiting for the condition",
				Suspects: []Commit{
					{Hash: "1111111111111111111111111111111111111111", Subject: "kube-proxy: reorder <nft> rules & chains", Side: SideUpstream},
					{Hash: "2222222222222222222222222222222222222222", Subject: "carry: our iptables patch", Side: SideCarry},
				},
			},
			{Test: "[sig-apps] Deployment should run the lifecycle of a Deployment", Message: "expected 3 replicas, got 2"},
		},
		Reason: "2 new failures",
		Image:  "registry.example.com/team/hyperkube@sha256:" + strings.Repeat("ab", 32),
		LogURL: "https://logs.example.com/release-1.34/20250102T060000Z/test.log",
		Attachments: []Attachment{
			{Name: "test.log", ContentType: "text/plain", Data: log},
		},
		Time: time.Date(2025, 1, 2, 6, 0, 0, 0, time.UTC),
	}
}

// testLog returns n bytes of a plausible, compressible test log.
func testLog(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "I0102 06:%02d:%02d.%06d   %d e2e.go:%d] STEP: spec %d of 460 [sig-network] Services should work\n", i/60%60, i%60, i*7919%1000000, 4000+i%97, 100+i%900, i%460)
	}
	return b.Bytes()[:n]
}
