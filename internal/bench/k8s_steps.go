package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Step is one part of a hyperfork build and how long it took, as the
// pipeline's log and BuildKit's progress in it say.
type Step struct {
	// Name is the pipeline's step ("compiled", "packed", ...) or, for a
	// part of the compile, BuildKit's vertex name ("source tree",
	// "[linux/amd64] go build ./cmd/kubectl", "exporting to client
	// directory").
	Name string
	Took time.Duration
	// Vertex is true for BuildKit's vertices, which are parts of
	// "compiled".
	Vertex bool
	// Cached is true for a vertex BuildKit found in its cache.
	Cached bool
}

// Lines of the pipeline's log (log/slog's text format) and of BuildKit's
// plain progress.
var (
	slogMsg     = regexp.MustCompile(`\bmsg=("(?:[^"\\]|\\.)*"|\S+)`)
	slogTook    = regexp.MustCompile(`\btook=(\S+)`)
	vertexLine  = regexp.MustCompile(`^#(\d+) (.+)$`)
	vertexEnd   = regexp.MustCompile(`^#(\d+) (DONE ([0-9.]+)s|CACHED)$`)
	vertexNoise = regexp.MustCompile(`^(DONE|CACHED|ERROR|CANCELED|\.\.\.|sha256:|resolve |transferring |copying |extracting |\d+\.\d+ )`)
)

// pipelineSteps are the steps of the build stage that log how long they took.
var pipelineSteps = []string{"fetched and described", "exported source", "compiled", "packed", "pushed"}

// readSteps reads the steps of the hyperfork build logged from offset on:
// the pipeline's steps in the order logged (packed and pushed once per
// image), and BuildKit's vertices, each right before the "compiled" step
// they belong to, in the order they were first seen.
func readSteps(logPath string, offset int64) ([]Step, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	return parseSteps(f)
}

func parseSteps(r io.Reader) ([]Step, error) {
	var steps []Step
	names := map[string]string{}
	index := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := vertexEnd.FindStringSubmatch(line); m != nil {
			i, ok := index[m[1]]
			if !ok {
				continue
			}
			if m[2] == "CACHED" {
				steps[i].Cached = true
			} else if secs, err := strconv.ParseFloat(m[3], 64); err == nil {
				steps[i].Took = time.Duration(secs * float64(time.Second))
			}
			continue
		}
		if m := vertexLine.FindStringSubmatch(line); m != nil {
			if _, seen := names[m[1]]; !seen && !vertexNoise.MatchString(m[2]) {
				names[m[1]] = m[2]
				index[m[1]] = len(steps)
				steps = append(steps, Step{Name: m[2], Vertex: true})
			}
			continue
		}
		m := slogMsg.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		msg := m[1]
		if u, err := strconv.Unquote(msg); err == nil {
			msg = u
		}
		t := slogTook.FindStringSubmatch(line)
		if t == nil || !contains(pipelineSteps, msg) {
			continue
		}
		d, err := time.ParseDuration(t[1])
		if err != nil {
			return steps, fmt.Errorf("log line %q: %w", line, err)
		}
		if msg == "compiled" {
			// BuildKit numbers vertices per solve: the next solve's #1
			// is a new vertex.
			names, index = map[string]string{}, map[string]int{}
		}
		steps = append(steps, Step{Name: msg, Took: d})
	}
	return steps, sc.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// stepSummary is the breakdown in one line: the pipeline's steps with the
// compile's vertices that took at least 50 ms in parentheses; packed and
// pushed summed over the images.
func stepSummary(steps []Step) string {
	short := map[string]string{"fetched and described": "fetch", "exported source": "export tree", "compiled": "compile", "packed": "pack", "pushed": "push"}
	var parts, inner []string
	sums := map[string]time.Duration{}
	for _, s := range steps {
		switch {
		case s.Vertex && s.Cached:
			inner = append(inner, vertexShort(s.Name)+" cached")
		case s.Vertex && s.Took >= 50*time.Millisecond:
			inner = append(inner, fmt.Sprintf("%s %s", vertexShort(s.Name), secs(s.Took)))
		case s.Vertex:
		case s.Name == "packed" || s.Name == "pushed":
			sums[s.Name] += s.Took
		case s.Name == "compiled":
			p := "compile " + secs(s.Took)
			if len(inner) > 0 {
				p += " (" + strings.Join(inner, ", ") + ")"
			}
			parts, inner = append(parts, p), nil
		default:
			parts = append(parts, short[s.Name]+" "+secs(s.Took))
		}
	}
	for _, n := range []string{"packed", "pushed"} {
		if d, ok := sums[n]; ok {
			parts = append(parts, short[n]+" "+secs(d))
		}
	}
	return strings.Join(parts, ", ")
}

// vertexShort shortens a vertex name for the summary: the target list of a
// go build is left out.
func vertexShort(name string) string {
	if strings.HasSuffix(name, "] go build hyperkube dispatcher") {
		return name
	}
	if i := strings.Index(name, "] go build "); i >= 0 {
		return name[:i+len("] go build")]
	}
	if i := strings.Index(name, "] go test "); i >= 0 {
		return name[:i+len("] go test")]
	}
	return name
}
