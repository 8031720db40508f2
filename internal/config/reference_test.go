package config

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the configuration reference in README.md (go generate ./internal/config)")

const readmePath = "../../README.md"

// TestConfigReference keeps README.md's configuration reference equal to
// what the config types, their doc comments and the defaults of Load
// generate, and every yaml-tagged field documented. With -update (go
// generate ./internal/config) it rewrites the block instead of failing.
func TestConfigReference(t *testing.T) {
	src, err := os.ReadFile("types.go")
	if err != nil {
		t.Fatal(err)
	}
	ref, problems, err := generateReference(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.Fatal("fix the doc comments above; README.md was not checked or rewritten")
	}
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	want, err := replaceReference(readme, ref)
	if err != nil {
		t.Fatal(err)
	}
	if want == readme {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the configuration reference in %s", readmePath)
		return
	}
	got, exp := strings.Split(readme, "\n"), strings.Split(want, "\n")
	i := 0
	for i < len(got) && i < len(exp) && got[i] == exp[i] {
		i++
	}
	line := func(ls []string) string {
		if i < len(ls) {
			return ls[i]
		}
		return "(end of file)"
	}
	t.Fatalf("README.md's configuration reference is not what internal/config/types.go generates; first difference at line %d:\n  README.md: %s\n  generated: %s\nrun: go generate ./internal/config",
		i+1, line(got), line(exp))
}

// TestMinimalDocumentsAreRequired checks that the reference's "required"
// is true: every key of minimalPipeline and minimalImage is needed, so Load
// refuses the document without it.
func TestMinimalDocumentsAreRequired(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		image     bool
	}{{"pipeline", minimalPipeline, false}, {"image", minimalImage, true}} {
		dir := t.TempDir()
		if _, err := loadMinimal(dir, tc.image); err != nil {
			t.Fatalf("minimal %s: %v", tc.name, err)
		}
		for i := 0; ; i++ {
			without, key, ok := removeLeaf(t, tc.src, i)
			if !ok {
				if i < 3 {
					t.Fatalf("minimal %s has %d keys", tc.name, i)
				}
				break
			}
			file := "branches.yaml"
			if tc.image {
				file = "image.yaml"
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte(without), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(filepath.Join(dir, "branches.yaml")); err == nil {
				t.Errorf("the minimal %s without %s loads: it is not required, so take it out of the minimal document", tc.name, key)
			}
		}
	}
}

// removeLeaf returns src without its i-th scalar (a key's value, or a list
// item) and the key it belonged to, or false when src has fewer.
func removeLeaf(t *testing.T, src string, i int) (string, string, bool) {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	n := 0
	var key string
	var remove func(node *yaml.Node, path string) bool
	remove = func(node *yaml.Node, path string) bool {
		switch node.Kind {
		case yaml.DocumentNode:
			return remove(node.Content[0], path)
		case yaml.MappingNode:
			for j := 0; j+1 < len(node.Content); j += 2 {
				p := joinPath(path, node.Content[j].Value)
				if v := node.Content[j+1]; v.Kind == yaml.ScalarNode {
					if n == i {
						key = p
						node.Content = slices.Delete(node.Content, j, j+2)
						return true
					}
					n++
				} else if remove(v, p) {
					return true
				}
			}
		case yaml.SequenceNode:
			for j, c := range node.Content {
				if c.Kind == yaml.ScalarNode {
					if n == i {
						key = path + "[" + strconv.Itoa(j) + "]"
						node.Content = slices.Delete(node.Content, j, j+1)
						return true
					}
					n++
				} else if remove(c, path+"[]") {
					return true
				}
			}
		}
		return false
	}
	if !remove(&root, "") {
		return "", "", false
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), key, true
}

func TestStatedDefault(t *testing.T) {
	for doc, want := range map[string]string{
		"Parallel is how many branches are tested at the same time. Default 1.":                     "1",
		"the limit for the whole test run; default 3h":                                              "3h",
		"the fork's repository; default: the embedded fork":                                         "the embedded fork",
		"Region, e.g. eu-west-1. Default: AWS_REGION.":                                              "AWS_REGION",
		"GinkgoParallel is the number of processes. Default 4, sized for a 4-CPU CI runner. More.":  "4, sized for a 4-CPU CI runner",
		`SerialFocusRegex selects. Default \[Serial\].*\[Conformance\]; written empty: none. Then.`: `\[Serial\].*\[Conformance\]; written empty: none`,
		"Env is extra environment for the compile.":                                                 "",
	} {
		if got := statedDefault(doc); got != want {
			t.Errorf("statedDefault(%q) = %q, want %q", doc, got, want)
		}
	}
}

func TestDefaultCell(t *testing.T) {
	for _, tc := range []struct{ computed, stated, want string }{
		{"", "", ""},
		{"5", "", "`5`"},
		{"", "the embedded fork", "the embedded fork"},
		{"3h", "3h", "`3h`"},
		{"4", "4, sized for a 4-CPU CI runner", "`4`, sized for a 4-CPU CI runner"},
		{".hyperfork", "the state folder when state.store is a folder, else .hyperfork", "the state folder when state.store is a folder, else .hyperfork"},
		{`\[Serial\]`, `\[Serial\]; written empty: none`, "`\\[Serial\\]`; written empty: none"},
	} {
		got, err := defaultCell(tc.computed, tc.stated)
		if err != nil || got != tc.want {
			t.Errorf("defaultCell(%q, %q) = %q, %v; want %q", tc.computed, tc.stated, got, err, tc.want)
		}
	}
	if _, err := defaultCell("20", "30"); err == nil {
		t.Error("defaultCell accepts a doc comment that states 30 for a default of 20")
	}
}

func TestParseFieldDocsNeedsEveryYAMLField(t *testing.T) {
	src := []byte("package x\n\ntype T struct {\n\t// A is documented.\n\tA string `yaml:\"a\"`\n\tB string `yaml:\"b\"` // so is B\n\tC string `yaml:\"c\"`\n\tD string `yaml:\"-\"`\n}\n")
	_, _, problems, err := parseFieldDocs("x.go", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "T.C") {
		t.Fatalf("problems %q, want one for T.C", problems)
	}
}

// envRowRE matches a row of README.md's environment tables.
var envRowRE = regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]*)` \\|")

// TestReadmeListsEnvironment checks that README.md's environment table has
// a row for every variable that internal/pipeline/main.go reads
// (OptionsFromEnv and Main).
func TestReadmeListsEnvironment(t *testing.T) {
	const mainGo = "../pipeline/main.go"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, mainGo, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return true
		}
		var name string
		switch fn := call.Fun.(type) {
		case *ast.Ident:
			name = fn.Name
		case *ast.SelectorExpr:
			name = fn.Sel.Name
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !strings.EqualFold(name, "getenv") || !ok || lit.Kind != token.STRING {
			return true
		}
		if v, err := strconv.Unquote(lit.Value); err == nil && !slices.Contains(read, v) {
			read = append(read, v)
		}
		return true
	})
	if len(read) < 5 {
		t.Fatalf("found only %q read in %s: has reading the environment moved?", read, mainGo)
	}
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range envRowRE.FindAllStringSubmatch(string(data), -1) {
		listed[m[1]] = true
	}
	for _, v := range read {
		if !listed[v] {
			t.Errorf("%s reads %s, but README.md's environment table has no row | `%s` | saying what it does", mainGo, v, v)
		}
	}
}

// archRowRE matches a row of README.md's architecture table.
var archRowRE = regexp.MustCompile("(?m)^\\| `(internal/[a-z0-9/]+)` \\|")

// TestReadmeNamesEveryPackage keeps README.md's architecture overview and
// the packages under internal/ the same set.
func TestReadmeNamesEveryPackage(t *testing.T) {
	packages := map[string]bool{}
	err := filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, err := filepath.Rel("../..", filepath.Dir(path))
			if err != nil {
				return err
			}
			packages[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, arch, ok := strings.Cut(string(data), "\n## Architecture\n")
	if !ok {
		t.Fatal(`README.md has no "## Architecture" section`)
	}
	if i := strings.Index(arch, "\n## "); i >= 0 {
		arch = arch[:i]
	}
	named := map[string]bool{}
	for _, m := range archRowRE.FindAllStringSubmatch(arch, -1) {
		named[m[1]] = true
	}
	for p := range packages {
		if !named[p] {
			t.Errorf("package %s is not in README.md's architecture table: add a row | `%s` | what it owns |", p, p)
		}
	}
	for p := range named {
		if !packages[p] {
			t.Errorf("README.md's architecture table names %s, which is not a package under internal/: remove or rename its row", p)
		}
	}
}
