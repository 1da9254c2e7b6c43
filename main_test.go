package watchlist

import (
	"os"
	"testing"

	"github.com/watchlist-go/watchlist/internal/testenv"
)

// plane is the control plane every test of this package shares (one start per package: each costs
// seconds). Its flags serve the fault tests: pods are served without the watch cache, so an etcd
// compaction makes a resume get 410; watches without timeoutSeconds end after 3-6 s; and the
// apiserver can be restarted with the same certificates.
var plane *testenv.Plane

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, testenv.Options{
		APIServerFlags: map[string]string{
			"watch-cache-sizes":   "pods#0",
			"min-request-timeout": "3",
		},
		Restartable: true,
	}, func(p *testenv.Plane) { plane = p }))
}
