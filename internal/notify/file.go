package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// File is a channel that writes each message as one JSON file into Dir,
// which it creates if missing. It is the channel that always works: no
// network, and the folder is the record of what was announced.
//
// A file is named "<UTC time>-<branch>-<event>-<hash>.json", for example
// "20250101T060000Z-release-1.34-sync.conflict-3f2a9c1d.json", so that `ls`
// lists messages in time order and says what each is about; the hash is of
// the message's delivery id (DeliveryID), which keeps two messages of the
// same second apart. A message whose delivery id already has a file is not
// written again, whenever it was written: a run killed after writing it and
// before its Ledger recorded the delivery announces again on the next run,
// and the folder still holds one file per event. The content is the Message's JSON,
// indented, including the text and the attachments (base64); only JSON is
// written, so a reader never pairs files, and `jq -r .text FILE` prints the
// text for a person. Files appear atomically: a reader never sees half of one.
type File struct {
	// Dir is the folder for the files. A relative Dir is relative to the
	// process's working directory; config resolves it beforehand.
	Dir string
}

var _ Channel = (*File)(nil)

// NewFile returns a File channel writing into dir.
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, configErrorf("notify file: the channel needs a folder (dir)")
	}
	return &File{Dir: dir}, nil
}

// Name returns "file <dir>".
func (f *File) Name() string { return "file " + f.Dir }

// Send writes m into a new file and returns its error naming the folder.
func (f *File) Send(ctx context.Context, m Message) error {
	_, err := f.Write(ctx, m)
	return err
}

// Write writes m and returns the path of the file, for callers that record
// where a message went.
func (f *File) Write(ctx context.Context, m Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", fmt.Errorf("%s: encode %s message: %w", f.Name(), m.Event, err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	name := FileName(m)
	if path, ok := f.written(m, name); ok {
		return path, nil
	}
	path := filepath.Join(f.Dir, name)
	if err := writeAtomic(path, b); err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return path, nil
}

// unsafeNameRE matches what may not appear in a file name part: a branch
// such as "team/feature" must not become a subfolder.
var unsafeNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// written returns the file that already holds m's delivery, found by the
// part of name after its time and confirmed by the id inside, since eight
// hex digits can collide.
func (f *File) written(m Message, name string) (string, bool) {
	_, suffix, _ := strings.Cut(name, "Z-")
	entries, err := os.ReadDir(f.Dir)
	if err != nil {
		return "", false
	}
	id := DeliveryID(m)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), "-"+suffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(f.Dir, e.Name())
		if old, err := ReadFile(p); err == nil && DeliveryID(old) == id {
			return p, true
		}
	}
	return "", false
}

// FileName returns the name the File channel gives to m.
func FileName(m Message) string {
	sum := sha256.Sum256([]byte(DeliveryID(m)))
	t := m.Time
	if t.IsZero() {
		t = time.Now()
	}
	part := func(s, empty string) string {
		if s = unsafeNameRE.ReplaceAllString(s, "_"); s == "" {
			return empty
		}
		return s
	}
	return fmt.Sprintf("%s-%s-%s-%s.json",
		t.UTC().Format("20060102T150405Z"),
		part(m.Branch, "_"), part(m.Event, "event"),
		hex.EncodeToString(sum[:4]))
}

// writeAtomic writes b to path through a temporary file in the same folder
// and a rename. The temporary name starts with a dot so that readers
// listing "*.json" never pick it up.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadFile reads a message written by the File channel.
func ReadFile(path string) (Message, error) {
	var m Message
	b, err := os.ReadFile(path)
	if err != nil {
		return m, fmt.Errorf("read notification: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("read notification %s: %w", path, err)
	}
	return m, nil
}
