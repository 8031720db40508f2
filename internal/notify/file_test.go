package notify

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hyperfork/hyperfork/internal/report"
)

func TestFileWritesOneFilePerMessageReadableBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "notifications", "nested") // created by Send
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	conflict := conflictMessage()
	published := Message{
		Event:   EventReleasePublished,
		Branch:  "team/feature", // must not become a subfolder
		Title:   "team/feature: published",
		Text:    "All 412 conformance tests passed.",
		Status:  report.BuildBuilt,
		Pushed:  true,
		Image:   "registry.example.com/team/hyperkube@sha256:" + strings.Repeat("ab", 32),
		Test:    &report.Test{Status: "passed", Passed: 412, Log: "logs/team_feature/1"},
		Publish: &report.Publish{Status: "published", Image: "registry.example.com/team/hyperkube@sha256:ab", Tags: []string{"v1.34.1-hf.1", "team_feature"}},
		Attachments: []Attachment{
			{Name: "e2e.log", ContentType: "text/plain", Data: []byte("ok\n")},
			{Name: "junit.tar.gz", ContentType: "application/gzip", Data: []byte{0x1f, 0x8b, 0, 0xff}},
		},
		Time: conflict.Time,
	}
	sent := []Message{conflict, published}
	for _, m := range sent {
		if err := f.Send(background(t), m); err != nil {
			t.Fatal(err)
		}
	}
	// The same message again is the same file: no duplicate.
	if err := f.Send(background(t), conflict); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(sent) {
		t.Fatalf("folder holds %d entries, want %d (no temporary files left)", len(entries), len(sent))
	}
	nameRE := regexp.MustCompile(`^20250102T060000Z-(release-1\.34-sync\.conflict|team_feature-release\.published)-[0-9a-f]{8}\.json$`)
	var got []Message
	for _, e := range entries {
		if !nameRE.MatchString(e.Name()) {
			t.Errorf("file name %q does not match %s", e.Name(), nameRE)
		}
		m, err := ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	// ReadDir sorts by name; "release-…" sorts before "team_…".
	if !reflect.DeepEqual(got, sent) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, sent)
	}
}

func TestFileContentIsJSONWithText(t *testing.T) {
	f := &File{Dir: t.TempDir()}
	m := conflictMessage()
	path, err := f.Write(background(t), m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Stable keys are part of the contract with receivers.
	for _, key := range []string{`"event": "sync.conflict"`, `"branch": "release-1.34"`, `"title":`, `"text":`,
		`"pushed": false`, `"sync": {`, `"attachments": [`, `"contentType": "text/plain"`, `"data": "Q09ORkxJQ1QgKGNvbnRlbnQpCg=="`, `"time": "2025-01-02T06:00:00.000000123Z"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("file content lacks %s:\n%s", key, b)
		}
	}
}

func TestFileErrorNamesFolder(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := &File{Dir: filepath.Join(blocker, "sub")}
	err := f.Send(background(t), conflictMessage())
	if err == nil || !strings.HasPrefix(err.Error(), "file "+f.Dir+":") {
		t.Errorf("error %v: want it to start with the channel name", err)
	}
}

// TestFileWritesADeliveryOnce: the same event announced again by a later
// run (one killed after the file was written, before the ledger recorded
// it) is the file already there, though its time differs; another event of
// the same second is a file of its own.
func TestFileWritesADeliveryOnce(t *testing.T) {
	f := &File{Dir: t.TempDir()}
	m := conflictMessage()
	m.ID = "release-1.34/release.published/0123abcd"
	first, err := f.Write(background(t), m)
	if err != nil {
		t.Fatal(err)
	}
	again := m
	again.Time = m.Time.Add(time.Hour)
	again.Text = "the rerun's text"
	second, err := f.Write(background(t), again)
	if err != nil || second != first {
		t.Fatalf("the rerun wrote %s (%v), want the first run's %s", second, err, first)
	}
	other := m
	other.ID = "release-1.34/release.published/4567ef01"
	third, err := f.Write(background(t), other)
	if err != nil || third == first {
		t.Fatalf("another event: %s (%v), want a file of its own", third, err)
	}
	if entries, _ := os.ReadDir(f.Dir); len(entries) != 2 {
		t.Fatalf("%d files, want 2", len(entries))
	}
	if got, err := ReadFile(first); err != nil || got.Text != m.Text {
		t.Fatalf("the first file was rewritten: %q (%v)", got.Text, err)
	}
}
