package config

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Problem is one thing wrong in a configuration file, located by file and line.
type Problem struct {
	// File is the file as the user would name it (relative when it was given
	// relative), so that "File:Line" can be pasted into an editor.
	File string
	// Line is 1-based; 0 when the problem is about the file as a whole.
	Line int
	// Message says what is wrong and what to write instead.
	Message string
}

// String formats the problem as "file:line: message".
func (p Problem) String() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Message
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// ValidationError is every problem found in a configuration. Load returns it
// for anything that keeps the configuration from being used, so callers map
// it to exit code 2 with errors.As.
type ValidationError struct {
	// Problems are sorted by file, then line.
	Problems []Problem
}

// Error lists the problems one per line, sorted by file then line.
func (e *ValidationError) Error() string {
	ps := slices.Clone(e.Problems)
	sortProblems(ps)
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}

// problems collects problems across all files of one Load.
type problems struct {
	list []Problem
}

func (ps *problems) add(file string, line int, format string, args ...any) {
	// One problem is one line of output, whatever an underlying error says.
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	ps.list = append(ps.list, Problem{File: file, Line: line, Message: msg})
}

// err returns nil when nothing was found, else a *ValidationError.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	sortProblems(list)
	return &ValidationError{Problems: list}
}

// doc is one decoded YAML file: where each key path was found, and which
// paths were already reported as having the wrong shape so that semantic
// checks do not pile a second message on the same mistake.
type doc struct {
	file  string         // display name
	lines map[string]int // "build.platforms[1]" -> line
	bad   map[string]bool
	null  map[string]bool // written with no value: the default applies
	probs *problems
	root  reflect.Type // the type of the whole file, for pointing misplaced keys home
}

func newDoc(file string, probs *problems) *doc {
	return &doc{file: file, lines: map[string]int{}, bad: map[string]bool{}, null: map[string]bool{}, probs: probs}
}

// line is the line of path, or of its nearest ancestor written in the file
// (a missing key is reported where its parent is), or 1.
func (d *doc) line(path string) int {
	for p := path; ; p = parentPath(p) {
		if l, ok := d.lines[p]; ok && l > 0 {
			return l
		}
		if p == "" {
			return 1
		}
	}
}

// has reports whether path was written in the file with a value.
func (d *doc) has(path string) bool {
	_, ok := d.lines[path]
	return ok && !d.null[path]
}

// at reports a problem at path unless path or an ancestor already has a
// shape problem.
func (d *doc) at(path string, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	d.probs.add(d.file, d.line(path), format, args...)
}

// badUnder reports whether path or anything below it has a shape problem.
func (d *doc) badUnder(path string) bool {
	for p := range d.bad {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// parentPath strips the last element: "a.b[2]" -> "a.b", "a.b" -> "a", "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
