// Package report defines the JSON report of a run (DESIGN.md, "The JSON
// report") and the exit codes of the contract.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Exit codes of the contract.
const (
	ExitOK       = 0 // done, or nothing to do
	ExitFailed   = 1 // a stage failed
	ExitConfig   = 2 // invalid config or usage; nothing was done
	ExitConflict = 3 // a merge conflict waits for a person
	ExitTests    = 4 // tests failed, nothing published
	ExitLocked   = 5 // another run holds the lock
)

// exitPrecedence is the order in which branch outcomes decide the run's exit
// code: the first that applies wins.
var exitPrecedence = []int{ExitConfig, ExitLocked, ExitFailed, ExitTests, ExitConflict}

// Combine returns the run's exit code from the branches' codes.
func Combine(codes ...int) int {
	for _, want := range exitPrecedence {
		for _, c := range codes {
			if c == want {
				return c
			}
		}
	}
	return ExitOK
}

// Report is the whole run.
type Report struct {
	Target   string `json:"target"`
	ExitCode int    `json:"exitCode"`
	Started  string `json:"started,omitempty"`
	Finished string `json:"finished,omitempty"`
	Error    string `json:"error,omitempty"`
	// Interrupted says which signal stopped the run before it finished.
	Interrupted string    `json:"interrupted,omitempty"`
	Branches    []*Branch `json:"branches"`
}

// Branch returns the branch's entry, adding it if the report has none.
func (r *Report) Branch(name string) *Branch {
	for _, b := range r.Branches {
		if b.Name == name {
			return b
		}
	}
	b := &Branch{Name: name}
	r.Branches = append(r.Branches, b)
	return b
}

// Branch is one branch's outcome.
type Branch struct {
	Name     string   `json:"name"`
	Sync     *Sync    `json:"sync,omitempty"`
	Build    *Build   `json:"build,omitempty"`
	Test     *Test    `json:"test,omitempty"`
	Publish  *Publish `json:"publish,omitempty"`
	Error    string   `json:"error"`
	ExitCode int      `json:"exitCode"`
}

// Sync statuses.
const (
	SyncMerged   = "merged"
	SyncUpToDate = "up-to-date"
	SyncConflict = "conflict"
	SyncError    = "error"
	SyncSkipped  = "skipped"
	SyncCreated  = "created" // extension: the fork branch was created from upstream
)

// Sync is the sync stage's outcome.
type Sync struct {
	Status         string     `json:"status"`
	UpstreamCommit string     `json:"upstreamCommit"`
	ForkCommit     string     `json:"forkCommit"`
	PreviousFork   string     `json:"previousForkCommit,omitempty"`
	MergedCommits  int        `json:"mergedCommits"`
	Conflicts      []Conflict `json:"conflicts,omitempty"`
	Resolution     string     `json:"resolution,omitempty"`
	// Notified is false when this conflict was already reported for the same
	// heads and no new notification was sent.
	Notified bool   `json:"notified,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Conflict is one conflicted path.
type Conflict struct {
	Path      string   `json:"path"`
	Kind      string   `json:"kind"`
	Upstream  []Commit `json:"upstreamCommits"`
	Carries   []Commit `json:"forkCommits"`
	OtherPath string   `json:"otherPath,omitempty"`
}

// Commit names one commit for a person.
type Commit struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
	Author  string `json:"author"`
}

// Build statuses.
const (
	BuildBuilt    = "built"
	BuildUpToDate = "up-to-date"
	BuildError    = "error"
	BuildSkipped  = "skipped"
	// BuildWouldBuild is plan's prediction (an extension of the contract).
	BuildWouldBuild = "would-build"
)

// Build is the build stage's outcome.
type Build struct {
	Status  string `json:"status"`
	Commit  string `json:"commit"`
	Version string `json:"version,omitempty"`
	Image   string `json:"image"`
	// Images maps each image's name to its candidate ref@digest.
	Images    map[string]string `json:"images,omitempty"`
	Platforms []string          `json:"platforms"`
	// Artifacts maps each artifact's name (server-linux-amd64) to where it
	// is kept.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	Log       string            `json:"log,omitempty"`
	Message   string            `json:"message,omitempty"`
}

// Test is the test stage's outcome.
type Test struct {
	Status  string   `json:"status"`
	Passed  int      `json:"passed"`
	Failed  int      `json:"failed"`
	Skipped int      `json:"skipped"`
	Log     string   `json:"log"`
	New     []string `json:"new"`
	Flaky   []string `json:"flaky"`
	Infra   []string `json:"infra"`
	// Reason says why the stage did not run, when it did not.
	Reason string `json:"reason,omitempty"`
	// Suspects are, for new failures, the upstream commits merged and the
	// carries changed since the last candidate they passed on.
	Suspects []Suspects `json:"suspects,omitempty"`
}

// Suspects is the range of changes that likely broke some tests.
type Suspects struct {
	Tests []string `json:"tests"`
	// Good is the fork commit of the last candidate the tests passed on;
	// empty when they never passed.
	Good         string   `json:"good"`
	Bad          string   `json:"bad"`
	Upstream     []Commit `json:"upstream"`
	MoreUpstream int      `json:"moreUpstream,omitempty"`
	Carries      []Commit `json:"carries"`
	MoreCarries  int      `json:"moreCarries,omitempty"`
}

// Test and publish statuses.
const (
	TestPassed  = "passed"
	TestFailed  = "failed"
	TestError   = "error"
	TestSkipped = "skipped"

	PublishPublished    = "published"
	PublishNotPublished = "not-published"
	PublishError        = "error"
	PublishSkipped      = "skipped"
)

// Publish is the publish stage's outcome.
type Publish struct {
	Status  string   `json:"status"`
	Image   string   `json:"image"`
	Tags    []string `json:"tags"`
	Deleted []string `json:"deleted"`
	Kept    []string `json:"kept"`
	// Reason says why nothing was published, when nothing was. Always
	// present: the contract names it.
	Reason string `json:"reason"`
}

// Write writes the report as indented JSON, atomically.
func (r *Report) Write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("write report %s: it is a folder; name a file, such as %s", path, filepath.Join(path, "report.json"))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	// A temporary file beside the report, renamed over it: a reader never
	// sees half a report, and a failure leaves nothing behind.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
