package store

import (
	"context"
	"time"
)

// BranchState is what hyperfork remembers about one branch between runs.
type BranchState struct {
	Sync  SyncState  `json:"sync"`
	Build BuildState `json:"build"`
	// Test is the last test run's summary.
	Test TestState `json:"test"`
	// Publish is the last publish.
	Publish PublishState `json:"publish"`
	// Stages records, per stage after sync, the key of the inputs it last
	// processed: the one answer to "run or skip?" for release, plan and the
	// single-stage targets.
	Stages map[string]StageRecord `json:"stages,omitempty"`
}

// StageRecord is what a stage recorded when it processed a key.
type StageRecord struct {
	// Key identifies the stage's inputs: for build, the fork commit and the
	// build config; for test, the candidate's digests and the test config.
	Key    string    `json:"key"`
	Status string    `json:"status"`
	Time   time.Time `json:"time"`
}

// SyncState is the last sync of a branch.
type SyncState struct {
	Status         string    `json:"status"`
	UpstreamCommit string    `json:"upstreamCommit"`
	ForkCommit     string    `json:"forkCommit"`
	Time           time.Time `json:"time"`
	Error          string    `json:"error,omitempty"`
	// ReportedConflict is the "upstream..fork" pair whose conflict was last
	// notified, so the same conflict is not notified on every run.
	ReportedConflict string `json:"reportedConflict,omitempty"`
	// ReportedError is the last sync error notified; the same error on the
	// next scheduled run is not notified again.
	ReportedError string `json:"reportedError,omitempty"`
}

// BuildState is the last build of a branch.
type BuildState struct {
	// Commit is the last fork commit processed, built or failed: a failed
	// commit is not rebuilt in a loop, the next new commit is.
	Commit  string   `json:"commit"`
	Status  string   `json:"status"`
	Version string   `json:"version,omitempty"`
	Image   string   `json:"image,omitempty"`
	Images  []string `json:"images,omitempty"`
	// Named maps each image's name to its candidate ref@digest.
	Named     map[string]string `json:"named,omitempty"`
	Platforms []string          `json:"platforms,omitempty"`
	// Artifacts maps each artifact's name to where it is kept.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	Log       string            `json:"log,omitempty"`
	Time      time.Time         `json:"time"`
	Error     string            `json:"error,omitempty"`
}

func branchKey(branch string) string { return "branches/" + branch + "/state.json" }

// LoadBranch returns the branch's state; a branch never seen has the zero value.
func LoadBranch(ctx context.Context, s Store, branch string) (BranchState, error) {
	var st BranchState
	_, err := GetJSON(ctx, s, branchKey(branch), &st)
	return st, err
}

// SaveBranch stores the branch's state.
func SaveBranch(ctx context.Context, s Store, branch string, st BranchState) error {
	return PutJSON(ctx, s, branchKey(branch), st)
}

// UpdateBranch changes the branch's state with compare-and-swap: fn gets the
// current state (the zero value for a branch never seen) and changes it in
// place; if another runner wrote the state meanwhile, fn runs again on what
// that runner wrote, so neither loses the other's fields.
func UpdateBranch(ctx context.Context, s VersionedStore, branch string, fn func(st *BranchState) error) error {
	return UpdateJSON(ctx, s, branchKey(branch), func(st *BranchState, _ bool) error { return fn(st) })
}

// TestState is the last test run of a branch's candidate.
type TestState struct {
	Status    string    `json:"status,omitempty"`
	Candidate string    `json:"candidate,omitempty"`
	Commit    string    `json:"commit,omitempty"`
	Passed    int       `json:"passed,omitempty"`
	Failed    int       `json:"failed,omitempty"`
	Skipped   int       `json:"skipped,omitempty"`
	Log       string    `json:"log,omitempty"`
	New       []string  `json:"new,omitempty"`
	Flaky     []string  `json:"flaky,omitempty"`
	Infra     []string  `json:"infra,omitempty"`
	Time      time.Time `json:"time,omitempty"`
	// RunLogs maps a test run's ID (as in the test history) to where its
	// log is, for the runs whose logs are kept.
	RunLogs map[string]string `json:"runLogs,omitempty"`
	// RunSuspects keeps, for the same runs, the suspect commits of their
	// new failures, so that the HTML report can show them wherever it is
	// written, with or without the mirror they were read from.
	RunSuspects map[string][]SuspectRange `json:"runSuspects,omitempty"`
}

// SuspectRange is the commits suspected of breaking Tests: the upstream
// commits merged and the carries changed since the tests last passed.
type SuspectRange struct {
	Tests    []string        `json:"tests"`
	Upstream []SuspectCommit `json:"upstream,omitempty"`
	Carries  []SuspectCommit `json:"carries,omitempty"`
}

// SuspectCommit is one suspect commit.
type SuspectCommit struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
}

// PublishState is the last publish of a branch.
type PublishState struct {
	Status string   `json:"status,omitempty"`
	Image  string   `json:"image,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	Commit string   `json:"commit,omitempty"`
}
