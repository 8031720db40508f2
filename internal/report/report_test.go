package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestCombineFollowsTheContractsPrecedence(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{nil, ExitOK},
		{[]int{0, 0}, ExitOK},
		{[]int{3, 0}, ExitConflict},
		{[]int{3, 4}, ExitTests},
		{[]int{4, 1, 3}, ExitFailed},
		{[]int{1, 5}, ExitLocked},
		{[]int{5, 2, 1}, ExitConfig},
	} {
		if got := Combine(tc.codes...); got != tc.want {
			t.Errorf("Combine(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}

func TestReportKeysAreTheContracts(t *testing.T) {
	r := &Report{Target: "release", ExitCode: 3}
	b := r.Branch("master")
	b.Sync = &Sync{Status: SyncConflict, Conflicts: []Conflict{{Path: "a.go", Kind: "content"}}, Resolution: "git merge"}
	b.Build = &Build{Status: BuildUpToDate, Image: "r@sha256:00", Platforms: []string{},
		Images: map[string]string{"hyperkube": "r@sha256:00"}, Artifacts: map[string]string{"server-linux-amd64": "logs/x.tar.gz"}}
	// The zero values a skipped or failed stage leaves must still carry
	// every key the contract names.
	b.Test = &Test{Status: TestSkipped}
	b.Publish = &Publish{Status: PublishSkipped}
	if r.Branch("master") != b {
		t.Fatal("Branch added a second entry for the same name")
	}
	p := filepath.Join(t.TempDir(), "out", "report.json")
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	br := m["branches"].([]any)[0].(map[string]any)
	sync := br["sync"].(map[string]any)
	for _, k := range []string{"status", "upstreamCommit", "forkCommit", "mergedCommits", "conflicts", "resolution"} {
		if _, ok := sync[k]; !ok {
			t.Errorf("sync lacks %q: %s", k, raw)
		}
	}
	for stage, keys := range map[string][]string{
		"build":   {"status", "commit", "image", "platforms", "images", "artifacts"},
		"test":    {"status", "passed", "failed", "skipped", "log", "new", "flaky", "infra"},
		"publish": {"status", "image", "tags", "deleted", "kept", "reason"},
	} {
		obj, _ := br[stage].(map[string]any)
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s lacks %q: %s", stage, k, raw)
			}
		}
	}
	if m["target"] != "release" || m["exitCode"].(float64) != 3 || br["name"] != "master" {
		t.Errorf("report %s", raw)
	}
	if _, ok := br["error"]; !ok {
		t.Errorf("branch lacks error: %s", raw)
	}
}
