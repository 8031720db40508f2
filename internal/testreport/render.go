package testreport

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
)

//go:embed assets/page.html.tmpl
var pageHTML string

//go:embed assets/style.css
var styleCSS string

//go:embed assets/script.js
var scriptJS string

// pageTemplate is parsed once; a template that does not parse is a bug
// caught by every test, not a condition of the input.
var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// scriptHash is the page's own script in its Content-Security-Policy: the
// page runs that script and nothing else, whatever a test's name or
// message holds, and loads nothing from anywhere.
var scriptHash = func() string {
	sum := sha256.Sum256([]byte(scriptJS))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()
