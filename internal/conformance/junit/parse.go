package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ParseError is a JUnit file that is not well-formed XML or not JUnit at
// all: cut short by a runner that was killed while writing it, say.
type ParseError struct {
	File string
	// Line is 1-based; Offset counts the file's bytes from 0. ExactOffset
	// is false when so many invalid bytes were replaced before the error
	// that Offset counts the cleaned bytes instead.
	Line        int
	Offset      int64
	ExactOffset bool
	Err         error
}

func (e *ParseError) Error() string {
	where := fmt.Sprintf("line %d, byte %d", e.Line, e.Offset)
	if !e.ExactOffset {
		where = fmt.Sprintf("line %d, about byte %d", e.Line, e.Offset)
	}
	return fmt.Sprintf("JUnit file %s does not parse at %s: %v; the test runner may have stopped while writing it: see its log",
		e.File, where, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrNotJUnit is wrapped by a ParseError for well-formed XML whose root is
// neither <testsuites> nor <testsuite>, or a file with no element at all.
var ErrNotJUnit = errors.New("not JUnit XML")

// RunnerFile is the name of kubetest2's own JUnit file: its testcases are
// runner steps whatever their suite is called.
const RunnerFile = "junit_runner.xml"

// Parse reads one JUnit file; name is what errors and Case.File call it.
func Parse(r io.Reader, name string) (*Result, error) {
	cr := newCleanReader(r)
	d := xml.NewDecoder(cr)
	// The cleaner has made the bytes UTF-8 already; a declared encoding
	// (ISO-8859-1, say) is read as UTF-8 rather than refused.
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	p := &parser{d: d, file: name, runner: filepath.Base(name) == RunnerFile, res: &Result{}}
	if err := p.document(); err != nil {
		pe := &ParseError{File: name, Err: err}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			pe.Line = se.Line
		} else {
			pe.Line, _ = d.InputPos()
		}
		pe.Offset, pe.ExactOffset = cr.rawOffset(d.InputOffset())
		return nil, pe
	}
	return p.res, nil
}

// ParseFile reads the JUnit file at path.
func ParseFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read JUnit file: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// ParseFiles reads the files in the order their passes ran and merges them
// (Merge). Every file that does not parse is named in the error; the
// Result still holds the files that did.
func ParseFiles(paths ...string) (*Result, error) {
	var results []*Result
	var errs []error
	for _, p := range paths {
		r, err := ParseFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, r)
	}
	return Merge(results...), errors.Join(errs...)
}

type parser struct {
	d      *xml.Decoder
	file   string
	runner bool
	res    *Result
	text   []byte // reused buffer for character data
}

// document reads to the end of the input: one or more root elements.
func (p *parser) document() error {
	roots := 0
	for {
		tok, err := p.d.Token()
		if err == io.EOF {
			if roots == 0 {
				return fmt.Errorf("no root element: %w", ErrNotJUnit)
			}
			return nil
		}
		if err != nil {
			return err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		roots++
		switch se.Name.Local {
		case "testsuites":
			err = p.suites()
		case "testsuite":
			err = p.suite(se)
		default:
			return fmt.Errorf("the root element is <%s>, not <testsuites> or <testsuite>: %w", se.Name.Local, ErrNotJUnit)
		}
		if err != nil {
			return err
		}
	}
}

// suites reads the children of <testsuites> up to its end.
func (p *parser) suites() error {
	for {
		tok, err := p.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "testsuite":
				err = p.suite(t)
			case "testsuites":
				err = p.suites()
			default:
				err = p.d.Skip()
			}
			if err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// suite reads one <testsuite> up to its end.
func (p *parser) suite(se xml.StartElement) error {
	s := Suite{Name: attr(se, "name"), File: p.file}
	idx := len(p.res.Suites)
	p.res.Suites = append(p.res.Suites, s)
	for {
		tok, err := p.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "properties":
				err = p.properties(&p.res.Suites[idx])
			case "testcase":
				err = p.testcase(t, s.Name)
			case "testsuite":
				err = p.suite(t)
			default:
				err = p.d.Skip()
			}
			if err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

func (p *parser) properties(s *Suite) error {
	for {
		tok, err := p.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "property" {
				if err := p.d.Skip(); err != nil {
					return err
				}
				continue
			}
			name, value := attr(t, "name"), attr(t, "value")
			text, err := p.chardata()
			if err != nil {
				return err
			}
			if value == "" {
				value = text
			}
			if s.Properties == nil {
				s.Properties = map[string]string{}
			}
			s.Properties[name] = value
		case xml.EndElement:
			return nil
		}
	}
}

// testcase reads one <testcase> up to its end.
func (p *parser) testcase(se xml.StartElement, suite string) error {
	c := Case{
		Name:      attr(se, "name"),
		Classname: attr(se, "classname"),
		Duration:  seconds(attr(se, "time")),
		File:      p.file,
	}
	if c.Classname == "" {
		c.Classname = suite
	}
	switch {
	case p.runner || suite == "kubetest2":
		c.Kind = RunnerStep
	case isSuiteNode(c.Name):
		c.Kind = SuiteNode
	default:
		c.Kind = Spec
	}
	for {
		tok, err := p.token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var status Status
			switch t.Name.Local {
			case "failure":
				status = Failed
			case "error":
				status = Error
			case "skipped":
				status = Skipped
			default:
				// system-out, system-err (ginkgo's timeline), properties:
				// the log keeps them.
				if err := p.d.Skip(); err != nil {
					return err
				}
				continue
			}
			text, err := p.chardata()
			if err != nil {
				return err
			}
			// The first failure or error decides; either beats a skip.
			if c.Status != "" && !(c.Status == Skipped && status != Skipped) {
				continue
			}
			c.Status = status
			if status != Skipped {
				c.FailureType = attr(t, "type")
				if c.FailureType == "" {
					c.FailureType = string(status)
				}
			}
			c.Message = text
			if strings.TrimSpace(text) == "" {
				c.Message = attr(t, "message")
			}
		case xml.EndElement:
			if c.Status == "" {
				c.Status, c.FailureType = statusAttr(attr(se, "status"))
				if c.Status == Skipped {
					c.Message = attr(se, "status")
				}
			}
			p.res.Cases = append(p.res.Cases, c)
			return nil
		}
	}
}

// chardata collects the text of the element just opened, up to its end,
// leaving out any elements nested in it.
func (p *parser) chardata() (string, error) {
	p.text = p.text[:0]
	depth := 0
	for {
		tok, err := p.token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if depth == 0 {
				p.text = append(p.text, t...)
			}
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				s := string(p.text)
				if cap(p.text) > 1<<20 {
					p.text = nil // do not hold on to a huge message
				}
				return s, nil
			}
			depth--
		}
	}
}

// token is the next token; the end of the input inside an element is an
// error, as the decoder would say it.
func (p *parser) token() (xml.Token, error) {
	tok, err := p.d.Token()
	if err == io.EOF {
		line, _ := p.d.InputPos()
		return nil, &xml.SyntaxError{Msg: "unexpected EOF", Line: line}
	}
	return tok, err
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// statusAttr reads ginkgo's status attribute for a testcase that has no
// <failure>, <error> or <skipped> child.
func statusAttr(s string) (Status, string) {
	switch s {
	case "failed", "timedout", "aborted":
		return Failed, s
	case "panicked", "interrupted", "error", "errored":
		return Error, s
	case "skipped", "pending", "disabled":
		return Skipped, ""
	}
	return Passed, ""
}

// seconds parses a time attribute: ginkgo writes Go's shortest float
// ("6.7821e-05"), some writers group thousands ("1,234.5"). Anything
// unreadable is zero: a duration is not worth failing a parse for.
func seconds(s string) time.Duration {
	s = strings.TrimSpace(strings.ReplaceAll(s, ",", ""))
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f > float64(math.MaxInt64)/1e9 {
		return 0
	}
	return time.Duration(math.Round(f * 1e9))
}

// suiteNodes are ginkgo's suite-level node types as they appear in a
// testcase name ("[%s]" of types.NodeType), including the legacy
// "DeferCleanup".
var suiteNodes = map[string]bool{
	"BeforeSuite":             true,
	"SynchronizedBeforeSuite": true,
	"AfterSuite":              true,
	"SynchronizedAfterSuite":  true,
	"ReportBeforeSuite":       true,
	"ReportAfterSuite":        true,
	"DeferCleanup (Suite)":    true,
	"DeferCleanup":            true,
}

func isSuiteNode(name string) bool {
	if !strings.HasPrefix(name, "[") {
		return false
	}
	end := strings.IndexByte(name, ']')
	return end > 0 && suiteNodes[name[1:end]]
}
