package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/exec"
)

func TestNotifierReportsFailedChannelWhileOtherDelivers(t *testing.T) {
	dir := t.TempDir()
	bad := newReceiver(t, func(n int, w http.ResponseWriter) {
		http.Error(w, "broken receiver", http.StatusInternalServerError)
	})
	good := newReceiver(t, nil)
	f, _ := NewFile(dir)
	wBad, err := NewWebhook(bad.URL+"/bad", "", fast(2)...)
	if err != nil {
		t.Fatal(err)
	}
	wGood, err := NewWebhook(good.URL+"/good", "", fast(2)...)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	n, err := NewNotifier([]Channel{wBad, f, wGood}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	err = n.Send(background(t), conflictMessage())
	if err == nil {
		t.Fatal("Send succeeded although one receiver answers 500")
	}
	msg := err.Error()
	for _, want := range []string{"notify sync.conflict for branch release-1.34", wBad.Name(), "500", "2 of 2 attempts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, wGood.Name()) || strings.Contains(msg, f.Name()) {
		t.Errorf("error %q names a channel that delivered", msg)
	}
	if got := len(bad.requests()); got != 2 {
		t.Errorf("failing receiver got %d requests, want 2", got)
	}
	if got := len(good.requests()); got != 1 {
		t.Errorf("good receiver got %d requests, want 1", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("file channel wrote %d files, want 1", len(entries))
	}
	if !strings.Contains(logs.String(), "delivery failed") || !strings.Contains(logs.String(), "delivered") {
		t.Errorf("log lacks the outcomes:\n%s", logs.String())
	}
}

// failing is a channel that always fails, for the one fault a real channel
// cannot be made to show on demand: two failures at once.
type failing struct{ name string }

func (f failing) Name() string { return f.name }
func (f failing) Send(context.Context, Message) error {
	return errors.New(f.name + ": refused")
}

func TestNotifierJoinsEveryFailure(t *testing.T) {
	n, err := NewNotifier([]Channel{failing{"one"}, failing{"two"}})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Send(background(t), conflictMessage())
	if err == nil || !strings.Contains(err.Error(), "one: refused") || !strings.Contains(err.Error(), "two: refused") {
		t.Errorf("error %v: want both failures", err)
	}
}

func TestEventFilter(t *testing.T) {
	conflicts, all := t.TempDir(), t.TempDir()
	var syncHits atomic.Int32
	rc := newReceiver(t, func(int, http.ResponseWriter) { syncHits.Add(1) })
	n, err := New([]Spec{
		{Type: TypeFile, Dir: conflicts, Events: []string{EventSyncConflict}},
		{Type: TypeFile, Dir: all},
		{Type: TypeWebhook, URLEnv: "HOOK", Events: []string{"sync.*"}},
	}, func(k string) string { return map[string]string{"HOOK": rc.URL}[k] }, fast(1)...)
	if err != nil {
		t.Fatal(err)
	}
	build := Message{Event: EventBuildError, Branch: "master", Title: "master: build failed"}
	if err := n.Send(background(t), build); err != nil {
		t.Fatal(err)
	}
	count := func(dir string) int {
		entries, _ := os.ReadDir(dir)
		return len(entries)
	}
	if count(conflicts) != 0 || count(all) != 1 || syncHits.Load() != 0 {
		t.Errorf("after build.error: conflicts=%d all=%d webhook=%d, want 0 1 0", count(conflicts), count(all), syncHits.Load())
	}
	if err := n.Send(background(t), conflictMessage()); err != nil {
		t.Fatal(err)
	}
	if count(conflicts) != 1 || count(all) != 2 || syncHits.Load() != 1 {
		t.Errorf("after sync.conflict: conflicts=%d all=%d webhook=%d, want 1 2 1", count(conflicts), count(all), syncHits.Load())
	}
}

func TestNotifierPreparesMessage(t *testing.T) {
	dir := t.TempDir()
	f, _ := NewFile(dir)
	clock := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	n, err := NewNotifier([]Channel{f},
		WithRedactor(exec.NewRedactor("tok-12345")),
		WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	m := conflictMessage()
	m.Time = time.Time{}
	m.Title = "push failed:\nauth tok-12345"
	m.Sync.Resolution = "git push https://x:tok-12345@example.com/fork.git"
	m.Attachments = []Attachment{{Name: "push.log", ContentType: "text/plain", Data: []byte("token tok-12345\n")}}
	m.Reason = "push as tok-12345 refused"
	m.LogURL = "https://logs.example.com/test.log?token=tok-12345"
	m.NewFailures = []Failure{{Test: "t", Message: "login tok-12345 failed"}}
	if err := n.Send(background(t), m); err != nil {
		t.Fatal(err)
	}
	if m.Sync.Resolution != "git push https://x:tok-12345@example.com/fork.git" {
		t.Error("Send modified the caller's report")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files, want 1", len(entries))
	}
	if !strings.HasPrefix(entries[0].Name(), "20250304T040607Z-") {
		t.Errorf("file name %q: want the clock's time in UTC", entries[0].Name())
	}
	got, err := ReadFile(dir + "/" + entries[0].Name())
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "push failed: auth [REDACTED]" {
		t.Errorf("title %q: want one line, redacted", got.Title)
	}
	if strings.Contains(got.Sync.Resolution, "tok-12345") || strings.Contains(string(got.Attachments[0].Data), "tok-12345") {
		t.Errorf("secret reached the file: %+v", got)
	}
	if strings.Contains(got.Reason+got.LogURL+got.NewFailures[0].Message, "tok-12345") {
		t.Errorf("secret reached the reason, log URL or failure: %+v", got)
	}
	if got.ID == "" || DeliveryID(got) != got.ID {
		t.Errorf("ID %q: want the delivery id set once for every channel", got.ID)
	}
	if !got.Time.Equal(clock) {
		t.Errorf("time %s, want %s", got.Time, clock)
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	for name, opt := range map[string]Option{
		"client":   WithHTTPClient(nil),
		"retry":    WithRetry(0, time.Second),
		"negative": WithRetry(3, -time.Second),
		"timeout":  WithTimeout(0),
		"logger":   WithLogger(nil),
		"redactor": WithRedactor(nil),
		"clock":    WithClock(nil),
	} {
		if _, err := NewNotifier(nil, opt); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: error %v, want ErrConfig", name, err)
		}
	}
	if _, err := NewNotifier([]Channel{nil}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil channel: error %v, want ErrConfig", err)
	}
}

func TestValidEventFilter(t *testing.T) {
	for p, want := range map[string]bool{
		EventSyncConflict: true, "sync.*": true, "release.*": true,
		"sync.confict": false, "*": false, "syn*": false, "deploy.*": false,
	} {
		if got := ValidEventFilter(p); got != want {
			t.Errorf("ValidEventFilter(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestNotifierLedgerSendsOnlyToChannelsThatFailed: after a run where one
// receiver failed, the rerun sends to that one only, with the same
// delivery id.
func TestNotifierLedgerSendsOnlyToChannelsThatFailed(t *testing.T) {
	var healthy atomic.Bool
	flaky := newReceiver(t, func(n int, w http.ResponseWriter) {
		if !healthy.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	good := newReceiver(t, nil)
	ledger := &memLedger{}
	n, err := New([]Spec{{Type: TypeWebhook, URLEnv: "FLAKY"}, {Type: TypeWebhook, URLEnv: "GOOD"}},
		env(map[string]string{"FLAKY": flaky.URL + "/flaky", "GOOD": good.URL + "/good"}), append(fast(2), WithLedger(ledger))...)
	if err != nil {
		t.Fatal(err)
	}
	m := failedMessage(testLog(100))
	if err := n.Send(background(t), m); err == nil {
		t.Fatal("first run: want the flaky receiver's failure")
	}
	healthy.Store(true)
	m.Time = m.Time.Add(time.Hour) // the rerun, an hour later
	if err := n.Send(background(t), m); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if got := len(good.requests()); got != 1 {
		t.Errorf("the receiver that had it got %d requests, want 1", got)
	}
	fr := flaky.requests()
	if len(fr) != 3 {
		t.Fatalf("the failing receiver got %d requests, want 2 failed and 1 delivered", len(fr))
	}
	id := good.requests()[0].header.Get(HeaderDelivery)
	for _, r := range fr {
		if r.header.Get(HeaderDelivery) != id {
			t.Errorf("delivery ids %q and %q for the same event", r.header.Get(HeaderDelivery), id)
		}
	}
	if err := n.Send(background(t), m); err != nil || len(flaky.requests()) != 3 || len(good.requests()) != 1 {
		t.Errorf("a third run sent again (%v)", err)
	}
}

func TestDeliveryID(t *testing.T) {
	m := failedMessage(testLog(100))
	later := m
	later.Time = m.Time.Add(24 * time.Hour)
	later.Attachments = []Attachment{{Name: "test.log", Data: []byte("another run's log")}}
	if DeliveryID(m) != DeliveryID(later) {
		t.Error("the same event at another time, with another log, has another id")
	}
	other := m
	other.ID = "release-1.34/test.failed/fedcba"
	if DeliveryID(other) == DeliveryID(m) {
		t.Error("two events share an id")
	}
	id := DeliveryID(m)
	if !uuidRE.MatchString(id) || id[14] != '8' {
		t.Errorf("id %q is not a version 8 UUID", id)
	}
	if given := (Message{ID: id}); DeliveryID(given) != id {
		t.Error("a UUID given as ID is not kept")
	}
	noID := m
	noID.ID = ""
	noIDLater := later
	noIDLater.ID = ""
	if DeliveryID(noID) != DeliveryID(noIDLater) || DeliveryID(noID) == DeliveryID(m) {
		t.Error("an id derived from content is not stable, or equals the one from ID")
	}
}
