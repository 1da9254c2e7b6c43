package watchlist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes"

	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// TestCloseAtRandomMoments: Close, from several goroutines at once, during the initial sync, during
// churn, during backoff (server unreachable) and during a relist. Every call returns, out closes
// once, and no goroutine of the reader is left.
func TestCloseAtRandomMoments(t *testing.T) {
	for _, moment := range []string{"initial sync", "churn", "backoff", "relist"} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", moment, seed), func(t *testing.T) {
				closeAt(t, moment, seed)
			})
		}
	}
}

func closeAt(t *testing.T, moment string, seed uint64) {
	leaks := goleak.IgnoreCurrent()
	rng := rand.New(rand.NewPCG(seed, 4))
	p, err := testenv.NewProxy(plane(t).APIServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(p.Config(plane(t).Config))
	if err != nil {
		t.Fatal(err)
	}
	opts := []Option{withTiming(fastTiming())}
	if moment == "relist" {
		opts = append(opts, withRelistPeriod(200*time.Millisecond))
	}
	r, err := New(context.Background(), cs, RTAll, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Entry)
	consumed := make(chan int)
	go func() { // a slow consumer
		n := 0
		for range out {
			n++
			time.Sleep(50 * time.Microsecond)
		}
		consumed <- n
	}()
	if err := r.SetOut(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, plane(t).Clientset, "close")
	ch := churn(t, plane(t).Clientset, ns, seed, 2*time.Millisecond, reader.OTPod, reader.OTService)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if moment != "initial sync" {
		if err := r.WaitForSync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	switch moment {
	case "backoff":
		p.Block()
	case "relist":
		waitFor(t, 20*time.Second, "a relist under way", func() bool { now, _, _ := r.stats.setCounts(); return now == 2 })
	}
	time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := r.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	select {
	case n := <-consumed:
		t.Logf("%s: closed after %d entries", moment, n)
	case <-ctx.Done():
		t.Fatal("out not closed")
	}
	if now, most, _ := r.stats.setCounts(); now != 0 || most > 2 {
		t.Errorf("after Close: %d sets running (want 0), at most %d at once (want <= 2)", now, most)
	}
	ch.stop()
	_ = p.Close()
	goleak.VerifyNone(t, leaks)
}
