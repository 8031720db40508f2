package build

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// heldFile is the record, in each platform folder of the output folder, of
// the binaries Compile put there: each one's digest and the identity of the
// file it wrote. The next build tells BuildKit these digests, so that
// binaries that did not change are not exported again.
const heldFile = ".hyperfork-held.json"

// heldRecord is one binary of heldFile.
type heldRecord struct {
	Digest string       `json:"digest"`
	File   fileIdentity `json:"file"`
}

// readHeld returns the digests of the binaries in dir that are still the
// files Compile recorded: a binary replaced, rewritten or touched since is
// left out, and so exported again. Without a record, or on a system where a
// file's identity cannot be read, it returns nothing: every binary is
// exported.
func readHeld(dir string) map[string]string {
	b, err := os.ReadFile(filepath.Join(dir, heldFile))
	if err != nil {
		return nil
	}
	var rec map[string]heldRecord
	if json.Unmarshal(b, &rec) != nil {
		return nil
	}
	out := map[string]string{}
	for name, r := range rec {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if id, ok := identityOf(fi); ok && id == r.File {
			out[name] = r.Digest
		}
	}
	return out
}

// writeHeld records the binaries of dir with their digests. A binary whose
// identity cannot be read is not recorded.
func writeHeld(dir string, digests map[string]string) error {
	rec := map[string]heldRecord{}
	for name, d := range digests {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if id, ok := identityOf(fi); ok {
			rec[name] = heldRecord{Digest: d, File: id}
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, heldFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, heldFile))
}
