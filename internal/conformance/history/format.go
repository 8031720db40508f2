package history

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hyperfork/hyperfork/internal/conformance/junit"
)

// formatVersion is the version of a month document; a reader refuses
// versions it does not know rather than misread them.
const formatVersion = 1

// month is one branch's runs of one calendar month, as stored.
type month struct {
	Version int    `json:"v"`
	Branch  string `json:"branch"`
	Month   string `json:"month"` // YYYY-MM, UTC
	// Classes are the distinct classnames; a test names its class by index.
	Classes []string   `json:"classes"`
	Tests   []testJSON `json:"tests"`
	// Clusters are normalised messages, each once; 0 is "" (no message).
	Clusters []string  `json:"clusters"`
	Runs     []runJSON `json:"runs"`
}

type testJSON struct {
	Class int    `json:"c"`
	Name  string `json:"n"`
	// Kind is "n" for a suite node, "r" for a runner step, omitted for a
	// spec.
	Kind string `json:"k,omitempty"`
}

type runJSON struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"t"`
	Commit    string    `json:"commit,omitempty"`
	Candidate string    `json:"candidate,omitempty"`
	Infra     bool      `json:"infra,omitempty"`
	Why       string    `json:"why,omitempty"`
	// Outcomes has one byte per test of the month ('-' absent); trailing
	// absent tests are left out.
	Outcomes string `json:"s"`
	// Millis are the durations in milliseconds, by test; trailing zeros
	// are left out.
	Millis []int64 `json:"ms,omitempty"`
	// Messages pairs a test with the cluster of its message.
	Messages [][2]int `json:"m,omitempty"`
	// Retries is, like Outcomes, the first attempt of each rerun test;
	// RetryMessages its messages.
	Retries       string   `json:"r,omitempty"`
	RetryMessages [][2]int `json:"rm,omitempty"`
}

const absentByte = '-'

// kindCode and kindOf map junit kinds to their stored letter.
func kindCode(k junit.Kind) string {
	switch k {
	case junit.SuiteNode:
		return "n"
	case junit.RunnerStep:
		return "r"
	}
	return ""
}

func kindOf(code string) (junit.Kind, bool) {
	switch code {
	case "":
		return junit.Spec, true
	case "n":
		return junit.SuiteNode, true
	case "r":
		return junit.RunnerStep, true
	}
	return "", false
}

// monthOf is the month a run is filed under.
func monthOf(t time.Time) string { return t.UTC().Format("2006-01") }

// add records run in m, replacing a run with the same ID; runs stay in
// time order.
func (m *month) add(run Run, es []entry) {
	classes := map[string]int{}
	for i, c := range m.Classes {
		classes[c] = i
	}
	tests := map[junit.ID]int{}
	for i, t := range m.Tests {
		tests[junit.ID{Classname: m.Classes[t.Class], Name: t.Name}] = i
	}
	if len(m.Clusters) == 0 {
		m.Clusters = []string{""}
	}
	clusters := map[string]int{}
	for i, c := range m.Clusters {
		clusters[c] = i
	}
	cluster := func(msg string) int {
		if i, ok := clusters[msg]; ok {
			return i
		}
		clusters[msg] = len(m.Clusters)
		m.Clusters = append(m.Clusters, msg)
		return len(m.Clusters) - 1
	}

	idx := make([]int, len(es))
	for k, e := range es {
		i, ok := tests[e.id]
		if !ok {
			c, ok := classes[e.id.Classname]
			if !ok {
				c = len(m.Classes)
				classes[e.id.Classname] = c
				m.Classes = append(m.Classes, e.id.Classname)
			}
			i = len(m.Tests)
			tests[e.id] = i
			m.Tests = append(m.Tests, testJSON{Class: c, Name: e.id.Name, Kind: kindCode(e.kind)})
		}
		idx[k] = i
	}
	n := 0
	for _, i := range idx {
		n = max(n, i+1)
	}
	outcomes := bytes.Repeat([]byte{absentByte}, n)
	retries := bytes.Repeat([]byte{absentByte}, n)
	millis := make([]int64, n)
	r := runJSON{
		ID: run.ID, Time: run.Time.UTC(), Commit: run.Commit, Candidate: run.Candidate,
		Infra: run.Infra || len(run.Result.InfraFailures()) > 0, Why: run.InfraReason,
	}
	retried := false
	for k, e := range es {
		i := idx[k]
		outcomes[i] = byte(e.outcome)
		millis[i] = e.millis
		if e.message != "" {
			r.Messages = append(r.Messages, [2]int{i, cluster(e.message)})
		}
		if e.retry != Absent {
			retried = true
			retries[i] = byte(e.retry)
			if e.retryMsg != "" {
				r.RetryMessages = append(r.RetryMessages, [2]int{i, cluster(e.retryMsg)})
			}
		}
	}
	for len(millis) > 0 && millis[len(millis)-1] == 0 {
		millis = millis[:len(millis)-1]
	}
	r.Outcomes, r.Millis = string(outcomes), millis
	if retried {
		r.Retries = strings.TrimRight(string(retries), string(rune(absentByte)))
	}
	slices.SortFunc(r.Messages, func(a, b [2]int) int { return a[0] - b[0] })
	slices.SortFunc(r.RetryMessages, func(a, b [2]int) int { return a[0] - b[0] })

	m.Runs = slices.DeleteFunc(m.Runs, func(old runJSON) bool { return old.ID == run.ID })
	at, _ := slices.BinarySearchFunc(m.Runs, r, func(a, b runJSON) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	m.Runs = slices.Insert(m.Runs, at, r)
}

// encode is the stored form of m: compact JSON, gzip'd. The same month
// always encodes to the same bytes, so an Append that changes nothing
// writes nothing.
func (m *month) encode() ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// errDamaged is wrapped by the error for a month that does not decode.
var errDamaged = errors.New("damaged history document")

// decodeMonth reads a stored month and checks every index in it, so that
// the rest of the package can trust them.
func decodeMonth(b []byte) (*month, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	var m month
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	if m.Version != formatVersion {
		return nil, fmt.Errorf("history format version %d: this hyperfork reads version %d; upgrade it", m.Version, formatVersion)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", errDamaged, fmt.Sprintf(format, a...))
	}
	if len(m.Clusters) == 0 || m.Clusters[0] != "" {
		return nil, bad("cluster 0 is not the empty message")
	}
	for i, t := range m.Tests {
		if t.Class < 0 || t.Class >= len(m.Classes) {
			return nil, bad("test %d names class %d of %d", i, t.Class, len(m.Classes))
		}
		if _, ok := kindOf(t.Kind); !ok {
			return nil, bad("test %d has kind %q", i, t.Kind)
		}
	}
	for _, r := range m.Runs {
		if len(r.Outcomes) > len(m.Tests) || len(r.Millis) > len(m.Tests) || len(r.Retries) > len(m.Tests) {
			return nil, bad("run %s has more results than the month has tests", r.ID)
		}
		for _, s := range []string{r.Outcomes, r.Retries} {
			for i := 0; i < len(s); i++ {
				if s[i] != absentByte && !validOutcome(s[i]) {
					return nil, bad("run %s: outcome %q", r.ID, s[i])
				}
			}
		}
		for _, ms := range [][][2]int{r.Messages, r.RetryMessages} {
			for _, p := range ms {
				if p[0] < 0 || p[0] >= len(m.Tests) || p[1] < 0 || p[1] >= len(m.Clusters) {
					return nil, bad("run %s: message %v out of range", r.ID, p)
				}
			}
		}
	}
	return &m, nil
}

// intern adds m's runs to h, mapping the month's tests and clusters onto
// h's.
func (h *History) intern(m *month) {
	if h.index == nil {
		h.index = map[junit.ID]int{}
	}
	if len(h.Clusters) == 0 {
		h.Clusters = []string{""}
	}
	clusters := map[string]int{}
	for i, c := range h.Clusters {
		clusters[c] = i
	}
	tests := make([]int, len(m.Tests))
	for i, t := range m.Tests {
		id := junit.ID{Classname: m.Classes[t.Class], Name: t.Name}
		j, ok := h.index[id]
		if !ok {
			kind, _ := kindOf(t.Kind)
			j = len(h.Tests)
			h.index[id] = j
			h.Tests = append(h.Tests, Test{ID: id, Kind: kind})
		}
		tests[i] = j
	}
	cl := make([]int, len(m.Clusters))
	for i, c := range m.Clusters {
		j, ok := clusters[c]
		if !ok {
			j = len(h.Clusters)
			clusters[c] = j
			h.Clusters = append(h.Clusters, c)
		}
		cl[i] = j
	}
	for _, r := range m.Runs {
		rec := Record{ID: r.ID, Time: r.Time, Commit: r.Commit, Candidate: r.Candidate, Infra: r.Infra, InfraReason: r.Why}
		n := 0
		for i := 0; i < len(r.Outcomes); i++ {
			if r.Outcomes[i] != absentByte {
				n = max(n, tests[i]+1)
			}
		}
		rec.Entries = make([]Entry, n)
		for i := 0; i < len(r.Outcomes); i++ {
			if r.Outcomes[i] == absentByte {
				continue
			}
			e := &rec.Entries[tests[i]]
			e.Outcome = Outcome(r.Outcomes[i])
			if i < len(r.Millis) {
				e.Duration = time.Duration(r.Millis[i]) * time.Millisecond
			}
			if i < len(r.Retries) && r.Retries[i] != absentByte {
				e.Retry = Outcome(r.Retries[i])
			}
		}
		for _, p := range r.Messages {
			if t := tests[p[0]]; t < n {
				rec.Entries[t].Cluster = cl[p[1]]
			}
		}
		for _, p := range r.RetryMessages {
			if t := tests[p[0]]; t < n {
				rec.Entries[t].RetryCluster = cl[p[1]]
			}
		}
		h.Runs = append(h.Runs, rec)
	}
}
