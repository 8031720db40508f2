// Package junit reads the JUnit XML that a conformance run leaves behind:
// the e2e suite's own file as Kubernetes writes it with ginkgo v2
// (test/e2e/framework/internal/junit: one testsuite "Kubernetes e2e suite"
// with properties, each spec a testcase "[It] …", suite nodes such as
// "[SynchronizedBeforeSuite]" as testcases beside them) and kubetest2's
// junit_runner.xml (one testcase per Build, Up, Test and Down step).
//
// Parsing never fails on what is inside a value: messages of many megabytes
// are kept whole and bytes that are not UTF-8 become U+FFFD. A file that is
// not well-formed XML is an error that names the file, the line and the byte
// offset. Merge folds the files of several passes (parallel, serial, the
// retry of failed specs) into one Result.
package junit

import (
	"strings"
	"time"
)

// Status is the outcome of a testcase as JUnit records it.
type Status string

// The four statuses: a testcase with a <failure> failed, with an <error>
// errored (ginkgo: panicked or interrupted), with <skipped> was skipped or
// pending, and otherwise passed.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
	Error   Status = "error"
)

// Kind says what a testcase stands for.
type Kind string

const (
	// Spec is a test: a ginkgo "[It]", or any testcase of a JUnit file that
	// is neither ginkgo's suite node nor kubetest2's.
	Spec Kind = "spec"
	// SuiteNode is a ginkgo suite-level node such as
	// "[SynchronizedBeforeSuite]" or "[ReportAfterSuite] …": it is reported
	// as a testcase but is no test, and its failure is the infrastructure's.
	SuiteNode Kind = "suite-node"
	// RunnerStep is a step of kubetest2 (Build, Up, Test, Down, …) from its
	// junit_runner.xml.
	RunnerStep Kind = "runner-step"
)

// ID names a test across runs and files.
type ID struct {
	Classname string `json:"classname,omitempty"`
	Name      string `json:"name"`
}

// String is the name, prefixed by the classname when there is one.
func (id ID) String() string {
	if id.Classname == "" {
		return id.Name
	}
	return id.Classname + " " + id.Name
}

// Case is one testcase.
type Case struct {
	Name      string        `json:"name"`
	Classname string        `json:"classname,omitempty"`
	Status    Status        `json:"status"`
	Kind      Kind          `json:"kind"`
	Duration  time.Duration `json:"duration"`
	// FailureType is the type attribute of <failure> or <error>: ginkgo
	// writes failed, timedout or aborted for a failure and panicked or
	// interrupted for an error. It is empty for a pass or a skip.
	FailureType string `json:"failureType,omitempty"`
	// Message is the failure's or error's text (its character data, or the
	// message attribute when there is none: Kubernetes leaves the attribute
	// empty), or the skip's message ("skipped", "pending", "skipped - why").
	Message string `json:"message,omitempty"`
	// File is the name the case was parsed from.
	File string `json:"file,omitempty"`
}

// ID is the test the case is a run of.
func (c Case) ID() ID { return ID{Classname: c.Classname, Name: c.Name} }

// Failed reports whether the case failed or errored.
func (c Case) Failed() bool { return c.Status == Failed || c.Status == Error }

// Suite is one <testsuite> element.
type Suite struct {
	Name       string            `json:"name"`
	File       string            `json:"file,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Counts are the specs of a result by status; suite nodes and runner steps
// are never counted.
type Counts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Errors  int `json:"errors"`
	Skipped int `json:"skipped"`
}

// Executed is the number of specs that ran: passed, failed or errored.
func (c Counts) Executed() int { return c.Passed + c.Failed + c.Errors }

// Result is what one or more JUnit files say.
type Result struct {
	// Cases in file order; after Merge, in the order each test first
	// appeared.
	Cases  []Case  `json:"cases"`
	Suites []Suite `json:"suites,omitempty"`
	// Retried holds, for each spec that a later pass ran again, its
	// outcome in the earliest pass that ran it (Merge). A spec whose entry
	// failed and whose case passed is a flake.
	Retried map[ID]Case `json:"-"`
}

// Counts counts the specs.
func (r *Result) Counts() Counts {
	var n Counts
	if r == nil {
		return n
	}
	for _, c := range r.Cases {
		if c.Kind != Spec {
			continue
		}
		switch c.Status {
		case Passed:
			n.Passed++
		case Failed:
			n.Failed++
		case Error:
			n.Errors++
		case Skipped:
			n.Skipped++
		}
	}
	return n
}

// Failures are the specs that failed or errored.
func (r *Result) Failures() []Case {
	if r == nil {
		return nil
	}
	var out []Case
	for _, c := range r.Cases {
		if c.Kind == Spec && c.Failed() {
			out = append(out, c)
		}
	}
	return out
}

// Flakes are the specs that failed in an earlier pass and passed on a rerun.
func (r *Result) Flakes() []Case {
	if r == nil {
		return nil
	}
	var out []Case
	for _, c := range r.Cases {
		if prev, ok := r.Retried[c.ID()]; ok && c.Kind == Spec && c.Status == Passed && prev.Failed() {
			out = append(out, c)
		}
	}
	return out
}

// InfraFailures are the failures that are the infrastructure's rather than
// a test's:
//   - a failed or errored suite node: the specs around it never ran fairly;
//   - a failed runner step other than Test (Build, Up, Down, PreTestCmd, …);
//     Test fails whenever a spec fails, so it counts only when no spec
//     failed: the tester itself died;
//   - a spec interrupted (ginkgo: a signal, or another parallel process
//     giving up) or stopped by the suite's timeout ("A suite timeout
//     occurred"); a spec that ran past its own spec or node timeout is the
//     test's failure;
//   - a suite whose SpecialSuiteFailureReason property says it was
//     interrupted when no case shows it (between specs): a Case named
//     "[<suite>] <reason>" stands for it.
func (r *Result) InfraFailures() []Case {
	if r == nil {
		return nil
	}
	specFailed := false
	for _, c := range r.Cases {
		if c.Kind == Spec && c.Failed() && !specIsInfra(c) {
			specFailed = true
		}
	}
	var out []Case
	for _, c := range r.Cases {
		if !c.Failed() {
			continue
		}
		switch c.Kind {
		case SuiteNode:
			out = append(out, c)
		case RunnerStep:
			if c.Name != "Test" || !specFailed {
				out = append(out, c)
			}
		case Spec:
			if specIsInfra(c) {
				out = append(out, c)
			}
		}
	}
	// Interrupted between specs: only the suite's properties say so.
	interrupted := false
	for _, c := range out {
		interrupted = interrupted || c.FailureType == "interrupted" || c.FailureType == "timedout"
	}
	for _, s := range r.Suites {
		reason := s.Properties["SpecialSuiteFailureReason"]
		if !interrupted && strings.Contains(reason, "Interrupted") {
			out = append(out, Case{
				Name: "[" + s.Name + "] " + reason, Classname: s.Name, Kind: SuiteNode,
				Status: Error, FailureType: "interrupted", Message: reason, File: s.File,
			})
			interrupted = true
		}
	}
	return out
}

// suiteTimeout is how ginkgo v2 words a spec stopped by the suite's
// --timeout (internal/suite.go: "A %s timeout occurred").
const suiteTimeout = "A suite timeout occurred"

func specIsInfra(c Case) bool {
	switch c.FailureType {
	case "interrupted":
		return true
	case "timedout":
		return containsHead(c.Message, suiteTimeout)
	}
	return false
}

// containsHead looks for s near the start of msg only: a failure's first
// lines say what happened, and a message may be megabytes long.
func containsHead(msg, s string) bool {
	const head = 512
	return strings.Contains(msg[:min(len(msg), head)], s)
}
