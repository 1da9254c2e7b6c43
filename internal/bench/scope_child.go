package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/watchlist-go/watchlist"
)

const kib = 1 << 10

// ScopeResult is what one child of a sync suite (scope, resources or restart) measured during its
// initial sync, sent to the parent in its final message. The parent fills the fields marked
// "parent".
type ScopeResult struct {
	Variant string `json:"variant"` // parent: one of the suite's variants
	N       int    `json:"n"`       // parent: objects the suite created (pods, Widgets)
	Run     int    `json:"run"`     // parent: 1, 2, ...

	Objects     int     `json:"objects"`           // objects in the initial state (a reader's: entries delivered)
	Deletes     int     `json:"deletes,omitempty"` // of a reader's entries, the deletes
	SyncSeconds float64 `json:"sync_seconds"`      // start to WaitForSync / WaitForCacheSync / the end bookmark
	SyncCPU     float64 `json:"sync_cpu_seconds"`  // user+sys of the child over the same time
	// BytesReceived is what the child read from its network connections over the same time: the
	// bytes of every net.Conn its rest.Config dialled (TLS records, HTTP/2 frames and the gzip
	// body the server sends a WatchList, as they come off the socket; no TCP/IP headers).
	BytesReceived int64 `json:"bytes_received"`
	// BodyBytes is what the child read from the bodies of its HTTP responses over the same time,
	// after the transport undid any gzip: the protobuf frames or JSON lines the decoders see.
	BodyBytes int64 `json:"body_bytes"`
	// CompleteStates counts the requests for a complete state over the same time: WatchLists and
	// paginated LISTs (asksCompleteState).
	CompleteStates int    `json:"complete_states,omitempty"`
	HeapBaseline   uint64 `json:"heap_baseline"` // live heap after GC before starting, bytes
	HeapPeakSync   uint64 `json:"heap_peak_sync"`
	HeapSynced     uint64 `json:"heap_synced"` // live heap after GC once synced, bytes

	// Restart suite, checkpoint-save only: the size of the checkpoint Reader.Checkpoint saved once
	// synced, and how long that call took (snapshot, encoding, FileCheckpoint's write and fsyncs).
	CheckpointBytes   int64   `json:"checkpoint_bytes,omitempty"`
	CheckpointSeconds float64 `json:"checkpoint_seconds,omitempty"`
	// Restart suite, reader-relist only: one Reader.Relist of the quiet cluster once synced: the
	// entries it delivered (0 expected), how long it took and the child's user+sys meanwhile.
	RelistEntries int     `json:"relist_entries,omitempty"`
	RelistSeconds float64 `json:"relist_seconds,omitempty"`
	RelistCPU     float64 `json:"relist_cpu_seconds,omitempty"`
}

// podsGVR is what the metadata informer reads.
var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// byteCounter counts the bytes read from every connection its dial opened.
type byteCounter struct {
	read   atomic.Int64
	dialer net.Dialer
}

// newByteCounter returns a counter whose dialer is client-go's default one (30 s timeout and
// keep-alive).
func newByteCounter() *byteCounter {
	return &byteCounter{dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
}

// dial is a rest.Config.Dial: it dials and wraps the connection to count what is read from it.
func (c *byteCounter) dial(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, read: &c.read}, nil
}

// received returns the bytes read so far, from every connection.
func (c *byteCounter) received() int64 { return c.read.Load() }

// countingConn adds what is read from it to read.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// bodyCounter counts the bytes read from the bodies of the responses of the transports it wraps,
// and the requests for a complete state. http.Transport (and HTTP/2's) undoes the gzip it asked for
// before the body reaches a wrapper, so these are the bytes after decompression.
type bodyCounter struct {
	read   atomic.Int64
	states atomic.Int64 // requests that asksCompleteState
}

// wrap is a transport.WrapperFunc for rest.Config.Wrap.
func (c *bodyCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if asksCompleteState(req) {
			c.states.Add(1)
		}
		resp, err := rt.RoundTrip(req)
		if resp != nil && resp.Body != nil {
			resp.Body = &countingBody{ReadCloser: resp.Body, read: &c.read}
		}
		return resp, err
	})
}

// received returns the body bytes read so far, from every response.
func (c *bodyCounter) received() int64 { return c.read.Load() }

// completeStates returns how many requests asked for a complete state so far.
func (c *bodyCounter) completeStates() int { return int(c.states.Load()) }

// asksCompleteState reports whether req asks the server for every object, as the repository's
// warm-restart tests count them: a WatchList (sendInitialEvents=true) or a paginated LIST (limit:
// the reader's fallback and client-go's reflector both page). A plain watch from a
// resourceVersion, what a reader resumed from a checkpoint sends, does not; nor does the LIST of
// one object (limit=1) by which a resumed stream learns where the server stands.
func asksCompleteState(req *http.Request) bool {
	q := req.URL.Query()
	return q.Get("sendInitialEvents") == "true" || q.Has("limit") && q.Get("limit") != "1"
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// countingBody adds what is read from it to read.
type countingBody struct {
	io.ReadCloser
	read *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// newSyncSubject builds the subject of cfg.mode, a variant of a sync suite, on restCfg.
func newSyncSubject(cfg childConfig, restCfg *rest.Config) (syncSubject, error) {
	switch v := cfg.mode; {
	case isResourcesVariant(v):
		return newResourcesSubject(v, restCfg)
	case isRestartVariant(v):
		return newRestartSubject(v, cfg.checkpoint, restCfg)
	}
	return newScopeSubject(cfg.mode, restCfg)
}

// afterSyncer is a syncSubject that adds to its result once synced and counted, before it stops.
type afterSyncer interface {
	afterSync(ctx context.Context, res *ScopeResult) error
}

// newScopeSubject builds the subject of scope variant v on restCfg.
func newScopeSubject(v string, restCfg *rest.Config) (syncSubject, error) {
	if v == VariantInformerMetadata {
		return newMetadataInformer(restCfg, podsGVR)
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("build clientset: %w", err)
	}
	switch v {
	case VariantReaderNode:
		return &readerSubject{cs: cs, lags: &lagRecorder{}, types: watchlist.RTPod,
			opts: []watchlist.Option{watchlist.WithFieldSelector(watchlist.RTPod, scopeFieldSelector)}}, nil
	case VariantReaderPods:
		return &readerSubject{cs: cs, lags: &lagRecorder{}, types: watchlist.RTPod}, nil
	case VariantReaderMetadata:
		return &readerSubject{cs: cs, lags: &lagRecorder{}, types: watchlist.RTPod,
			opts: []watchlist.Option{watchlist.WithMetadataOnly(watchlist.RTPod)}}, nil
	case VariantInformerNode:
		return &podInformerSubject{cs: cs, fieldSelector: scopeFieldSelector}, nil
	case VariantInformerPods:
		return &podInformerSubject{cs: cs}, nil
	case VariantFloor:
		return podsFloor(cs), nil
	}
	return nil, fmt.Errorf("unknown scope variant %q", v)
}

// runScopeChild runs one child of a sync suite (scope, resources or restart): it measures the initial sync
// of cfg.mode (a variant of the suite) and writes one message, the result or an error, on out. It
// returns an error only when it could not write that message.
func runScopeChild(ctx context.Context, cfg childConfig, out io.Writer) error {
	enc := json.NewEncoder(out)
	res, err := measureScopeChild(ctx, cfg)
	m := message{Phase: phaseDone, Scope: &res}
	if err != nil {
		m = message{Phase: phaseError, Error: err.Error()}
	}
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("child: write to parent: %w", err)
	}
	return nil
}

// measureScopeChild measures the initial sync as measureChild does, and counts the bytes read from
// the network during it.
func measureScopeChild(ctx context.Context, cfg childConfig) (res ScopeResult, err error) {
	restCfg, stopProfile, err := childSetup(cfg)
	if err != nil {
		return res, err
	}
	defer func() {
		if perr := stopProfile(); perr != nil && err == nil {
			err = perr
		}
	}()
	counter := newByteCounter()
	restCfg.Dial = counter.dial
	body := &bodyCounter{}
	restCfg.Wrap(body.wrap)
	subj, err := newSyncSubject(cfg, restCfg)
	if err != nil {
		return res, err
	}

	var bytes0, body0 int64
	var states0 int
	m, stopSubj, err := measureSync(ctx, subj, cfg.mode, cfg.memProfile, func(begin bool) {
		if begin {
			bytes0, body0, states0 = counter.received(), body.received(), body.completeStates()
		} else {
			res.BytesReceived, res.BodyBytes = counter.received()-bytes0, body.received()-body0
			res.CompleteStates = body.completeStates() - states0
		}
	})
	defer func() {
		if serr := stopSubj(); serr != nil && err == nil {
			err = serr
		}
	}()
	res.Objects, res.SyncSeconds, res.SyncCPU = m.objects, m.seconds, m.cpu
	res.HeapBaseline, res.HeapPeakSync, res.HeapSynced = m.baseline, m.peak, m.synced
	if err != nil {
		return res, err
	}
	if a, ok := subj.(afterSyncer); ok {
		if err := a.afterSync(ctx, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// podInformerSubject is one client-go typed pod informer, optionally with a field selector.
type podInformerSubject struct {
	cs            kubernetes.Interface
	fieldSelector string

	startedInformer
}

func (s *podInformerSubject) start(ctx context.Context) error {
	s.stopCh = make(chan struct{})
	var opts []informers.SharedInformerOption
	if s.fieldSelector != "" {
		sel := s.fieldSelector
		opts = append(opts, informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = sel }))
	}
	f := informers.NewSharedInformerFactoryWithOptions(s.cs, 0, opts...)
	s.inf, s.shutdown = f.Core().V1().Pods().Informer(), f.Shutdown
	if err := s.addHandler(); err != nil {
		return err
	}
	f.Start(s.stopCh)
	return f.WaitForCacheSyncWithContext(ctx).AsError()
}

// startedInformer is the informer a subject started from a factory, and how to stop it.
type startedInformer struct {
	inf      cache.SharedIndexInformer
	stopCh   chan struct{} // nil until started
	shutdown func()        // the factory's Shutdown
}

// addHandler adds a handler that does nothing, as informerSubject does for every kind but pods: the
// informer then distributes its notifications as it would to a user's handler.
func (s *startedInformer) addHandler() error {
	if _, err := s.inf.AddEventHandlerWithResyncPeriod(cache.ResourceEventHandlerFuncs{}, 0); err != nil {
		return fmt.Errorf("add event handler: %w", err)
	}
	return nil
}

func (s *startedInformer) objects(context.Context) int { return len(s.inf.GetStore().ListKeys()) }

func (s *startedInformer) stop(context.Context) error {
	if s.stopCh == nil {
		return nil
	}
	close(s.stopCh)
	if s.shutdown != nil {
		s.shutdown() // waits for every informer goroutine
	}
	return nil
}

// podsFloor is the floor of every pod: the reader's request for pods (internal/stream: watchList,
// watch, request), as protobuf.
func podsFloor(cs *kubernetes.Clientset) *floorSubject {
	req := cs.CoreV1().RESTClient().Get().SetHeader("Accept", "application/vnd.kubernetes.protobuf").Resource("pods")
	return &floorSubject{what: "pods", req: req, read: readInitialEvents}
}

// floorSubject sends the reader's WatchList request for one resource and reads the body with read
// (readInitialEvents for protobuf, readInitialEventsJSON for JSON) up to the end bookmark, without
// decoding any object: what the server and the network cost without a reader or an informer.
type floorSubject struct {
	what string        // the resource, for errors
	req  *rest.Request // the reader's request for the resource (client, path, media type), without the query
	read func(io.Reader) (floorStats, error)

	body   io.ReadCloser
	cancel context.CancelFunc
	stats  floorStats
}

func (s *floorSubject) start(ctx context.Context) error {
	// The stream lives until stop, as the reader's; ctx bounds only the sync.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	defer context.AfterFunc(ctx, cancel)()
	// The reader's query: a watch with sendInitialEvents, resourceVersionMatch=NotOlderThan and
	// bookmarks.
	opts := floorListOptions()
	body, err := s.req.VersionedParams(&opts, parameterCodec).Stream(streamCtx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.what, err)
	}
	s.body = body
	s.stats, err = s.read(body)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	return err
}

func (s *floorSubject) objects(context.Context) int { return s.stats.added }

func (s *floorSubject) stop(context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.body != nil {
		_ = s.body.Close() // ends the watch; its error says only that it was cut
	}
	return nil
}
