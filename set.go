package watchlist

import (
	"context"
	"sync"

	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// streamSet is one complete set of streams, one per kind, all feeding one output. A reader has one;
// during a relist, two.
type streamSet struct {
	streams []*stream.Stream
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	stats    *stats
	stopOnce sync.Once

	failOnce sync.Once
	failed   chan struct{} // closed with err set when a stream could not open
	err      error

	// Guarded by the output's mu.
	candidate bool                         // a relist's new set, not yet swapped in
	retired   bool                         // replaced by a newer set: its events are ignored
	pending   map[reader.ObjectType]uint32 // sweeps a candidate owes, done at the swap
}

// startSet starts one stream per kind under parent; the set stops when parent ends or stop is called.
func (r *Reader) startSet(parent context.Context, candidate bool) *streamSet {
	ctx, cancel := context.WithCancel(parent)
	set := &streamSet{
		ctx:       ctx,
		cancel:    cancel,
		failed:    make(chan struct{}),
		stats:     r.stats,
		candidate: candidate,
		pending:   make(map[reader.ObjectType]uint32),
	}
	for _, k := range r.kinds {
		set.streams = append(set.streams, stream.New(stream.Config{
			Kind:     k,
			Client:   k.Client(r.clientset),
			Sink:     setSink{o: r.output, set: set},
			Observer: r.stats,
			Log:      r.log,
			Timing:   r.timing,
		}))
	}
	r.stats.setStarted()
	for _, st := range set.streams {
		set.wg.Go(func() {
			if err := st.Run(ctx); err != nil {
				set.fail(err)
			}
		})
	}
	return set
}

func (s *streamSet) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.failed)
		s.cancel()
	})
}

// waitOpen returns nil once every stream is open, or the first stream's error, or ctx's.
func (s *streamSet) waitOpen(ctx context.Context) error {
	return s.waitAll(ctx, (*stream.Stream).Opened)
}

// waitSynced returns nil once every stream delivered its first complete state.
func (s *streamSet) waitSynced(ctx context.Context) error {
	return s.waitAll(ctx, (*stream.Stream).Synced)
}

func (s *streamSet) waitAll(ctx context.Context, ch func(*stream.Stream) <-chan struct{}) error {
	for _, st := range s.streams {
		select {
		case <-ch(st):
		case <-s.ctx.Done():
			select {
			case <-s.failed: // fail cancels ctx too: report why
				return s.err
			default:
				return errStopped
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// stop cancels every stream and waits for their goroutines. Calls after the first only wait.
func (s *streamSet) stop() {
	s.cancel()
	s.wg.Wait()
	s.stopOnce.Do(s.stats.setStopped)
}
