package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the pipeline at path (branches.yaml) and checks it for every
// stage: it is LoadFor(path, Stages()...), what release and plan need.
func Load(path string) (*Pipeline, error) {
	return LoadFor(path, Stages()...)
}

// LoadFor reads the pipeline at path (branches.yaml) strictly: unknown keys
// and values of the wrong type are errors anywhere in the file. It applies
// defaults, validates what every target reads (upstream, fork, branches,
// *Env names, publish.registry and keep, logs, state, notify) and what the
// given stages read, and resolves relative paths against the folder of the
// file. The image definitions of build.images are read and validated only
// for StageBuild; build.images left out means images/hyperkube.yaml beside
// the file if there is one, else the definition built into hyperfork
// (Image.File is then BuiltinImageFile).
//
// The targets and the stages they ask for:
//
//	sync, status     StageSync
//	build            StageSync, StageBuild
//	test             StageTest
//	publish          StagePublish
//	release, plan    every stage (Load): plan predicts release, so it must
//	                 refuse what release would refuse
//	report, prune    none: what every target reads is checked anyway
//
// Every error LoadFor returns for the file is a *ValidationError listing
// all problems found, each as "file:line: what to write instead". A problem
// with a value the file left out says "(default)" and is reported at the
// key that makes the default wrong, or with no line ("file: ...") when no
// key does. The only case where reading stops at the first problem is a
// YAML syntax error, after which nothing else can be read. A stage that is
// none of the Stage constants is a plain error, a bug of the caller. On
// error the returned *Pipeline is nil.
func LoadFor(path string, stages ...Stage) (*Pipeline, error) {
	stages, err := checkStages(stages)
	if err != nil {
		return nil, err
	}
	probs := &problems{}
	display := filepath.Clean(path)
	abs, err := filepath.Abs(path)
	if err != nil {
		probs.add(display, 0, "cannot resolve the path of the pipeline: %v", err)
		return nil, probs.err()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		probs.add(display, 0, "cannot read the pipeline: %v; create it, or set HYPERFORK_CONFIG to the path of branches.yaml", unwrapPathError(err))
		return nil, probs.err()
	}
	root := parseYAML(display, data, probs)
	if root == nil {
		return nil, probs.err()
	}
	d := newDoc(display, probs)
	if !checkHeader(d, root) {
		return nil, probs.err()
	}
	p := &Pipeline{File: abs, Dir: filepath.Dir(abs), stages: stages}
	decodeInto(d, root, reflect.TypeFor[Pipeline](), p)
	p.applyDefaults(d)
	p.validate(d)
	if p.Checked(StageBuild) {
		p.loadImages(d)
	}
	p.resolvePaths()
	if err := probs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeInto checks root against t, then decodes it into out. The walk has
// already reported every wrong type with its key; yaml.v3's own type errors
// are kept only for lines the walk did not report, as a safety net.
func decodeInto(d *doc, root *yaml.Node, t reflect.Type, out any) {
	d.root = t
	d.walk(root, t, "")
	err := root.Decode(out)
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		reported := map[int]bool{}
		for _, p := range d.probs.list {
			if p.File == d.file {
				reported[p.Line] = true
			}
		}
		for _, msg := range te.Errors {
			line, text := splitLine(msg)
			if !reported[line] {
				d.probs.add(d.file, line, "%s: write a value of the type this key takes", text)
			}
		}
	default:
		d.probs.add(d.file, 1, "cannot decode: %v", err)
	}
}

// parseYAML reads the one YAML document in data. It returns nil after
// reporting a problem when the syntax is broken or the file holds no mapping.
func parseYAML(file string, data []byte, probs *problems) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	err := dec.Decode(&n)
	if errors.Is(err, io.EOF) {
		probs.add(file, 1, "the file is empty: start it with apiVersion: %s", APIVersion)
		return nil
	}
	if err != nil {
		syntaxProblems(file, data, err, probs)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		probs.add(file, extra.Line, "a second YAML document starts here: only one is read; remove the '---' and what follows, or move it to its own file")
	} else if !errors.Is(err, io.EOF) {
		syntaxProblems(file, data, err, probs)
		return nil
	}
	root := &n
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			probs.add(file, 1, "the file holds no keys: start it with apiVersion: %s", APIVersion)
		} else {
			probs.add(file, root.Line, "the file must be a mapping of keys (apiVersion: ..., kind: ...), not %s", found(root))
		}
		return nil
	}
	return root
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func splitLine(msg string) (int, string) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 1, strings.TrimPrefix(msg, "yaml: ")
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

// syntaxProblems turns a yaml.v3 syntax error into problems. Tabs get one
// problem per line that starts with one, because yaml.v3 names only the first
// and a file indented with tabs usually has many.
func syntaxProblems(file string, data []byte, err error, probs *problems) {
	tabs := 0
	for i, l := range strings.Split(string(data), "\n") {
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			probs.add(file, i+1, "YAML syntax: this line is indented with a tab; YAML allows only spaces: replace the tab with spaces")
			tabs++
		}
	}
	if tabs > 0 {
		return
	}
	line, msg := splitLine(err.Error())
	probs.add(file, line, "YAML syntax: %s: %s", msg, syntaxHint(msg))
}

func syntaxHint(msg string) string {
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		return "this line is indented deeper than the key above it, or a value holds ': ' and needs quotes; align keys of the same level in the same column"
	case strings.Contains(msg, "did not find expected key"):
		return "a line in the block that starts here is indented differently from the keys beside it; align keys of the same level in the same column"
	case strings.Contains(msg, "did not find expected '-' indicator"):
		return "list items and keys are mixed at one indentation; start every item with '- ', or indent the key under its item"
	case strings.Contains(msg, "did not find expected ',' or ']'"):
		return "a [list] is not closed: end it with ]"
	case strings.Contains(msg, "did not find expected ',' or '}'"):
		return "a {mapping} is not closed: end it with }"
	case strings.Contains(msg, "unexpected end of stream"):
		return "a quote or bracket opened here is never closed"
	case strings.Contains(msg, "cannot start any token"):
		return "a value starting with @, `, %, | or > must be quoted"
	case strings.Contains(msg, "already defined"):
		return "keep only one of the two keys"
	default:
		return "fix the YAML at this line"
	}
}

// checkHeader checks apiVersion and kind before anything else, because they
// say how to read the rest. A missing apiVersion is reported and the file is
// read as the current version (a forgotten line, most likely); a different
// apiVersion stops reading, because its keys may mean other things.
func checkHeader(d *doc, root *yaml.Node) bool {
	api, kind := mapValue(root, "apiVersion"), mapValue(root, "kind")
	switch {
	case api == nil:
		d.probs.add(d.file, 1, "apiVersion is missing: write apiVersion: %s as the first line", APIVersion)
	case api.Kind != yaml.ScalarNode || api.Value != APIVersion:
		d.probs.add(d.file, api.Line, "apiVersion %q is not one this hyperfork reads: write apiVersion: %s and use the keys it documents, or run the hyperfork version that reads %s",
			api.Value, APIVersion, api.Value)
		return false
	}
	switch {
	case kind == nil:
		d.probs.add(d.file, 1, "kind is missing: write kind: %s after apiVersion", Kind)
		d.bad["kind"] = true
	case kind.Kind != yaml.ScalarNode || kind.Value != Kind:
		d.probs.add(d.file, kind.Line, "kind %q is not a pipeline: write kind: %s (image definitions go in their own files, named by build.images)", kind.Value, Kind)
		d.bad["kind"] = true
	}
	return true
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// displayPath names a file relative to the pipeline as the user gave it, so
// that messages point where the user looks.
func (p *Pipeline) displayPath(d *doc, rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(filepath.Dir(d.file), rel)
}
