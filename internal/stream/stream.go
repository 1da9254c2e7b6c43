package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// Sink receives what a stream observes. Methods that may deliver an entry block until the consumer
// took it or ctx ended, and then return ctx's error.
type Sink interface {
	// BeginSync is called before a request that answers with a complete state (WatchList or LIST).
	// The token it returns goes with every object of that state to Observe, and then to EndSync.
	BeginSync(kind kinds.ID) uint32
	// Observe passes one Added, Modified or Deleted object. sync is the token of the complete state
	// the object belongs to, or 0 for a change after it.
	Observe(ctx context.Context, kind kinds.ID, t watch.EventType, obj runtime.Object, sync uint32) error
	// EndSync says the complete state begun with token sync is whole, at resourceVersion rv: an
	// identity of kind that it did not hold, and whose last version delivered is not newer than rv,
	// is gone from the server. rolledBack says rv is older than the point the stream resumed from
	// before: the server's history went back (etcd restored without a revision bump), so versions
	// newer than rv are void; the stream asks for the complete state again right after. EndSync
	// returns ErrResync when the state must be taken again (another stream found the server's
	// history went back while this state ran).
	EndSync(ctx context.Context, kind kinds.ID, sync uint32, rv string, rolledBack bool) error
	// Progress says the stream has seen every event of kind up to resourceVersion (after an event
	// or a bookmark past the complete state).
	Progress(ctx context.Context, kind kinds.ID, resourceVersion string) error
	// Caught says a stream that started from a resume point (Config.Resume) delivered what the
	// server had for it: it counts as synced without a complete state.
	Caught(ctx context.Context, kind kinds.ID) error
}

// Reason says why a stream makes a new request.
type Reason string

const (
	// ReasonStart is the first request.
	ReasonStart Reason = "start"
	// ReasonListed: the fallback's LIST completed; watch from its resourceVersion.
	ReasonListed Reason = "listed"
	// ReasonEnded: the watch ended normally; resume from the last resume point, without replay.
	ReasonEnded Reason = "ended"
	// ReasonExpired: the resume point is no longer served (410 Gone, too large resourceVersion);
	// request the complete state again and diff it.
	ReasonExpired Reason = "expired"
	// ReasonRolledBack: a complete state was older than the point the stream had resumed from (the
	// server's history went back); the kind was re-baselined and the state is requested again.
	ReasonRolledBack Reason = "rolled-back"
	// ReasonResync: the Sink asked for the complete state again (ErrResync, or Resync).
	ReasonResync Reason = "resync"
	// ReasonError: a request or watch failed; retry after a backoff.
	ReasonError Reason = "error"
	// ReasonFallback: the server refused or ignored WatchList; LIST + WATCH from now on.
	ReasonFallback Reason = "fallback"
)

// Observer is told about every new request a stream makes, and when the stream enters or leaves the
// fallback. It must not block.
type Observer interface {
	Restarted(kind kinds.Kind, reason Reason)
	// Fallback says the stream uses LIST + WATCH (on) or no longer runs in that mode (off, when Run
	// returns).
	Fallback(kind kinds.Kind, on bool)
}

// Timing holds a stream's delays; DefaultTiming is what a reader uses.
type Timing struct {
	// Backoff is the delay between failed attempts.
	Backoff wait.Backoff
	// BackoffReset: after this long without a failure, Backoff starts over from its first delay.
	BackoffReset time.Duration
	// InitialEventsTimeout bounds the time the server may take to send a complete state and its
	// end bookmark, not counting the time spent waiting for the consumer. Past it the server is
	// taken to ignore sendInitialEvents and the stream falls back to LIST + WATCH.
	InitialEventsTimeout time.Duration
	// WatchTimeout: each watch asks the server to end it after a random time in [WatchTimeout,
	// 2*WatchTimeout), so connections are renewed and a silently dead one cannot last. 0 leaves it
	// to the server (its --min-request-timeout).
	WatchTimeout time.Duration
	// ShortWatch: a watch that ends cleanly sooner than this with no event counts as a failure.
	ShortWatch time.Duration
	// PageSize is the LIST page size of the fallback.
	PageSize int64
	// ResumeSettle: a stream that starts from a checkpoint's resume point counts as caught up once
	// an event reaches where the server stood when its watch began (a LIST of one object tells),
	// or once this long passed without an event (the server sends what it has at once).
	ResumeSettle time.Duration
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
		ResumeSettle:         250 * time.Millisecond,
	}
}

// maxInitialErrors is how many WatchLists in a row may end with an ERROR event before their end
// bookmark before the stream falls back to LIST + WATCH. kube-apiserver answers a WatchList with
// one ERROR event when it cannot serve it (for instance its etcd lacks progress notifications),
// expecting the client to fall back.
const maxInitialErrors = 3

// maxTooLarge is how many "too large resource version" answers in a row a WatchList not older than
// the last resume point takes (a replica behind catches up in seconds) before the stream asks for
// the server's current state instead (etcd restored without a revision bump never catches up).
const maxTooLarge = 3

// Scope narrows what a stream reads; the zero Scope is every object of the kind, whole.
type Scope struct {
	// Namespace: only this namespace; "" is every namespace (and a cluster-scoped kind's only value).
	Namespace string
	// LabelSelector and FieldSelector are passed to the server, which evaluates them: an object
	// that stops matching comes as DELETED, one that starts matching as ADDED.
	LabelSelector, FieldSelector string
	// MetadataOnly asks for PartialObjectMetadata instead of whole objects; Client must then be a
	// kinds.MetadataClient.
	MetadataOnly bool
}

// Config is what a Stream needs.
type Config struct {
	Kind     kinds.Kind
	Scope    Scope
	Client   rest.Interface
	Sink     Sink
	Observer Observer // may be nil
	Log      logr.Logger
	Timing   Timing
	// Warnings, if not nil, receives the server's warnings instead of the rest.Config's handler.
	Warnings *Warnings
	// Resume, if not "", is where the stream starts: a plain watch from it (a checkpoint's resume
	// point), instead of a WatchList.
	Resume string
}

// Stream is one resource's stream. Run drives it; Opened and Synced report its progress.
type Stream struct {
	cfg  Config
	log  logr.Logger
	name string // the kind, and the namespace when it has one: what errors and logs name

	// Owned by Run's goroutine.
	delay         wait.DelayFunc // the backoff; replaced by a fresh one after a healthy period
	lastFailure   time.Time
	rv            string // resume point: the end bookmark's, a LIST's or a later event's resourceVersion; "" = none
	before        string // the resume point the last gap ended; a complete state older than it is a rollback
	tooLarge      int    // WatchLists not older than before, in a row, that a server behind refused as too large
	fallback      bool   // LIST + WATCH from now on
	isOpen        bool
	notServed     bool // the resource answered 404 since the stream opened (a CRD deleted); logged once
	initialErrors int  // WatchLists in a row that ended with an ERROR event before their end bookmark

	opened, synced       chan struct{}
	openOnce, syncedOnce sync.Once
	resync               chan struct{} // Resync's request, taken by Run's goroutine
	isSynced             bool          // synced is closed; owned by Run's goroutine
}

// New returns a stream; nothing happens before Run.
func New(cfg Config) *Stream {
	name := cfg.Kind.String()
	log := cfg.Log.WithValues("kind", cfg.Kind.Label())
	if cfg.Scope.Namespace != "" {
		name += " in namespace " + cfg.Scope.Namespace
		log = log.WithValues("namespace", cfg.Scope.Namespace)
	}
	return &Stream{
		rv:     cfg.Resume,
		cfg:    cfg,
		name:   name,
		log:    log,
		delay:  cfg.Timing.Backoff.DelayFunc(),
		opened: make(chan struct{}),
		synced: make(chan struct{}),
		resync: make(chan struct{}, 1),
	}
}

// Resync asks the stream to take its complete state again, at once. It does not block; requests
// made before the stream acts on one are one request.
func (s *Stream) Resync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

// resyncAsked takes a pending Resync request as ErrResync.
func (s *Stream) resyncAsked() error {
	select {
	case <-s.resync:
		return fmt.Errorf("%w: asked by the reader", ErrResync)
	default:
		return nil
	}
}

// Opened is closed once the server first answered with data (an event, or a LIST page).
func (s *Stream) Opened() <-chan struct{} { return s.opened }

// Synced is closed once the stream's first complete state went through the Sink.
func (s *Stream) Synced() <-chan struct{} { return s.synced }

// ErrResync is what a Sink's EndSync returns to have the complete state taken again.
var ErrResync = errors.New("the complete state must be taken again")

// Outcomes of one turn that are not the server's own errors; next decides what each leads to.
var (
	errEnded        = errors.New("watch ended")
	errShortWatch   = errors.New("watch ended at once with no event")
	errCutInitial   = errors.New("watch ended before the initial state was complete")
	errNoBookmark   = errors.New("the server sent no initial-events-end bookmark in time")
	errIgnored      = errors.New("the server ignored sendInitialEvents")
	errRefused      = errors.New("the server refused WatchList")
	errInitialError = errors.New("the server ended WatchList with an error event")
	errRolledBack   = errors.New("the complete state is older than the last resume point")
	errUnknownEvent = errors.New("unknown watch event type")
)

// Run keeps the stream going until ctx ends, and then returns nil. Before the stream opened, an
// error that retrying will not fix (Forbidden, Unauthorized, a resource not served) ends Run with
// that error; after, every error is retried with backoff.
func (s *Stream) Run(ctx context.Context) error {
	defer func() {
		if s.fallback && s.cfg.Observer != nil {
			s.cfg.Observer.Fallback(s.cfg.Kind, false)
		}
	}()
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
			err = s.listWatch(ctx)
		default:
			err = s.watchList(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		var pause time.Duration
		reason, pause, err = s.next(err)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if pause > 0 && !sleep(ctx, pause) {
			return nil
		}
	}
}

// next decides, from how a turn ended, why and after how long the next one starts, or returns the
// error that ends Run.
func (s *Stream) next(err error) (Reason, time.Duration, error) {
	switch {
	case err == nil: // listWatch's LIST completed: watch from its resourceVersion
		return ReasonListed, 0, nil
	case errors.Is(err, errEnded):
		s.log.V(2).Info("watch ended; resuming", "resourceVersion", s.rv)
		return ReasonEnded, 0, nil
	case errors.Is(err, errRolledBack):
		s.log.Info("the server's state is older than what was read before (etcd restored?); requesting it again", "reason", err.Error())
		s.rv = ""
		return ReasonRolledBack, 0, nil
	case errors.Is(err, ErrResync):
		s.log.V(2).Info("requesting the complete state again", "reason", err.Error())
		s.rv = ""
		return ReasonResync, 0, nil
	case apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge) && s.rv == "" && s.before != "":
		// A WatchList not older than before, served by a replica whose watch cache is behind it.
		s.tooLarge++
		s.log.V(2).Info("the server is behind the last resume point; retrying", "resourceVersion", s.before, "reason", err.Error())
		if s.tooLarge == maxTooLarge {
			s.log.Info("the server stays behind the last resume point; asking for its current state", "resourceVersion", s.before, "reason", err.Error())
		}
		return ReasonExpired, s.pause(err), nil
	case isExpired(err):
		if s.rv != "" { // a resume: ask for the complete state at once
			s.log.V(2).Info("resume point expired; requesting the complete state", "resourceVersion", s.rv, "reason", err.Error())
			s.before, s.tooLarge, s.rv = s.rv, 0, ""
			return ReasonExpired, 0, nil
		}
		s.log.V(2).Info("the complete state was refused as expired; asking for the server's current state", "notOlderThan", s.before, "reason", err.Error())
		// A complete state was refused as expired: a server that takes the version of a WatchList
		// not older than before for a start point. Ask for its current state, after a pause (a
		// server that refuses every state must not be asked in a tight loop).
		if s.before != "" {
			s.tooLarge = maxTooLarge
		}
		return ReasonExpired, s.pause(err), nil
	case errors.Is(err, errRefused), errors.Is(err, errIgnored), errors.Is(err, errNoBookmark),
		errors.Is(err, errInitialError) && s.initialErrors >= maxInitialErrors:
		if !s.fallback {
			s.log.Info("falling back to LIST + WATCH", "reason", err.Error())
			if s.cfg.Observer != nil {
				s.cfg.Observer.Fallback(s.cfg.Kind, true)
			}
		}
		s.fallback, s.rv = true, ""
		return ReasonFallback, 0, nil
	case isPermanent(err) && !s.isOpen:
		return "", 0, err
	case apierrors.IsNotFound(err): // served before: a CRD deleted, or its group not served yet after a restart
		if !s.notServed {
			s.notServed = true
			s.log.Info("the resource is not served any more; retrying until it is", "reason", err.Error())
		}
		return ReasonError, s.pause(err), nil
	case errors.Is(err, errInitialError): // fewer than maxInitialErrors so far: retry WatchList
	case errors.Is(err, errCutInitial): // the next WatchList starts the state over
	case errors.Is(err, errShortWatch): // e.g. client-go's empty watch after a connection error
	case errors.Is(err, errUnknownEvent):
	default: // a request that failed, an ERROR event after the initial state, 429, 5xx
	}
	return ReasonError, s.backoff(err), nil
}

// backoff returns the pause before the next attempt after err, and logs it.
func (s *Stream) backoff(err error) time.Duration {
	pause := s.pause(err)
	s.log.Error(err, "stream failed; retrying", "resourceVersion", s.rv, "after", pause.String())
	return pause
}

// pause returns the pause before the next attempt after err.
func (s *Stream) pause(err error) time.Duration {
	if time.Since(s.lastFailure) > s.cfg.Timing.BackoffReset {
		s.delay = s.cfg.Timing.Backoff.DelayFunc() // healthy since the last failure: start over
	}
	s.lastFailure = time.Now()
	pause := s.delay()
	if d, ok := apierrors.SuggestsClientDelay(err); ok && time.Duration(d)*time.Second > pause {
		pause = time.Duration(d) * time.Second
	}
	return pause
}

// watchList asks for the complete state followed by every change, on one watch. After a resume
// point expired, the state must not be older than that point (as client-go's reflector asks): a
// replica whose watch cache is behind it waits up to 3 s and answers "too large resource version",
// instead of serving a state older than what was delivered. After maxTooLarge such answers in a
// row, it asks for the server's current state, which endSync may then find rolled back.
func (s *Stream) watchList(ctx context.Context) error {
	token := s.cfg.Sink.BeginSync(s.cfg.Kind.ID)
	opts := metav1.ListOptions{
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	}
	if s.tooLarge < maxTooLarge {
		opts.ResourceVersion = s.before
	}
	w, err := s.watch(ctx, opts)
	if err != nil {
		if refusesWatchList(err) {
			return fmt.Errorf("%w: %w", errRefused, err)
		}
		return err
	}
	defer w.Stop()
	if err := s.initialState(ctx, w, token); err != nil {
		return err
	}
	return s.changes(ctx, w, nil)
}

// initialState observes the initial events up to the end bookmark, whose resourceVersion becomes the
// resume point. The server has InitialEventsTimeout of its own time (not counting the consumer's) to
// send them.
func (s *Stream) initialState(ctx context.Context, w watch.Interface, token uint32) error {
	budget := s.cfg.Timing.InitialEventsTimeout
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	for {
		if err := s.resyncAsked(); err != nil {
			return err
		}
		waiting := time.Now()
		deadline.Reset(budget)
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.resync:
			return fmt.Errorf("%w: asked by the reader", ErrResync)
		case <-deadline.C:
			return errNoBookmark
		case ev, ok = <-w.ResultChan():
		}
		budget -= time.Since(waiting)
		if !ok {
			return errCutInitial
		}
		switch ev.Type {
		case watch.Added:
			s.markOpen()
			if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.ID, ev.Type, ev.Object, token); err != nil {
				return err
			}
		case watch.Modified, watch.Deleted:
			// Only a plain watch, one that ignored sendInitialEvents, changes objects before the end
			// bookmark. The object is a change like any other; the fallback's LIST then diffs.
			s.markOpen()
			if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.ID, ev.Type, ev.Object, 0); err != nil {
				return err
			}
			return fmt.Errorf("%w: a %s event before the initial-events-end bookmark", errIgnored, ev.Type)
		case watch.Bookmark:
			s.markOpen()
			obj, err := kinds.Decoded(ev.Object) // its annotations, which a Lazy does not hold
			if err != nil {
				return err
			}
			m, err := meta.Accessor(obj)
			if err != nil {
				return err
			}
			if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
				return fmt.Errorf("%w: a bookmark without %s before the end of the initial state", errIgnored, metav1.InitialEventsAnnotationKey)
			}
			s.initialErrors = 0
			return s.endSync(ctx, token, m.GetResourceVersion())
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if isExpired(err) {
				return err
			}
			s.initialErrors++
			return fmt.Errorf("%w (%d in a row): %w", errInitialError, s.initialErrors, err)
		default:
			return fmt.Errorf("%w %q", errUnknownEvent, ev.Type)
		}
	}
}

// endSync hands a complete state at rv to the Sink and makes rv the resume point, or returns
// errRolledBack when rv is older than the resume point of before the gap.
func (s *Stream) endSync(ctx context.Context, token uint32, rv string) error {
	rolledBack := false
	if s.before != "" {
		cmp, err := resourceversion.CompareResourceVersion(rv, s.before)
		rolledBack = err == nil && cmp < 0
	}
	if err := s.cfg.Sink.EndSync(ctx, s.cfg.Kind.ID, token, rv, rolledBack); err != nil {
		if errors.Is(err, ErrResync) {
			s.before, s.tooLarge = "", 0
		}
		return err
	}
	if rolledBack {
		err := fmt.Errorf("%w: %s < %s", errRolledBack, rv, s.before)
		s.before, s.tooLarge = "", 0
		return err
	}
	s.before, s.tooLarge = "", 0
	s.rv = rv
	s.markSynced()
	return nil
}

// resume watches from the resume point, with no replay of the state.
func (s *Stream) resume(ctx context.Context) error {
	w, err := s.watch(ctx, metav1.ListOptions{ResourceVersion: s.rv, AllowWatchBookmarks: true})
	if err != nil {
		return err
	}
	defer w.Stop()
	var c *catchUp
	if !s.isSynced { // resumed from a checkpoint: caught up once the server's backlog went through
		c = &catchUp{settle: time.NewTimer(s.cfg.Timing.ResumeSettle)}
		defer c.settle.Stop()
		// Where the server is now: an event at or past it is past the backlog, also on a busy
		// resource that never goes quiet. A LIST of one object tells it.
		if list, err := s.list(ctx, metav1.ListOptions{Limit: 1}); err == nil {
			if lm, err := meta.ListAccessor(list); err == nil {
				c.target = lm.GetResourceVersion()
			}
		}
	}
	return s.changes(ctx, w, c)
}

// catchUp tells when a stream resumed from a checkpoint has caught up: an event at or past target
// (the server's resourceVersion when the watch began), or ResumeSettle without an event.
type catchUp struct {
	settle *time.Timer
	target string
}

// reached reports whether rv is at or past the target.
func (c *catchUp) reached(rv string) bool {
	if c.target == "" {
		return false
	}
	cmp, err := resourceversion.CompareResourceVersion(rv, c.target)
	return err == nil && cmp >= 0
}

// changes observes events after the initial state; each event's resourceVersion becomes the resume
// point. It returns errEnded when the server ended the watch. c, if not nil, tells when the stream,
// resumed from a checkpoint, has caught up.
func (s *Stream) changes(ctx context.Context, w watch.Interface, c *catchUp) error {
	start, events := time.Now(), 0
	var settled <-chan time.Time
	if c != nil {
		settled = c.settle.C
	}
	caught := func() error {
		settled, c = nil, nil
		s.markOpen()
		if err := s.cfg.Sink.Caught(ctx, s.cfg.Kind.ID); err != nil {
			return err
		}
		s.markSynced()
		return nil
	}
	for {
		if err := s.resyncAsked(); err != nil {
			return err
		}
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.resync:
			return fmt.Errorf("%w: asked by the reader", ErrResync)
		case <-settled:
			if err := caught(); err != nil {
				return err
			}
			continue
		case ev, ok = <-w.ResultChan():
		}
		if c != nil {
			c.settle.Reset(s.cfg.Timing.ResumeSettle)
		}
		if !ok {
			if events == 0 && time.Since(start) < s.cfg.Timing.ShortWatch {
				return errShortWatch
			}
			return errEnded
		}
		events++
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
			s.markOpen()
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				return err
			}
			if ev.Type != watch.Bookmark {
				if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.ID, ev.Type, ev.Object, 0); err != nil {
					return err
				}
			}
			// Past the initial state events come in resourceVersion order: each is a position.
			s.rv = m.GetResourceVersion()
			if err := s.cfg.Sink.Progress(ctx, s.cfg.Kind.ID, s.rv); err != nil {
				return err
			}
			if c != nil && c.reached(s.rv) {
				if err := caught(); err != nil {
					return err
				}
			}
		case watch.Error:
			return apierrors.FromObject(ev.Object)
		default:
			return fmt.Errorf("%w %q", errUnknownEvent, ev.Type)
		}
	}
}

// listWatch is the fallback for servers without WatchList: a paged LIST whose items are the
// complete state; its resourceVersion is the resume point for the watch that follows.
func (s *Stream) listWatch(ctx context.Context) error {
	token := s.cfg.Sink.BeginSync(s.cfg.Kind.ID)
	opts := metav1.ListOptions{Limit: s.cfg.Timing.PageSize}
	for {
		if err := s.resyncAsked(); err != nil {
			return err
		}
		list, err := s.list(ctx, opts)
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
			if err := s.cfg.Sink.Observe(ctx, s.cfg.Kind.ID, watch.Added, item.DeepCopyObject(), token); err != nil {
				return err
			}
		}
		lm, err := meta.ListAccessor(list)
		if err != nil {
			return err
		}
		if lm.GetContinue() == "" {
			return s.endSync(ctx, token, lm.GetResourceVersion())
		}
		opts.Continue = lm.GetContinue()
	}
}

func (s *Stream) markOpen() {
	if s.notServed {
		s.notServed = false
		s.log.Info("the resource is served again")
	}
	if s.isOpen {
		return
	}
	s.isOpen = true
	s.openOnce.Do(func() { close(s.opened) })
}

func (s *Stream) markSynced() {
	s.isSynced = true
	s.syncedOnce.Do(func() { close(s.synced) })
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
