package watchlist

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/internal/checkpoint"
	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// output is the one way out of a reader: every stream's events pass the filter, under one lock, into
// the consumer's channel. Deciding, sending and recording an entry is one step, so entries of one
// object leave in version order whichever stream brought them, and an entry whose send was cancelled
// is not recorded as delivered.
//
// It also owns the sets' roles in a relist (current, candidate, retired), which decide whose
// events count, and whether the reader has synced.
//
// Locks: output.mu guards the filter and each set's sync progress. It is held while a send waits
// for the consumer, so every wait for it ends with the waiter's context. While it is held only
// leaf locks are taken (the stats', the logger's, sync.Once's); Reader.mu is never held while
// waiting for it.
type output struct {
	log   logr.Logger // per-entry detail at V(5)
	mu    ctxMutex
	out   chan<- reader.Entry
	stats *stats

	filter *filter // guarded by mu, except what filter says
	// last is the entry sent last, which the consumer may still be handling: a checkpoint leaves it
	// out. Kept only when checkpoints are taken (WithCheckpoint, set before any stream runs).
	// Guarded by mu.
	last       lastEntry
	checkpoint bool
	// captures takes a checkpoint's request to a send that waits for the consumer while holding
	// mu (snapshot cannot take mu then; the consumer may be the one asking).
	captures chan captureRequest

	// candidate is a relist's new set while it runs beside the current one: the overlap, during
	// which tombstones stay. Written only by the relist (beginOverlap, swap, abandon).
	candidate atomic.Pointer[streamSet]

	syncOnce sync.Once
	synced   chan struct{} // closed once a set that is or became current delivered every complete state
}

func newOutput(out chan<- reader.Entry, filterSize int, st *stats, log logr.Logger) *output {
	return &output{
		filter: newFilter(filterSize), out: out, stats: st, log: log.V(5),
		mu: newCtxMutex(), synced: make(chan struct{}), captures: make(chan captureRequest),
	}
}

// lastEntry is what a checkpoint needs to leave the last entry out: the filter's record of its
// identity before it (had: there was one), the stream that brought it (by index: the same in every
// set), its version, and whether it came from a complete state.
type lastEntry struct {
	sent  bool
	key   uidKey
	prev  record
	had   bool
	i     int
	rv    version
	state bool
}

// remember records, before the filter commits an entry sent by stream i at version rv, what undoes
// it. The caller holds mu.
func (o *output) remember(key uidKey, i int, rv version, sync uint32) {
	if !o.checkpoint {
		return
	}
	prev, had := o.filter.objects[key]
	o.last = lastEntry{sent: true, key: key, prev: prev, had: had, i: i, rv: rv, state: sync != 0}
}

// resumeBefore returns where stream i must resume so that the last entry comes again: before its
// version when it was a change, which a watch from there replays whichever set brought it; "" (a
// complete state) when it came from one, or its version is not an integer.
func (l lastEntry) resumeBefore(current string) string {
	if l.state || l.rv.opaque() || l.rv == 0 || current == "" {
		return "" // a complete state, or a stream that has no resume point yet
	}
	if cur := parseVersion(current); !cur.opaque() && cur < l.rv {
		return current
	}
	return (l.rv - 1).String()
}

// kept returns the record a checkpoint keeps for the last entry's identity instead of the
// filter's (now; present: the filter still has one), or false for none. An update or a delete is
// kept as before it, also when the delete's tombstone is already forgotten. An add is kept as
// pending, so that the add comes again, or its delete if it is gone by then (the consumer may
// have finished the add).
func (l lastEntry) kept(now record, present bool) (record, bool) {
	if l.had && !l.prev.dead {
		return l.prev, true
	}
	if !present || now.dead {
		return record{}, false
	}
	now.pending = true
	return now, true
}

// setRole says whose events count.
type setRole int32

const (
	roleCurrent   setRole = iota // delivers, and its first complete states make the reader synced
	roleCandidate                // a relist's new set: delivers too, until it is swapped in or abandoned
	roleRetired                  // replaced or abandoned: its events are ignored
)

// overlap reports whether two sets run.
func (o *output) overlap() bool { return o.candidate.Load() != nil }

// beginOverlap makes next the candidate, before its streams start.
func (o *output) beginOverlap(next *streamSet) {
	next.role.Store(int32(roleCandidate))
	o.candidate.Store(next)
}

// swap retires old and makes next, which delivered every complete state, the current set. It
// takes no lock: a step of old already under way completes in order; none starts after. It returns
// the streams of next that must take their complete state again: those of kinds whose versions are
// not integers, which only the old set delivered while both ran.
func (o *output) swap(old, next *streamSet) []int {
	old.role.Store(int32(roleRetired))
	next.role.Store(int32(roleCurrent))
	o.candidate.CompareAndSwap(next, nil)
	o.markSynced()
	var resync []int
	for i, spec := range next.specs {
		if o.filter.opaque[spec.kind.ID].Load() {
			next.resyncing[i].Store(true)
			resync = append(resync, i)
		}
	}
	return resync
}

// abandon retires a candidate that will not be swapped in.
func (o *output) abandon(next *streamSet) {
	next.role.Store(int32(roleRetired))
	o.candidate.CompareAndSwap(next, nil)
}

func (o *output) markSynced() { o.syncOnce.Do(func() { close(o.synced) }) }

// send delivers e unless ctx ends first. The caller holds mu.
func (o *output) send(ctx context.Context, kind kinds.ID, e reader.Entry) error {
	for {
		select {
		case o.out <- e:
			o.stats.delivered(kind, e.ChangeType())
			return nil
		case req := <-o.captures:
			// A checkpoint, while this send waits for the consumer under the lock it needs: e
			// is not delivered, so what is captured is exact.
			req.reply <- o.capture(req.set, req.final)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// observe passes one event of set through the filter. An object not decoded yet (a *kinds.Lazy)
// is decoded only once the filter would deliver it, outside the lock every stream shares, and then
// judged again: another stream may have delivered a newer version meanwhile.
func (o *output) observe(ctx context.Context, set *streamSet, i int, t watch.EventType, obj runtime.Object, sync uint32) error {
	k := set.specs[i].kind
	kind := k.ID
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("%s event holds %T: %w", k, obj, err)
	}
	key, _ := keyOf(m.GetUID())
	rv := parseVersion(m.GetResourceVersion())
	if err := o.mu.lock(ctx); err != nil {
		return err
	}
	ct, judged := o.judge(set, i, key, t, m.GetNamespace(), rv, sync)
	if _, lazy := obj.(*kinds.Lazy); lazy && ct != reader.CTUnknown {
		o.mu.unlock()
		if obj, err = kinds.Decoded(obj); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if err := o.mu.lock(ctx); err != nil {
			return err
		}
		ct, judged = o.judge(set, i, key, t, m.GetNamespace(), rv, sync)
	}
	defer o.mu.unlock()
	if !judged {
		return nil
	}
	if o.log.Enabled() {
		o.log.Info("event", "kind", k.Label(), "type", string(t), "namespace", m.GetNamespace(),
			"name", m.GetName(), "resourceVersion", m.GetResourceVersion(), "sync", sync, "entry", ct.String())
	}
	if ct == reader.CTUnknown {
		o.stats.dropped(kind)
		return nil
	}
	e, err := k.Entry(ct, obj)
	if err != nil {
		return err
	}
	if err := o.send(ctx, kind, e); err != nil {
		return err
	}
	o.remember(key, i, rv, sync)
	o.filter.commit(key, m.GetUID(), kind, ct, m.GetNamespace(), m.GetName(), rv, set.slot, sync)
	return nil
}

// judge returns the entry an event of set's stream i would be delivered as, CTUnknown for none.
// judged is false when the event is not the filter's to decide: a retired set, or a stream whose
// state is to be taken again, delivers nothing; nor does a candidate set of a kind whose versions
// cannot be ordered. Judging twice has the effect of judging once. The caller holds mu.
func (o *output) judge(set *streamSet, i int, key uidKey, t watch.EventType, namespace string, rv version, sync uint32) (ct reader.ChangeType, judged bool) {
	kind := set.specs[i].kind.ID
	switch {
	case set.retiredNow() || set.resyncing[i].Load():
		return reader.CTUnknown, false // a newer set took over, or this stream's state is to be taken again
	case o.filter.sawVersion(kind, rv) && set.role.Load() == int32(roleCandidate):
		return reader.CTUnknown, false // versions that cannot be ordered: only the current set delivers this kind
	}
	return o.filter.decide(key, kind, namespace, t, rv, set.slot, sync), true
}

// endSync closes the complete state with token sync of set's stream i, whole at rv: it delivers a
// delete for every identity of kind the state found gone, and counts the stream synced.
func (o *output) endSync(ctx context.Context, set *streamSet, i int, sync uint32, rv string, rolledBack bool) error {
	if err := o.mu.lock(ctx); err != nil {
		return err
	}
	defer o.mu.unlock()
	if set.retiredNow() {
		return nil
	}
	kind, ns := set.specs[i].kind.ID, set.specs[i].scope.Namespace
	if !rolledBack && o.filter.stale(kind, ns, sync) {
		return stream.ErrResync // what it held was judged against versions the server lost
	}
	s := parseVersion(rv)
	if o.filter.sawVersion(kind, s) && set.role.Load() == int32(roleCandidate) {
		set.streamSynced(i, o) // it delivered nothing; it takes its state again at the swap
		return nil
	}
	// A stream sees the server went back when the state is older than its own last resume point;
	// the filter, when it is older than a state that ended before this one began.
	found := !rolledBack && o.filter.wentBack(kind, ns, sync, s)
	rolledBack = rolledBack || found
	if err := o.sweep(ctx, set, i, sync, s, rolledBack); err != nil {
		return err
	}
	o.filter.endSync(kind, ns, set.slot, sync, s, rolledBack)
	if !rolledBack {
		set.resume[i] = rv
	}
	switch {
	case found:
		return stream.ErrResync
	case !rolledBack:
		set.streamSynced(i, o)
	}
	return nil
}

// sweep delivers a delete for every identity in the scope of set's stream i that the complete
// state with token sync, whole at s, found gone, each carrying an object of its kind (or, for a metadata-only
// stream, a PartialObjectMetadata) with namespace, name, UID and last resourceVersion. Its
// tombstone stands at s: the object was gone by then. The caller holds mu.
func (o *output) sweep(ctx context.Context, set *streamSet, i int, sync uint32, s version, rolledBack bool) error {
	spec := set.specs[i]
	k, kind := spec.kind, spec.kind.ID
	gone := o.filter.gone(kind, spec.scope.Namespace, set.slot, sync, s, rolledBack)
	tombstone := k.Tombstone
	if spec.scope.MetadataOnly {
		tombstone = k.MetadataTombstone
	}
	for _, key := range gone {
		rec := o.filter.objects[key]
		ns, name := splitName(rec.name)
		e, err := k.Entry(reader.CTDelete, tombstone(ns, name, o.filter.uidOf(key), rec.rv.String()))
		if err != nil {
			return err
		}
		if err := o.send(ctx, kind, e); err != nil {
			return err
		}
		o.remember(key, i, rec.rv, sync)
		at := rec.rv
		if !rolledBack && s.newerThan(at) && !s.opaque() && !at.opaque() {
			at = s
		}
		o.filter.remove(key, at)
		o.stats.synthesizedDeletes(kind, 1)
	}
	return nil
}

// progress passes the position of set's stream i on to the filter.
func (o *output) progress(ctx context.Context, set *streamSet, i int, rv string) error {
	if err := o.mu.lock(ctx); err != nil {
		return err
	}
	defer o.mu.unlock()
	set.resume[i] = rv
	if set.role.Load() == int32(roleCurrent) {
		o.filter.progress(set.specs[i].kind.ID, set.specs[i].scope.Namespace, parseVersion(rv), o.overlap())
	}
	return nil
}

// caught counts set's stream i synced: it resumed from a checkpoint's point and delivered what the
// server had for it.
func (o *output) caught(ctx context.Context, set *streamSet, i int) error {
	if err := o.mu.lock(ctx); err != nil {
		return err
	}
	defer o.mu.unlock()
	if !set.retiredNow() {
		set.streamSynced(i, o)
	}
	return nil
}

// snapshot returns what a checkpoint keeps: the filter's identities and set's resume points, at a
// moment when out's buffer is empty, without the entry sent last (the consumer may still be
// handling it: it is kept as it was before, an add as pending), so that it covers exactly what the
// consumer took and finished. final (the reader stopped, nothing more is sent) keeps that one too.
// It waits for that moment, bounded by ctx. The copy is made under the lock, by snapshot or, when
// a send waits for the consumer while holding it, by that send (the consumer may be the caller).
func (o *output) snapshot(ctx context.Context, set *streamSet, final bool) (*checkpoint.Checkpoint, error) {
	req := captureRequest{set: set, final: final, reply: make(chan *checkpoint.Checkpoint, 1)}
	for {
		select {
		case o.mu <- struct{}{}: // the lock
			c := o.capture(set, final)
			o.mu.unlock()
			if c != nil {
				return c, nil
			}
		case o.captures <- req: // a send that waits for the consumer holds the lock: it captures
			if c := <-req.reply; c != nil {
				return c, nil
			}
		case <-ctx.Done():
			if n := len(o.out); n > 0 {
				return nil, fmt.Errorf("%d entries not taken from out: %w", n, ctx.Err())
			}
			return nil, ctx.Err()
		}
		t := time.NewTimer(10 * time.Millisecond) // entries wait in out's buffer: try again
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%d entries not taken from out: %w", len(o.out), ctx.Err())
		case <-t.C:
		}
	}
}

// captureRequest asks a send that waits for the consumer to capture a checkpoint.
type captureRequest struct {
	set   *streamSet
	final bool
	reply chan *checkpoint.Checkpoint
}

// capture returns the checkpoint of this moment, or nil when entries wait in out's buffer. The
// caller holds mu.
func (o *output) capture(set *streamSet, final bool) *checkpoint.Checkpoint {
	if len(o.out) > 0 {
		return nil
	}
	last := o.last
	if final {
		last = lastEntry{} // the reader stopped: the consumer finishes what it took
	}
	c := &checkpoint.Checkpoint{}
	if !last.sent {
		c.Objects = o.filter.export(nil)
	} else {
		c.Objects = o.filter.export(&last.key)
		now, present := o.filter.objects[last.key]
		if rec, ok := last.kept(now, present); ok {
			c.Objects = append(c.Objects, o.filter.exportOne(last.key, rec))
		}
	}
	for i, spec := range set.specs {
		c.Streams = append(c.Streams, checkpoint.Stream{Kind: uint8(spec.kind.ID), Namespace: spec.scope.Namespace, ResourceVersion: set.resume[i]})
	}
	if l := last; l.sent {
		c.Streams[l.i].ResourceVersion = l.resumeBefore(c.Streams[l.i].ResourceVersion)
	}
	return c
}

// splitName splits a record's "namespace/name".
func splitName(s string) (namespace, name string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

// live returns how many objects of each kind the filter tracks. It takes no lock.
func (o *output) live() map[kinds.ID]int {
	m := make(map[kinds.ID]int)
	for kind := range o.filter.live {
		if n := o.filter.live[kind].Load(); n > 0 {
			m[kinds.ID(kind)] = int(n)
		}
	}
	return m
}

// setSink is how stream i of a set reaches the output; it implements stream.Sink.
type setSink struct {
	o   *output
	set *streamSet
	i   int
}

// BeginSync takes no lock: a stream begins a complete state before it opens, and must be able to
// open while another stream waits on a send that the consumer takes only once Run returned.
func (s setSink) BeginSync(kinds.ID) uint32 {
	s.set.resyncing[s.i].Store(false)
	return s.o.filter.beginSync()
}

// Observe, EndSync and Progress take the kind from the set's spec of stream i.
func (s setSink) Observe(ctx context.Context, _ kinds.ID, t watch.EventType, obj runtime.Object, sync uint32) error {
	return s.o.observe(ctx, s.set, s.i, t, obj, sync)
}

func (s setSink) EndSync(ctx context.Context, _ kinds.ID, sync uint32, rv string, rolledBack bool) error {
	return s.o.endSync(ctx, s.set, s.i, sync, rv, rolledBack)
}

func (s setSink) Progress(ctx context.Context, _ kinds.ID, rv string) error {
	return s.o.progress(ctx, s.set, s.i, rv)
}

func (s setSink) Caught(ctx context.Context, _ kinds.ID) error {
	return s.o.caught(ctx, s.set, s.i)
}

// ctxMutex is a mutex whose lock can be given up when a context ends.
type ctxMutex chan struct{}

func newCtxMutex() ctxMutex { return make(ctxMutex, 1) }

func (m ctxMutex) lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m ctxMutex) unlock() { <-m }
