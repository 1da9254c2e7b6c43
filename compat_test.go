package watchlist

import (
	"context"
	"testing"
	"time"

	"github.com/watchlist-go/watchlist/internal/stream"
)

// TestServerMode reads pods and services from the shared plane and says how: WatchList, or the
// fallback to LIST + WATCH when the server refuses it. make test-compat prints its line for every
// kube-apiserver version; on the version the suite pins, WatchList must be used.
func TestServerMode(t *testing.T) {
	version, err := plane(t).Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	rr := startReader(t, plane(t).Config, RTPod|RTService)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rr.r.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	mode := "WatchList"
	if rr.r.stats.restartCount(stream.ReasonFallback) > 0 {
		mode = "LIST+WATCH fallback"
	}
	t.Logf("compat: server %s: %s (%d objects synced)", version.GitVersion, mode, rr.c.total())
	if version.GitVersion == pinnedServer && mode != "WatchList" {
		t.Errorf("kube-apiserver %s fell back: WatchList is on by default there", pinnedServer)
	}
}

// pinnedServer is the kube-apiserver version hack/envtest-assets.sh builds by default.
const pinnedServer = "v1.37.2"
