package watchlist

import (
	"context"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// streamSpec is one stream of every set: a kind in a scope, and the client that reads it.
type streamSpec struct {
	kind   kinds.Kind
	scope  stream.Scope
	client rest.Interface
}

// planStreams lists the streams of a set for kinds, from the options New was given: one per kind,
// or one per namespace for a namespaced kind under WithNamespaces.
func (r *Reader) planStreams(ks []kinds.Kind) error {
	for _, k := range ks {
		var scope stream.Scope
		if k.Object != reader.OTResource {
			scope = r.scopes[k.Object]
		}
		client := k.Client(r.clientset)
		if scope.MetadataOnly {
			var err error
			if client, err = k.MetadataClient(r.clientset); err != nil {
				return err
			}
		}
		if !k.Namespaced || r.namespaces == nil {
			r.streams = append(r.streams, streamSpec{kind: k, scope: scope, client: client})
			continue
		}
		for _, ns := range r.namespaces {
			scope.Namespace = ns
			r.streams = append(r.streams, streamSpec{kind: k, scope: scope, client: client})
		}
	}
	return nil
}

// streamSet is one complete set of streams, one per streamSpec, all feeding one output. A reader
// has one; during a relist, two.
type streamSet struct {
	specs   []streamSpec
	streams []*stream.Stream
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	stats    *stats
	stopOnce sync.Once

	failOnce sync.Once
	failed   chan struct{} // closed with err set when a stream could not open
	err      error

	// role is a setRole; the output's overlap methods write it.
	role atomic.Int32
	// slot is where the filter keeps this set's marks: 0 or 1, the one the current set does not use
	// when this is a relist's new set.
	slot int
	// synced is closed once every stream delivered its first complete state.
	synced chan struct{}
	// resyncing[i]: stream i was told to take its state again at a swap (versions that are not
	// integers); until it begins that state, what it still had in flight is dropped.
	resyncing []atomic.Bool
	// Guarded by the output's mu: which streams delivered a complete state, and how many have not;
	// each stream's last resume point the output saw (what a checkpoint saves).
	done     []bool
	unsynced int
	resume   []string
}

// startSet starts one stream per kind under parent; the set stops when parent ends or stop is
// called. A candidate is a relist's new set: it is one before any of its streams runs.
func (r *Reader) startSet(parent context.Context, candidate bool) *streamSet {
	ctx, cancel := context.WithCancel(parent)
	set := &streamSet{
		ctx:       ctx,
		cancel:    cancel,
		failed:    make(chan struct{}),
		stats:     r.stats,
		specs:     r.streams,
		resyncing: make([]atomic.Bool, len(r.streams)),
		synced:    make(chan struct{}),
		done:      make([]bool, len(r.streams)),
		unsynced:  len(r.streams),
		resume:    make([]string, len(r.streams)),
	}
	if candidate {
		r.mu.Lock()
		set.slot = 1 - r.current.slot
		r.mu.Unlock()
		r.output.beginOverlap(set)
	}
	for i, spec := range r.streams {
		var resume string
		if !candidate && r.resumeAt != nil {
			resume = r.resumeAt[i] // the first set of a reader restored from a checkpoint
			set.resume[i] = resume // a checkpoint before its first event keeps the point
		}
		set.streams = append(set.streams, stream.New(stream.Config{
			Kind:     spec.kind,
			Scope:    spec.scope,
			Client:   spec.client,
			Sink:     setSink{o: r.output, set: set, i: i},
			Observer: r.stats,
			Log:      r.log,
			Timing:   r.timing,
			Warnings: r.warnings,
			Resume:   resume,
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

func (s *streamSet) retiredNow() bool { return s.role.Load() == int32(roleRetired) }

// streamSynced counts stream i synced; the last one closes synced, and makes the reader synced
// when the set is current. The caller holds o.mu.
func (s *streamSet) streamSynced(i int, o *output) {
	if s.done[i] {
		return
	}
	s.done[i] = true
	if s.unsynced--; s.unsynced > 0 {
		return
	}
	close(s.synced)
	if s.role.Load() == int32(roleCurrent) {
		o.markSynced()
	}
}

func (s *streamSet) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.failed)
		s.cancel()
	})
}

// waitOpen returns nil once every stream is open, or the first stream's error, or ctx's, or
// errStopped when the set was stopped.
func (s *streamSet) waitOpen(ctx context.Context) error {
	for _, st := range s.streams {
		if err := s.wait(ctx, st.Opened()); err != nil {
			return err
		}
	}
	return nil
}

// waitSynced returns nil once every stream delivered its first complete state, or as waitOpen.
func (s *streamSet) waitSynced(ctx context.Context) error {
	return s.wait(ctx, s.synced)
}

// wait returns nil once ch is closed, even when the set stopped too.
func (s *streamSet) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-s.ctx.Done():
		select {
		case <-ch:
			return nil
		case <-s.failed: // fail cancels ctx too: report why
			return s.err
		default:
			return errStopped
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop cancels every stream and waits for their goroutines. Calls after the first only wait.
func (s *streamSet) stop() {
	s.cancel()
	s.wg.Wait()
	s.stopOnce.Do(s.stats.setStopped)
}
