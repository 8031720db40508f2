// Command mage is what `go tool mage` runs in this repository: the pinned
// mage, with compiles serialised per checkout and signals that stop the run
// (see internal/magerun).
package main

import (
	"os"

	"github.com/hyperfork/hyperfork/internal/magerun"
)

func main() {
	os.Exit(magerun.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
