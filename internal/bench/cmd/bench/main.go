// Command bench compares watchlist.Reader with a client-go informer on a local control plane: time
// to sync, heap, delivery lag and CPU under churn, relist cost. Run it with `make bench`; see
// BENCHMARKS.md and `bench -help`.
package main

import (
	"os"

	"github.com/watchlist-go/watchlist/internal/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr))
}
