// Package citest holds the tests of the CI integrations in ci/: the GitHub
// Actions workflows (linted by the pinned actionlint, with shellcheck on
// their run scripts, and their scripts run with bash: the plan job's against
// the real `go tool mage matrix`, the release job's exit-code mapping against
// a stand-in for the release), the Jenkinsfile (checked against the report's
// JSON, the pipeline's JUnit folder and the documented credentials: no
// Jenkins runs here), and ci/README.md (every secret, variable and
// credential the files use is documented). It has no code of its own.
package citest
