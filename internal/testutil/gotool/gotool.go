// Package gotool finds the servers that go.mod pins as tools (versitygw,
// distribution's registry) and a free loopback port to start them on, for
// the tests and the benchmarks that run them as real processes.
package gotool

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Path returns the binary of the tool `go tool NAME` runs, built into the
// build cache the first time (minutes on two cores, then instant). dir is
// the module whose go.mod pins it; "" is the working directory. Each name
// is looked up once per process.
func Path(dir, name, module string) (string, error) {
	mu.Lock()
	e, ok := cache[name]
	if !ok {
		e = &entry{}
		cache[name] = e
	}
	mu.Unlock()
	e.once.Do(func() { e.path, e.err = lookup(dir, name, module) })
	return e.path, e.err
}

type entry struct {
	once sync.Once
	path string
	err  error
}

var (
	mu    sync.Mutex
	cache = map[string]*entry{}
)

func lookup(dir, name, module string) (string, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("go is not on PATH: %w", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "-n", name)
	cmd.Dir, cmd.Stderr = dir, &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("`go tool -n %s` failed (check that go.mod pins %s as a tool): %v: %s", name, module, err, strings.TrimSpace(stderr.String()))
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s binary %s: %w", name, path, err)
	}
	return path, nil
}

// FreeAddr picks a free loopback port. The port is closed again before the
// server binds it; on a test machine nothing else takes it meanwhile.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("no free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
