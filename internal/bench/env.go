package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// envReader reads HYPERFORK_BENCH_* variables and collects every malformed
// value, so one run reports them all.
type envReader struct {
	getenv func(string) string
	errs   []error
}

// num sets *dst from a positive whole number; unset leaves it alone.
func (e *envReader) num(name string, dst *int) {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: write a positive whole number", name, v))
		return
	}
	*dst = n
}

// list returns the comma-separated, non-empty items of a variable.
func (e *envReader) list(name string) []string {
	var out []string
	for _, s := range strings.Split(e.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (e *envReader) err() error { return errors.Join(e.errs...) }

// orDefault sets *v to d when it is zero.
func orDefault(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}
