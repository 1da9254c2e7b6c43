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

// churner creates, updates and deletes objects in one namespace, at random from a seed, until
// stopped. Writes that fail (the server may be down on purpose) are counted, not fatal.
type churner struct {
	cancel         context.CancelFunc
	done           chan struct{}
	writes, failed atomic.Int64
}

// churnOps are a churner's writes through one kind of client, on objects it knows as T: create
// makes the i-th object (its kind is the ops' to choose), touch changes one so that it gets a new
// resourceVersion, remove deletes one.
type churnOps[T any] struct {
	create func(ctx context.Context, rng *rand.Rand, i int) (T, error)
	touch  func(ctx context.Context, obj T, i int) (T, error)
	remove func(ctx context.Context, obj T) error
}

// churn starts a churner of objects of kinds, through cs, with a pause between writes.
func churn(t *testing.T, cs *kubernetes.Clientset, ns string, seed uint64, pause time.Duration, kinds ...reader.ObjectType) *churner {
	t.Helper()
	return startChurn(t, seed, pause, churnOps[client.Object]{
		create: func(ctx context.Context, rng *rand.Rand, i int) (client.Object, error) {
			obj, err := testenv.NewObject(testenvKind[kinds[rng.IntN(len(kinds))]], ns, fmt.Sprintf("churn-%d-%d", seed, i))
			if err != nil {
				return nil, err
			}
			return testenv.Create(ctx, cs, obj)
		},
		touch: func(ctx context.Context, obj client.Object, _ int) (client.Object, error) {
			return testenv.Touch(ctx, cs, obj)
		},
		remove: func(ctx context.Context, obj client.Object) error { return testenv.Delete(ctx, cs, obj) },
	})
}

// startChurn starts a churner that writes through ops; stop it with stop (the test's cleanup does).
func startChurn[T any](t *testing.T, seed uint64, pause time.Duration, ops churnOps[T]) *churner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &churner{cancel: cancel, done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t.Cleanup(func() { c.stop() })
	go func() {
		defer close(c.done)
		var live []T
		for i := 0; ctx.Err() == nil; i++ {
			var err error
			switch p := rng.IntN(10); {
			case len(live) < 5 || p < 4:
				var obj T
				if obj, err = ops.create(ctx, rng, i); err == nil {
					live = append(live, obj)
				}
			case p < 7:
				j := rng.IntN(len(live))
				var obj T
				if obj, err = ops.touch(ctx, live[j], i); err == nil {
					live[j] = obj
				}
			default:
				j := rng.IntN(len(live))
				if err = ops.remove(ctx, live[j]); err == nil {
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
