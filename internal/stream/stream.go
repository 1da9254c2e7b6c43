// Package stream keeps one resource's WatchList stream alive: the initial state ended by the
// k8s.io/initial-events-end bookmark, then changes; a resume without replay when a watch ends; a fresh
// state when the resume point expired (410); LIST + WATCH when the server refuses WatchList; backoff
// on errors. What it sees goes to a Sink and nowhere else.
package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// Sink receives what a stream observes. Methods that may deliver an entry block until the consumer
// took it or ctx ended, and then return ctx's error.
type Sink interface {
	// BeginSync is called before a request that answers with a complete state (WatchList or LIST).
	// The returned epoch goes to EndSync.
	BeginSync(kind reader.ObjectType) uint32
	// Observe passes one Added, Modified or Deleted object.
	Observe(ctx context.Context, kind reader.ObjectType, t watch.EventType, obj runtime.Object) error
	// EndSync is called once the complete state begun at epoch was observed: every identity of kind
	// that was not seen since then is gone from the server.
	EndSync(ctx context.Context, kind reader.ObjectType, epoch uint32) error
	// Progress says the stream has seen every event of kind up to resourceVersion (after an
	// event or a bookmark past the initial state).
	Progress(kind reader.ObjectType, resourceVersion string)
}

// Reason says why a stream makes a new request.
type Reason string

const (
	// ReasonStart is the first request.
	ReasonStart Reason = "start"
	// ReasonEnded: the watch ended normally; resume from the last resume point, without replay.
	ReasonEnded Reason = "ended"
	// ReasonExpired: the resume point is no longer served (410 Gone, too large resourceVersion);
	// request the complete state again and diff it.
	ReasonExpired Reason = "expired"
	// ReasonError: a request or watch failed; retry after a backoff.
	ReasonError Reason = "error"
	// ReasonFallback: the server refused WatchList or never ended the initial state; LIST + WATCH.
	ReasonFallback Reason = "fallback"
)

// Observer is told about every new request a stream makes. It must not block.
type Observer interface {
	Restarted(kind kinds.Kind, reason Reason)
}

// Timing holds a stream's delays; DefaultTiming is what a reader uses.
type Timing struct {
	// Backoff is the delay between failed attempts.
	Backoff wait.Backoff
	// BackoffReset: after this long without a failure, Backoff starts over from its first delay.
	BackoffReset time.Duration
	// InitialEventsTimeout: when the initial state brings no event and no end bookmark for this
	// long, the server is taken to ignore sendInitialEvents and the stream falls back to LIST + WATCH.
	InitialEventsTimeout time.Duration
	// WatchTimeout: each watch asks the server to end it after a random time in [WatchTimeout,
	// 2*WatchTimeout), so connections are renewed and a silently dead one cannot last. 0 leaves it
	// to the server (its --min-request-timeout).
	WatchTimeout time.Duration
	// ShortWatch: a watch that ends cleanly sooner than this with no event counts as a failure.
	ShortWatch time.Duration
	// PageSize is the LIST page size of the fallback.
	PageSize int64
}

// DefaultTiming is about 0.8 s doubling to 30 s with jitter, reset after 2 healthy minutes.
func DefaultTiming() Timing {
	return Timing{
		Backoff:              wait.Backoff{Duration: 800 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 1 << 30, Cap: 30 * time.Second},
		BackoffReset:         2 * time.Minute,
		InitialEventsTimeout: 30 * time.Second,
		WatchTimeout:         5 * time.Minute,
		ShortWatch:           time.Second,
		PageSize:             500,
	}
}

// Config is what a Stream needs.
type Config struct {
	Kind     kinds.Kind
	Client   rest.Interface
	Sink     Sink
	Observer Observer // may be nil
	Log      logr.Logger
	Timing   Timing
}

// Stream is one resource's stream. Run drives it; Opened and Synced report its progress.
type Stream struct {
	cfg         Config
	log         logr.Logger
	delay       wait.DelayFunc // the backoff; replaced by a fresh one after a healthy period
	lastFailure time.Time

	// Owned by Run's goroutine.
	rv       string // resume point: the end bookmark's or a later event's resourceVersion; "" = none
	fallback bool   // the server refused WatchList: LIST + WATCH from now on
	isOpen   bool

	opened, synced       chan struct{}
	openOnce, syncedOnce sync.Once
}

// New returns a stream; nothing happens before Run.
func New(cfg Config) *Stream {
	return &Stream{
		cfg:    cfg,
		log:    cfg.Log.WithValues("kind", cfg.Kind.Object.String()),
		delay:  cfg.Timing.Backoff.DelayFunc(),
		opened: make(chan struct{}),
		synced: make(chan struct{}),
	}
}

// Opened is closed once the server accepted the stream's first request.
func (s *Stream) Opened() <-chan struct{} { return s.opened }

// Synced is closed once the stream's first complete state went through the Sink.
func (s *Stream) Synced() <-chan struct{} { return s.synced }

// Kind is the kind this stream watches.
func (s *Stream) Kind() kinds.Kind { return s.cfg.Kind }

// Errors that end one attempt; Run decides what comes next.
var (
	errEnded        = errors.New("watch ended")
	errShortWatch   = errors.New("watch ended at once with no event")
	errCutInitial   = errors.New("watch ended before the initial state was complete")
	errNoBookmark   = errors.New("the server sent no initial-events-end bookmark")
	errRefused      = errors.New("the server refused WatchList")
	errUnknownEvent = errors.New("unknown watch event type")
)

// Run keeps the stream going until ctx ends, and then returns nil. Before the stream opened, an
// error that retrying will not fix (Forbidden, Unauthorized, a resource not served) ends Run with
// that error; after, every error is retried with backoff.
func (s *Stream) Run(ctx context.Context) error {
	reason := ReasonStart
	for {
		if s.cfg.Observer != nil {
			s.cfg.Observer.Restarted(s.cfg.Kind, reason)
		}
		var err error
		switch {
		case s.rv != "":
			err = s.resume(ctx)
		case s.fallback:
			err = s.listThenResume(ctx)
		default:
			err = s.watchList(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		var pause time.Duration
		reason, pause, err = s.next(err)
		if err != nil {
			return fmt.Errorf("%s: %w", s.cfg.Kind, err)
		}
		if pause > 0 && !sleep(ctx, pause) {
			return nil
		}
	}
}

// next decides, from how an attempt ended, why and after how long the next one starts, or returns
// the error that ends Run.
func (s *Stream) next(err error) (Reason, time.Duration, error) {
	switch {
	case err == nil: // a fallback LIST completed: watch from its resourceVersion
		return ReasonStart, 0, nil
	case errors.Is(err, errEnded):
		s.log.V(2).Info("watch ended; resuming", "resourceVersion", s.rv)
		return ReasonEnded, 0, nil
	case isExpired(err):
		s.log.V(2).Info("resume point expired; requesting the complete state", "resourceVersion", s.rv, "reason", err.Error())
		s.rv = ""
		return ReasonExpired, 0, nil
	case errors.Is(err, errRefused), errors.Is(err, errNoBookmark):
		if !s.fallback {
			s.log.Info("falling back to LIST + WATCH", "reason", err.Error())
		}
		s.fallback, s.rv = true, ""
		return ReasonFallback, 0, nil
	case isPermanent(err) && !s.isOpen:
		return "", 0, err
	}
	if time.Since(s.lastFailure) > s.cfg.Timing.BackoffReset {
		s.delay = s.cfg.Timing.Backoff.DelayFunc() // healthy since the last failure: start over
	}
	s.lastFailure = time.Now()
	pause := s.delay()
	if d, ok := apierrors.SuggestsClientDelay(err); ok && time.Duration(d)*time.Second > pause {
		pause = time.Duration(d) * time.Second
	}
	s.log.Error(err, "stream failed; retrying", "resourceVersion", s.rv, "after", pause.String())
	return ReasonError, pause, nil
}

// watchList asks for the complete state followed by every change, on one watch.
func (s *Stream) watchList(ctx context.Context) error {
	epoch := s.cfg.Sink.BeginSync(s.cfg.Kind.Object)
	w, err := s.watch(ctx, metav1.ListOptions{
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	})
	if err != nil {
		if refusesWatchList(err) {
			return fmt.Errorf("%w: %w", errRefused, err)
		}
		return err
	}
	defer w.Stop()
	s.markOpen()
	if err := s.initialState(ctx, w, epoch); err != nil {
		return err
	}
	return s.changes(ctx, w)
}

// initialState observes the initial events up to the end bookmark, whose resourceVersion becomes the
// resume point.
func (s *Stream) initialState(ctx context.Context, w watch.Interface, epoch uint32) error {
	idle := time.NewTimer(s.cfg.Timing.InitialEventsTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle.C:
			return errNoBookmark
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errCutInitial
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.Object, ev.Type, ev.Object); err != nil {
					return err
				}
				idle.Reset(s.cfg.Timing.InitialEventsTimeout)
			case watch.Bookmark:
				m, err := meta.Accessor(ev.Object)
				if err != nil {
					return err
				}
				if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
					continue // a progress bookmark is not a resume point inside the initial state
				}
				if err := s.cfg.Sink.EndSync(ctx, s.cfg.Kind.Object, epoch); err != nil {
					return err
				}
				s.rv = m.GetResourceVersion()
				s.markSynced()
				return nil
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			default:
				return fmt.Errorf("%w %q", errUnknownEvent, ev.Type)
			}
		}
	}
}

// resume watches from the resume point, with no replay of the state.
func (s *Stream) resume(ctx context.Context) error {
	w, err := s.watch(ctx, metav1.ListOptions{ResourceVersion: s.rv, AllowWatchBookmarks: true})
	if err != nil {
		return err
	}
	defer w.Stop()
	s.markOpen()
	return s.changes(ctx, w)
}

// changes observes events after the initial state; each event's resourceVersion becomes the resume
// point. It returns errEnded when the server ended the watch.
func (s *Stream) changes(ctx context.Context, w watch.Interface) error {
	start, events := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				if events == 0 && time.Since(start) < s.cfg.Timing.ShortWatch {
					return errShortWatch
				}
				return errEnded
			}
			events++
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
				m, err := meta.Accessor(ev.Object)
				if err != nil {
					return err
				}
				if ev.Type != watch.Bookmark {
					if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.Object, ev.Type, ev.Object); err != nil {
						return err
					}
				}
				// Past the initial state events come in resourceVersion order: each is a position.
				s.rv = m.GetResourceVersion()
				s.cfg.Sink.Progress(s.cfg.Kind.Object, s.rv)
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			default:
				return fmt.Errorf("%w %q", errUnknownEvent, ev.Type)
			}
		}
	}
}

// listThenResume is the fallback for servers without WatchList: a paged LIST whose items are the
// complete state; its resourceVersion is the resume point for the watch that follows.
func (s *Stream) listThenResume(ctx context.Context) error {
	epoch := s.cfg.Sink.BeginSync(s.cfg.Kind.Object)
	opts := metav1.ListOptions{Limit: s.cfg.Timing.PageSize}
	for {
		list, err := s.cfg.Client.Get().
			UseProtobufAsDefault().
			Resource(s.cfg.Kind.Resource.Resource).
			VersionedParams(&opts, scheme.ParameterCodec).
			Do(ctx).Get()
		if err != nil {
			return err
		}
		s.markOpen()
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, item := range items {
			// A copy, so that an object the consumer keeps does not pin the whole page.
			if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.Object, watch.Added, item.DeepCopyObject()); err != nil {
				return err
			}
		}
		lm, err := meta.ListAccessor(list)
		if err != nil {
			return err
		}
		if lm.GetContinue() == "" {
			if err := s.cfg.Sink.EndSync(ctx, s.cfg.Kind.Object, epoch); err != nil {
				return err
			}
			s.rv = lm.GetResourceVersion()
			s.markSynced()
			return nil
		}
		opts.Continue = lm.GetContinue()
	}
}

// watch opens a watch that the server ends after a random time in [WatchTimeout, 2*WatchTimeout),
// or, when WatchTimeout is 0, when the server's --min-request-timeout says.
//
// Requests ask for protobuf unless the user set a content type on the rest.Config, as client-go's
// typed clients do: every kind in the table is a built-in type, and decoding JSON costs four to six
// times the CPU (BENCHMARKS.md).
func (s *Stream) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	req := s.cfg.Client.Get().UseProtobufAsDefault().Resource(s.cfg.Kind.Resource.Resource)
	if s.cfg.Timing.WatchTimeout > 0 {
		timeout := s.cfg.Timing.WatchTimeout + rand.N(s.cfg.Timing.WatchTimeout)
		opts.TimeoutSeconds = ptr.To(int64(timeout.Seconds()))
		req = req.Timeout(timeout)
	}
	return req.VersionedParams(&opts, scheme.ParameterCodec).Watch(ctx)
}

func (s *Stream) markOpen() {
	s.isOpen = true
	s.openOnce.Do(func() { close(s.opened) })
}

func (s *Stream) markSynced() { s.syncedOnce.Do(func() { close(s.synced) }) }

// isExpired reports a resume point the server no longer serves: 410, or a resourceVersion ahead of
// what it has (after a restore, or a server behind its peers).
func isExpired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) ||
		apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge)
}

// refusesWatchList reports the 422 a server with the WatchList feature off answers to
// sendInitialEvents, or a server older than 1.27 to resourceVersionMatch on a watch (or a 400 from
// one that rejects either parameter).
func refusesWatchList(err error) bool {
	msg := err.Error()
	return (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) &&
		(strings.Contains(msg, "sendInitialEvents") || strings.Contains(msg, "resourceVersionMatch"))
}

// isPermanent reports an error that retrying will not fix.
func isPermanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)
}

// sleep waits for d or ctx, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
