package citest

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMENamesWhatCIExpects checks that ci/README.md documents every
// secret, repository variable and Jenkins credential the files use.
func TestREADMENamesWhatCIExpects(t *testing.T) {
	readme := readFile(t, filepath.Join(root(t), "ci", "README.md"))
	var want []string
	want = append(want, secretNames(t)...)
	for _, f := range []string{"hyperfork-release.yml", "hyperfork-status.yml"} {
		src := readFile(t, filepath.Join(root(t), "ci", "github", f))
		for _, m := range regexp.MustCompile(`\bvars\.(\w+)`).FindAllStringSubmatch(src, -1) {
			want = append(want, m[1])
		}
	}
	for _, m := range regexp.MustCompile(`credentialsId: '([^']+)'`).FindAllStringSubmatch(readFile(t, filepath.Join(root(t), "ci", "Jenkinsfile")), -1) {
		want = append(want, m[1])
	}
	want = append(want, "HYPERFORK_JUNIT", "github-summary", "s3://", "not executed")
	slices.Sort(want)
	for _, w := range slices.Compact(want) {
		if !strings.Contains(readme, w) {
			t.Errorf("ci/README.md does not name %s", w)
		}
	}
}
