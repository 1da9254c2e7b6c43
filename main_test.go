package watchlist

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/watchlist-go/watchlist/internal/testenv"
)

// shared is the control plane the tests of this package share, started by the first test that
// needs it (one start per package: each costs seconds). Its flags serve the fault tests: pods are
// served without the watch cache, so an etcd compaction makes a resume get 410; watches without
// timeoutSeconds end after 3-6 s; the apiserver can be restarted with the same certificates; and
// Service IPs do not run out.
var shared = testenv.NewShared(testenv.Options{
	APIServerFlags: map[string]string{
		"watch-cache-sizes":   "pods#0",
		"min-request-timeout": "3",
		// envtest's /24 holds 254 Service IPs, and nothing deletes the tests' namespaces (no
		// namespace controller runs): the suite's churn filled it.
		"service-cluster-ip-range": "10.0.0.0/16",
	},
	Restartable: true,
})

// plane returns the shared control plane, starting it if no test did yet.
func plane(t testing.TB) *testenv.Plane { return shared.Get(t) }

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" { // this binary as the child process of TestWarmRestartKilled
		os.Exit(runWarmChild())
	}
	ctrllog.SetLogger(logr.Discard()) // envtest's CRD helpers log through controller-runtime
	os.Exit(shared.RunMain(m))
}
