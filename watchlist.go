package watchlist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// RetrieveType is a set of kinds to watch; see package reader.
type RetrieveType = reader.RetrieveType

// Entry is one change to one object; see package reader.
type Entry = reader.Entry

// The RetrieveType bits, as in package reader.
const (
	RTNode              = reader.RTNode
	RTPod               = reader.RTPod
	RTNamespace         = reader.RTNamespace
	RTPersistentVolume  = reader.RTPersistentVolume
	RTRBAC              = reader.RTRBAC
	RTService           = reader.RTService
	RTDeployment        = reader.RTDeployment
	RTIngressController = reader.RTIngressController
	RTEndpoint          = reader.RTEndpoint
	RTEndpointSlice     = reader.RTEndpointSlice
	RTAll               = reader.RTAll
)

// Errors for calls in the wrong order; test with errors.Is.
var (
	// ErrClosed: the reader was closed (or its Run's context ended).
	ErrClosed = errors.New("watchlist: reader closed")
	// ErrNoOut: Run was called before SetOut.
	ErrNoOut = errors.New("watchlist: SetOut was not called")
	// ErrRunning: SetOut or Run was called after Run.
	ErrRunning = errors.New("watchlist: Run was already called")
	// ErrOutSet: SetOut was called a second time.
	ErrOutSet = errors.New("watchlist: SetOut was already called")
	// ErrNotRunning: WaitForSync was called before Run.
	ErrNotRunning = errors.New("watchlist: Run was not called")
	errStopped    = errors.New("streams stopped")
)

// Reader merges one stream per kind into one channel of entries. Make one with New, give it a channel
// with SetOut, start it with Run and stop it with Close. Its methods are safe for concurrent use.
type Reader struct {
	clientset   *kubernetes.Clientset
	types       RetrieveType
	resources   []schema.GroupVersionResource      // WithResources, in order; Run adds their kinds
	namespaces  []string                           // WithNamespaces; nil: every namespace
	scopes      map[reader.ObjectType]stream.Scope // selectors and metadata-only by kind (no namespace)
	log         logr.Logger
	filterSize  int
	relistEvery time.Duration
	timing      stream.Timing
	warnings    *stream.Warnings // the servers' warnings, each logged once at V(1)
	relistLimit time.Duration    // how long a relist may take before it is abandoned and retried
	store       CheckpointStore  // WithCheckpoint's; nil: none
	saveEvery   time.Duration    // WithCheckpoint's period
	saveMu      ctxMutex         // one checkpoint save at a time
	resumeAt    []string         // each stream's resume point from the checkpoint Run loaded; nil: none
	stats       *stats
	registry    prometheus.Registerer // WithMetrics's, registered once New validated every option
	// kinds are the built-in kinds of retrieveTypes, and, once Run discovered them, those of
	// WithResources; streams is what each set runs. Run writes both under mu before any set starts.
	kinds   []kinds.Kind
	streams []streamSpec

	// Locks, in the order they may be taken: relistMu, then mu. mu is a leaf, held only to read or
	// write the fields below it; output's lock is never taken while it is held (see output).
	mu       sync.Mutex
	out      chan Entry
	output   *output
	running  bool
	opened   bool // Run returned nil: every stream of the first set opened
	closed   bool
	err      error              // what stopped the reader
	cancel   context.CancelFunc // ends every stream
	initial  *streamSet         // the set Run started; Run waits for it to open
	current  *streamSet         // the set being delivered; a relist's swap replaces it
	relister sync.WaitGroup     // the relist loop and the checkpoint loop
	relistMu ctxMutex           // one relist at a time
	lifetime context.Context    // the streams' context, set by Run

	closeOnce sync.Once
	stopping  chan struct{} // closed when the reader starts to stop
	done      chan struct{} // closed once every goroutine ended and out is closed
}

// New returns a Reader for the kinds set in retrieveTypes, and the resources of WithResources,
// through clientset. It errors, and never panics, on a nil clientset, an unknown bit, nothing to
// read (no bit and no WithResources) or a bad option. ctx bounds only New.
func New(ctx context.Context, clientset *kubernetes.Clientset, retrieveTypes RetrieveType, opts ...Option) (*Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watchlist: %w", err)
	}
	if clientset == nil {
		return nil, errors.New("watchlist: nil clientset")
	}
	if unknown := retrieveTypes &^ reader.RTAll; unknown != 0 {
		return nil, fmt.Errorf("watchlist: unknown RetrieveType bits %#x", uint32(unknown))
	}
	r := &Reader{
		clientset:   clientset,
		types:       retrieveTypes,
		kinds:       kinds.For(retrieveTypes),
		scopes:      make(map[reader.ObjectType]stream.Scope),
		log:         logr.Discard(),
		timing:      stream.DefaultTiming(),
		relistLimit: 10 * time.Minute,
		stats:       newStats(),
		relistMu:    newCtxMutex(),
		saveMu:      newCtxMutex(),
		stopping:    make(chan struct{}),
		done:        make(chan struct{}),
	}
	for _, k := range r.kinds {
		if k.Client(clientset) == nil {
			return nil, fmt.Errorf("watchlist: clientset has no REST client for %s (build it with kubernetes.NewForConfig)", k)
		}
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("watchlist: option %d is nil", i)
		}
		if err := opt(r); err != nil {
			return nil, fmt.Errorf("watchlist: %w", err)
		}
	}
	if retrieveTypes == 0 && len(r.resources) == 0 {
		return nil, errors.New("watchlist: nothing to read: no RetrieveType bit set and no WithResources")
	}
	if len(r.resources) > 0 {
		if k, err := kinds.Resource(0, r.resources[0], metav1.APIResource{}); err != nil || k.Client(clientset) == nil {
			return nil, errors.New("watchlist: clientset has no REST client to read resources through (build it with kubernetes.NewForConfig)")
		}
	}
	r.warnings = stream.NewWarnings(r.log.V(1))
	if err := r.planStreams(r.kinds); err != nil {
		return nil, fmt.Errorf("watchlist: %w", err)
	}
	if err := r.register(); err != nil {
		return nil, fmt.Errorf("watchlist: %w", err)
	}
	return r, nil
}

// SetOut gives the reader the channel it delivers to. Call it once, before Run; the reader closes out
// when it stops. Sends block: the consumer sets the pace.
func (r *Reader) SetOut(ctx context.Context, out chan Entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("watchlist: %w", err)
	}
	if out == nil {
		return errors.New("watchlist: SetOut: nil channel")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return ErrClosed
	case r.running:
		return ErrRunning
	case r.out != nil:
		return ErrOutSet
	}
	r.out = out
	r.output = newOutput(out, r.filterSize, r.stats, r.log)
	r.output.checkpoint = r.store != nil
	return nil
}

// Run opens every stream and returns once all are open (the consumer need not read out yet), or
// with the first error that retrying will not fix (Forbidden, a resource the server does not
// serve), naming the resource; the reader is then stopped and out closed. Transient errors are
// retried with backoff. ctx is the streams' lifetime: when it ends the reader stops as with Close.
func (r *Reader) Run(ctx context.Context) error {
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrClosed
	case r.running:
		r.mu.Unlock()
		return ErrRunning
	case r.out == nil:
		r.mu.Unlock()
		return ErrNoOut
	}
	r.running = true
	r.mu.Unlock()
	if err := r.prepare(ctx); err != nil {
		if errors.Is(err, context.Canceled) && r.isClosed() {
			return ErrClosed
		}
		err = fmt.Errorf("watchlist: %w", err)
		r.shutdown(err)
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	for _, spec := range r.streams {
		if spec.scope.Namespace != "" {
			r.output.filter.perNamespace[spec.kind.ID] = true
		}
	}
	streamsCtx, cancel := context.WithCancel(ctx)
	r.cancel, r.lifetime = cancel, streamsCtx
	r.initial = r.startSet(streamsCtx, false)
	r.current = r.initial
	r.mu.Unlock()
	context.AfterFunc(streamsCtx, func() { r.shutdown(ErrClosed) })

	if err := r.initial.waitOpen(ctx); err != nil {
		if errors.Is(err, errStopped) {
			err = ErrClosed
		}
		err = fmt.Errorf("watchlist: open streams: %w", err)
		r.shutdown(err)
		return err
	}
	// Under mu, and only while not closed: finish waits for relister once closed is set, and a
	// WaitGroup's Add must not race with its Wait.
	r.mu.Lock()
	r.opened = true
	if r.relistEvery > 0 && !r.closed {
		r.relister.Go(func() { r.relistLoop(streamsCtx) })
	}
	if r.store != nil && !r.closed {
		r.relister.Go(func() { r.saveLoop(streamsCtx) })
	}
	r.mu.Unlock()
	return nil
}

// prepare asks the server about the resources of WithResources and loads the checkpoint, before
// any stream starts. Close ends it: until Run started the streams, nothing else would.
func (r *Reader) prepare(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var watcher sync.WaitGroup
	defer watcher.Wait()
	done := make(chan struct{})
	defer close(done) // runs before watcher.Wait
	watcher.Go(func() {
		select {
		case <-r.stopping:
			cancel()
		case <-done:
		}
	})
	if err := r.addResources(ctx); err != nil {
		return err
	}
	return r.restore(ctx)
}

func (r *Reader) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// WaitForSync returns nil once every stream's initial state was sent on out, or ctx's error, or the
// error that stopped the reader. Being synced belongs to the reader: it holds across relists, and
// once it returned nil it always does, also after the reader stopped.
func (r *Reader) WaitForSync(ctx context.Context) error {
	r.mu.Lock()
	running, closed, o := r.running, r.closed, r.output
	r.mu.Unlock()
	if !running {
		if closed {
			return r.stopErr()
		}
		return ErrNotRunning
	}
	select {
	case <-o.synced:
		return nil
	default:
	}
	select {
	case <-o.synced:
		return nil
	case <-r.stopping:
		return r.stopErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops every stream, waits for every goroutine (bounded by ctx) and closes out, once. It may
// be called many times, before or after Run, from any goroutine; only the first call does the work,
// and later ones wait like it. When ctx ends first, Close returns ctx's error and the reader finishes
// stopping, and closes out, in the background.
func (r *Reader) Close(ctx context.Context) error {
	r.shutdown(ErrClosed)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("watchlist: waiting for streams to stop: %w", ctx.Err())
	}
}

// shutdown starts stopping the reader, once, recording cause as what stopped it.
func (r *Reader) shutdown(cause error) {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.err = cause
		cancel := r.cancel
		r.mu.Unlock()
		close(r.stopping)
		if cancel != nil {
			cancel()
		}
		go r.finish()
	})
}

// finish waits for the relist loop and the current set, then closes out. Only shutdown starts it;
// Close waits for it through done.
func (r *Reader) finish() {
	r.relister.Wait()
	r.mu.Lock()
	set, out := r.current, r.out
	r.mu.Unlock()
	if set != nil {
		set.stop()
		r.saveFinal()
	}
	if out != nil {
		close(out)
	}
	close(r.done)
}

func (r *Reader) stopErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	return ErrClosed
}
