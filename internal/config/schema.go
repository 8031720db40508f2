package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// examples are shown after "must be ..." for the keys people most often get
// wrong; other keys get an example by type.
var examples = map[string]string{
	"build.platforms":    "[linux/amd64]",
	"build.targets":      "[./cmd/kubelet]",
	"build.ldflags":      `["-X k8s.io/component-base/version.gitVersion={{.Version}}"]`,
	"build.images":       "[images/hyperkube.yaml]",
	"build.testTargets":  "[./test/e2e]",
	"build.testCommands": "[github.com/onsi/ginkgo/v2/ginkgo]",
	"test.platform":      "linux/amd64",
	"test.command":       `["./hack/e2e.sh", "--junit-dir", "$HYPERFORK_ARTIFACTS"]`,
	"test.timeout":       "3h",
	"publish.keep":       "5",
	"logs.keep":          "10",
	"branches":           "[{name: master}]",
	"notify":             "[{type: file, dir: notifications}]",
	"upstream":           "{url: https://github.com/kubernetes/kubernetes.git}",
	"fork":               "{url: https://git.example.com/team/kubernetes.git, tokenEnv: FORK_TOKEN}",
	"state":              "{store: .hyperfork}",
	"logs":               "{store: logs, keep: 10}",
	"publish":            "{registry: registry.example.com/team/hyperkube, keep: 5}",
	"test":               "{runner: kubetest2, timeout: 3h}",
	"build":              "{platforms: [linux/amd64]}",
	"labels":             "{org.example.team: platform}",
	// elements of lists, by the list's path
	"build.platforms[]":    "linux/amd64",
	"build.targets[]":      "./cmd/kubelet",
	"build.ldflags[]":      `"-X main.version={{.Version}}"`,
	"build.images[]":       "images/hyperkube.yaml",
	"build.testTargets[]":  "./test/e2e",
	"build.testCommands[]": "github.com/onsi/ginkgo/v2/ginkgo",
	"test.command[]":       "./hack/e2e.sh",
	"branches[]":           "{name: master}",
	"notify[]":             "{type: file, dir: notifications}",
	"binaries":             "[kubelet, kubectl]",
	"entrypoint":           "[/usr/local/bin/kubelet]",
	// keys the configuration reference in README.md shows; elements of
	// lists by "list[].key", map entries by "map.<placeholder>", keys of
	// images/*.yaml by "image.key"
	"apiVersion":                          APIVersion,
	"kind":                                Kind,
	"upstream.url":                        "https://github.com/kubernetes/kubernetes.git",
	"upstream.tokenEnv":                   "UPSTREAM_TOKEN",
	"fork.url":                            "https://github.com/your-org/kubernetes.git",
	"fork.tokenEnv":                       "HYPERFORK_FORK_TOKEN",
	"branches[].name":                     "release-1.37",
	"branches[].upstream":                 "release-1.37",
	"branches[].strategy":                 "ff-only",
	"build.buildkit":                      "tcp://buildkitd.example.com:1234",
	"build.buildkitByPlatform.<platform>": "linux/arm64: tcp://buildkitd-arm64.example.com:1234",
	"build.buildkitTLS":                   "{ca: certs/ca.pem, cert: certs/client.pem, key: certs/client-key.pem}",
	"build.buildkitTLS.ca":                "certs/ca.pem",
	"build.buildkitTLS.cert":              "certs/client.pem",
	"build.buildkitTLS.key":               "certs/client-key.pem",
	"build.buildkitTLS.serverName":        "buildkitd.example.com",
	"build.builderImage":                  "golang:1.26",
	"build.env.<NAME>":                    "GOFLAGS: -mod=vendor",
	"build.goproxy":                       "https://proxy.golang.org,direct",
	"test.runner":                         "exec",
	"test.parallel":                       "2",
	"test.retries":                        "2",
	"test.minTests":                       "400",
	"test.focusRegex":                     `\[sig-node\].*\[Conformance\]`,
	"test.skipRegex":                      `\[Serial\]|\[Slow\]`,
	"test.ginkgoParallel":                 "8",
	"test.serialFocusRegex":               `""`,
	"test.serialSkipRegex":                `\[Disruptive\]`,
	"test.baseImage":                      "docker.io/kindest/base:v20250214-acbabc1a",
	"test.nodeImage":                      "registry.example.com/team/kind-node",
	"publish.registry":                    "ghcr.io/your-org/kubernetes",
	"publish.maxDeletes":                  "50",
	"publish.keepCandidates":              "72h",
	"publish.usernameEnv":                 "REGISTRY_USER",
	"publish.passwordEnv":                 "REGISTRY_TOKEN",
	"logs.store":                          "s3://your-bucket/hyperfork/logs",
	"notify[].type":                       "slack",
	"notify[].dir":                        "notifications",
	"notify[].urlEnv":                     "HYPERFORK_WEBHOOK_URL",
	"notify[].secretEnv":                  "HYPERFORK_WEBHOOK_SECRET",
	"notify[].events":                     "[sync.conflict, release.*]",
	"notify[].smtp":                       "smtp.example.com:587",
	"notify[].from":                       "hyperfork@example.com",
	"notify[].to":                         "[platform-team@example.com]",
	"notify[].usernameEnv":                "SMTP_USER",
	"notify[].passwordEnv":                "SMTP_PASSWORD",
	"notify[].maxAttachment":              "10MB",
	"notify[].tokenEnv":                   "SLACK_BOT_TOKEN",
	"notify[].channel":                    `"#builds"`,
	"state.store":                         "s3://your-bucket/hyperfork",
	"state.workDir":                       "/var/lib/hyperfork",
	"state.lease":                         "5m",
	"state.s3":                            "{region: eu-west-1, endpoint: https://minio.example.com:9000}",
	"state.s3.region":                     "eu-west-1",
	"state.s3.endpoint":                   "https://minio.example.com:9000",
	"image.name":                          "hyperkube",
	"image.base":                          "registry.k8s.io/build-image/go-runner:v2.4.0-go1.25.5-bookworm.0",
	"image.labels.<label>":                "org.example.team: platform",
}

// walk checks node n against the Go type t: every key must be a yaml tag of
// the struct, and every value must have the shape the type needs. It records
// the line of every path it sees in d.lines. It never stops early, so one run
// reports every unknown key and every wrong type.
func (d *doc) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, seen := d.lines[path]; !seen {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		d.null[path] = true // an empty value keeps the default
		return
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!int" || n.Tag == "!!float" {
			d.wrongType(n, t, path)
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			d.bad[path] = true
			d.probs.add(d.file, n.Line, "%s must be a duration with a unit, e.g. %s or 90m; %q is not one",
				path, example(path, t), n.Value)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.wrongType(n, t, path)
			return
		}
		d.walkStruct(n, t, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.wrongType(n, t, path)
			return
		}
		for i, item := range n.Content {
			ip := indexPath(path, i)
			if isNull(item) {
				// yaml.v3 drops such an item without a word; a '-' left
				// behind is a branch (or platform, or notifier) forgotten.
				d.lines[ip] = item.Line
				d.bad[ip] = true
				d.probs.add(d.file, item.Line, "%s is empty (a '-' with no value, or null): write an entry such as %s, or remove the line",
					ip, example(ip, t.Elem()))
				continue
			}
			d.walk(item, t.Elem(), ip)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.wrongType(n, t, path)
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.probs.add(d.file, k.Line, "%s: keys must be plain strings", path)
				continue
			}
			if prev, dup := seen[k.Value]; dup {
				d.probs.add(d.file, k.Line, "%s: key %q is already written on line %d: keep only one", path, k.Value, prev)
				continue
			}
			seen[k.Value] = k.Line
			d.lines[joinPath(path, k.Value)] = k.Line
			d.walk(v, t.Elem(), joinPath(path, k.Value))
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.wrongType(n, t, path)
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.wrongType(n, t, path)
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.wrongType(n, t, path)
		}
	}
}

// isNull reports whether n (through aliases) is written with no value.
func isNull(n *yaml.Node) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (d *doc) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.probs.add(d.file, k.Line, "%s: keys must be plain words such as %s", where(path), quoteList(keysOf(fields)))
			continue
		}
		if k.Value == "<<" { // a merge key: its mappings hold keys of this struct
			d.walkMerge(v, t, path)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.probs.add(d.file, k.Line, "key %q in %s is already written on line %d: keep only one", k.Value, where(path), prev)
			d.bad[path] = true // yaml.v3 decodes none of this mapping
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			d.unknownKey(k, path, keysOf(fields))
			continue
		}
		p := joinPath(path, k.Value)
		d.lines[p] = k.Line
		d.walk(v, f.Type, p)
	}
}

func (d *doc) walkMerge(v *yaml.Node, t reflect.Type, path string) {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		d.walkStruct(v, t, path)
	case yaml.SequenceNode:
		for _, m := range v.Content {
			d.walkMerge(m, t, path)
		}
	default:
		d.probs.add(d.file, v.Line, "%s: << must merge a mapping (an alias such as *defaults)", where(path))
	}
}

func (d *doc) wrongType(n *yaml.Node, t reflect.Type, path string) {
	d.bad[path] = true
	d.probs.add(d.file, n.Line, "%s must be %s, e.g. %s; found %s", path, describe(t), example(path, t), found(n))
}

// yamlFields maps yaml keys to struct fields; fields tagged "-" or untagged
// are not read from the file.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f
	}
	return fields
}

// keysOf lists the keys in the order the struct declares them, which is the
// order the documentation shows them in.
func keysOf(fields map[string]reflect.StructField) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return fields[a].Index[0] - fields[b].Index[0] })
	return keys
}

// unknownKey reports key, which t (at path) does not have. A likely typo
// gets "did you mean"; a key that belongs elsewhere in the file is pointed
// there. The intended key is marked bad, so that its absence is not reported
// a second time.
func (d *doc) unknownKey(k *yaml.Node, path string, known []string) {
	msg := fmt.Sprintf("unknown key %q in %s", k.Value, where(path))
	if s := suggest(k.Value, known); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
		d.bad[joinPath(path, s)] = true
	} else if homes := keyHomes(d.root, "", k.Value); len(homes) > 0 {
		msg += fmt.Sprintf(": it belongs under %s, move it there.", strings.Join(homes, " or "))
	} else {
		msg += "."
	}
	d.probs.add(d.file, k.Line, "%s Known keys here: %s", msg, strings.Join(known, ", "))
}

// keyHomes lists the struct paths (from root) that have key, for pointing a
// misplaced key to where it belongs.
func keyHomes(t reflect.Type, path, key string) []string {
	for t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) {
		t = t.Elem()
		if path != "" {
			path += "[]"
		}
	}
	if t == nil || t.Kind() != reflect.Struct || t == durationType {
		return nil
	}
	var homes []string
	fields := yamlFields(t)
	for _, name := range keysOf(fields) {
		if name == key && path != "" {
			homes = append(homes, path)
		}
		homes = append(homes, keyHomes(fields[name].Type, joinPath(path, name), key)...)
	}
	return homes
}

func where(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.Struct:
		return "a mapping of keys to values"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "a list of mappings"
	case t.Kind() == reflect.Slice:
		return "a list of " + plural(t.Elem())
	case t.Kind() == reflect.Map:
		return "a mapping of names to " + plural(t.Elem())
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "a whole number"
	default:
		return "a string"
	}
}

func plural(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "strings"
	case reflect.Bool:
		return "booleans"
	default:
		return "numbers"
	}
}

func example(path string, t reflect.Type) string {
	last := path
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		last = path[i+1:]
	}
	if e, ok := examples[path]; ok {
		return e
	}
	if strings.HasSuffix(path, "]") {
		if e, ok := examples[parentPath(path)+"[]"]; ok {
			return e
		}
	}
	if e, ok := examples[last]; ok {
		return e
	}
	switch {
	case t == durationType:
		return "3h"
	case t.Kind() == reflect.Struct:
		return "{key: value}"
	case t.Kind() == reflect.Slice:
		return "[a, b]"
	case t.Kind() == reflect.Map:
		return "{NAME: value}"
	case t.Kind() == reflect.Bool:
		return "true"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "5"
	default:
		return `"text"`
	}
}

func found(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!int":
		return "the number " + n.Value
	case "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	}
	return fmt.Sprintf("the string %q", n.Value)
}

// suggest returns the known key closest to key, or "" when none is close
// enough to be a likely typo.
func suggest(key string, known []string) string {
	best, bestDist := "", 1<<30
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		d := levenshtein(strings.ToLower(key), strings.ToLower(k))
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	limit := max(2, len(key)/3)
	if bestDist <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
