package watchlist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// churner creates, updates and deletes objects of some kinds in one namespace, at random from a
// seed, until stopped. Writes that fail (the server may be down on purpose) are counted, not fatal.
type churner struct {
	cancel         context.CancelFunc
	done           chan struct{}
	writes, failed atomic.Int64
}

// churn starts a churner with a pause between writes; stop it with stop.
func churn(t *testing.T, cs *kubernetes.Clientset, ns string, seed uint64, pause time.Duration, kinds ...reader.ObjectType) *churner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &churner{cancel: cancel, done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t.Cleanup(func() { c.stop() })
	go func() {
		defer close(c.done)
		var live []client.Object
		for i := 0; ctx.Err() == nil; i++ {
			var err error
			switch p := rng.IntN(10); {
			case len(live) < 5 || p < 4:
				ot := kinds[rng.IntN(len(kinds))]
				var obj client.Object
				if obj, err = testenv.NewObject(testenvKind[ot], ns, fmt.Sprintf("churn-%d-%d", seed, i)); err == nil {
					if obj, err = testenv.Create(ctx, cs, obj); err == nil {
						live = append(live, obj)
					}
				}
			case p < 7:
				_, err = testenv.Touch(ctx, cs, live[rng.IntN(len(live))])
			default:
				j := rng.IntN(len(live))
				if err = testenv.Delete(ctx, cs, live[j]); err == nil {
					live = append(live[:j], live[j+1:]...)
				}
			}
			c.writes.Add(1)
			if err != nil {
				c.failed.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}()
	return c
}

// stop stops the churner, waits for it and returns how many writes it made.
func (c *churner) stop() int64 {
	c.cancel()
	<-c.done
	return c.writes.Load()
}
