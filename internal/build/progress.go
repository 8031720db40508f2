package build

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"

	"github.com/hyperfork/hyperfork/internal/killpoint"
)

// maxLogTail bounds what is kept of each step's output for error messages: a
// compile error is near the end, and a full Kubernetes build log is megabytes.
const maxLogTail = 32 << 10

// stepLog is what the tap remembers about one vertex.
type stepLog struct {
	name string
	err  string
	out  []byte // tail of stdout and stderr interleaved, as the user saw it
}

// statusTap reads BuildKit's status stream once, remembers each step's output
// so that a failure can quote the compiler, and forwards every update to the
// progress display.
type statusTap struct {
	mu    sync.Mutex
	steps map[digest.Digest]*stepLog
	order []digest.Digest
}

func newStatusTap() *statusTap {
	return &statusTap{steps: map[digest.Digest]*stepLog{}}
}

// run copies in to every out until in is closed, then closes them. It never
// stops reading early: BuildKit blocks if nobody drains the channel.
func (t *statusTap) run(in <-chan *client.SolveStatus, outs []chan *client.SolveStatus) {
	defer func() {
		for _, out := range outs {
			close(out)
		}
	}()
	solving := false
	for s := range in {
		t.record(s)
		if !solving && runsAStep(s) {
			// Crash tests: the daemon is running a step of this solve.
			solving = true
			killpoint.Reach("build.solving")
		}
		for _, out := range outs {
			out <- s
		}
	}
}

// runsAStep reports whether s shows a compile step (graph.go names them
// "[platform] go build …") that the daemon runs now, not one it took from
// its cache: the moment a crash test kills the client "during the solve".
func runsAStep(s *client.SolveStatus) bool {
	for _, v := range s.Vertexes {
		if v.Started != nil && v.Completed == nil && !v.Cached && strings.Contains(v.Name, "go build") {
			return true
		}
	}
	return false
}

func (t *statusTap) step(d digest.Digest) *stepLog {
	s, ok := t.steps[d]
	if !ok {
		s = &stepLog{}
		t.steps[d] = s
		t.order = append(t.order, d)
	}
	return s
}

func (t *statusTap) record(s *client.SolveStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range s.Vertexes {
		st := t.step(v.Digest)
		st.name = v.Name
		if v.Error != "" {
			st.err = v.Error
		}
	}
	for _, l := range s.Logs {
		st := t.step(l.Vertex)
		st.out = append(st.out, l.Data...)
		if len(st.out) > maxLogTail {
			st.out = slices.Clone(st.out[len(st.out)-maxLogTail:])
		}
	}
}

// failures returns the output of every step that failed for a reason of its
// own; steps cancelled because another one failed carry no news.
func (t *statusTap) failures() []stepLog {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []stepLog
	for _, d := range t.order {
		s := t.steps[d]
		if s.err == "" || strings.Contains(s.err, "context canceled") {
			continue
		}
		out = append(out, *s)
	}
	return out
}

// CompileError is returned when a build step fails. Its message includes the
// step's output, so a Go compile error ("./main.go:3:1: syntax error ...")
// reaches the report without anyone opening BuildKit's logs.
type CompileError struct {
	// Step is the failed step's name, e.g. "[linux/amd64] go build ./cmd/foo".
	Step string
	// Output is the tail of the step's output.
	Output string
	// Err is BuildKit's error.
	Err error
}

// Error returns the step, BuildKit's error and the step's output.
func (e *CompileError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("build step %q failed: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("build step %q failed: %v\n%s", e.Step, e.Err, out)
}

// Unwrap returns BuildKit's error.
func (e *CompileError) Unwrap() error { return e.Err }

// explain turns a solve error into a CompileError quoting the failed step's
// output, when the tap saw one.
func (t *statusTap) explain(err error) error {
	fails := t.failures()
	if len(fails) == 0 {
		return err
	}
	f := fails[0]
	var more []string
	for _, o := range fails[1:] {
		if s := strings.TrimSpace(string(o.out)); s != "" {
			more = append(more, fmt.Sprintf("--- %s\n%s", o.name, s))
		}
	}
	out := string(f.out)
	if len(more) > 0 {
		out += "\n" + strings.Join(more, "\n")
	}
	return &CompileError{Step: f.name, Output: out, Err: err}
}

// display renders the status stream into w: BuildKit's interactive display
// when w is a terminal, one line per event otherwise, nothing when w is nil.
func display(ctx context.Context, w io.Writer, ch chan *client.SolveStatus) error {
	mode := progressui.AutoMode
	if w == nil {
		w, mode = io.Discard, progressui.QuietMode
	}
	d, err := progressui.NewDisplay(w, mode)
	if err != nil {
		// Keep draining: the solve must not block on an unread channel.
		for range ch {
		}
		return fmt.Errorf("progress display: %w", err)
	}
	// The display must outlive a cancelled solve so the channel is drained
	// until BuildKit closes it.
	_, err = d.UpdateFrom(context.WithoutCancel(ctx), ch)
	return err
}
