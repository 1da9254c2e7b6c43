package watchlist

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// output is the one way out of a reader: every stream's events pass the filter, under one lock, into
// the consumer's channel. Deciding, sending and recording an entry is one step, so entries of one
// object leave in version order whichever stream brought them, and an entry whose send was cancelled
// is not recorded as delivered.
type output struct {
	log    logr.Logger // per-entry detail at V(5)
	mu     sync.Mutex
	filter *filter
	out    chan<- reader.Entry
	stats  *stats
}

func newOutput(out chan<- reader.Entry, filterSize int, st *stats, log logr.Logger) *output {
	return &output{filter: newFilter(filterSize), out: out, stats: st, log: log.V(5)}
}

// send delivers e unless ctx ends first. The caller holds mu.
func (o *output) send(ctx context.Context, e reader.Entry) error {
	select {
	case o.out <- e:
		o.stats.delivered(e)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// observe passes one event of set through the filter. The caller holds mu.
func (o *output) observe(ctx context.Context, set *streamSet, kind reader.ObjectType, t watch.EventType, obj runtime.Object) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("%s event holds %T: %w", kind, obj, err)
	}
	if set.retired {
		return nil // a newer set took over; its own events carry this change
	}
	k, _ := keyOf(m.GetUID())
	rv := parseVersion(m.GetResourceVersion())
	ct := o.filter.decide(k, t, rv)
	if o.log.Enabled() {
		o.log.Info("event", "kind", kind.String(), "type", string(t), "namespace", m.GetNamespace(),
			"name", m.GetName(), "resourceVersion", m.GetResourceVersion(), "entry", ct.String())
	}
	if ct == reader.CTUnknown {
		o.stats.dropped(kind)
		return nil
	}
	if err := o.send(ctx, reader.NewEntry(ct, kind, obj)); err != nil {
		return err
	}
	o.filter.commit(k, m.GetUID(), kind, ct, m.GetNamespace(), m.GetName(), rv)
	return nil
}

// sweep delivers a delete for every identity of kind that the complete state begun at epoch did not
// hold, each carrying an object of its kind with namespace, name, UID and last resourceVersion. The
// caller holds mu.
func (o *output) sweep(ctx context.Context, kind reader.ObjectType, epoch uint32) error {
	gone := o.filter.missing(kind, epoch)
	if len(gone) == 0 {
		return nil
	}
	k, ok := kinds.ByObject(kind)
	if !ok {
		return fmt.Errorf("no kind for object type %s", kind)
	}
	for _, key := range gone {
		rec := o.filter.objects[key]
		namespace, name := splitName(rec.name)
		obj := k.Tombstone(namespace, name, o.filter.uidOf(key), rec.rv.String())
		if err := o.send(ctx, reader.NewEntry(reader.CTDelete, kind, obj)); err != nil {
			return err
		}
		o.filter.remove(key, rec.rv)
	}
	o.stats.synthesizedDeletes(kind, len(gone))
	return nil
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
func (o *output) live() map[reader.ObjectType]int {
	m := make(map[reader.ObjectType]int)
	for kind := range o.filter.live {
		if n := o.filter.live[kind].Load(); n > 0 {
			m[reader.ObjectType(kind)] = int(n)
		}
	}
	return m
}

// setSink is how the streams of one set reach the output; it implements stream.Sink.
type setSink struct {
	o   *output
	set *streamSet
}

// BeginSync takes no lock: a stream begins a complete state before it opens, and must be able to
// open while another stream waits on a send that the consumer takes only once Run returned.
func (s setSink) BeginSync(reader.ObjectType) uint32 {
	return s.o.filter.beginSync()
}

func (s setSink) Observe(ctx context.Context, kind reader.ObjectType, t watch.EventType, obj runtime.Object) error {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	return s.o.observe(ctx, s.set, kind, t, obj)
}

// EndSync sweeps at once, except in a relist's new set before it is swapped in: the swap sweeps.
func (s setSink) EndSync(ctx context.Context, kind reader.ObjectType, epoch uint32) error {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	switch {
	case s.set.retired:
		return nil
	case s.set.candidate:
		s.set.pending[kind] = epoch
		return nil
	}
	return s.o.sweep(ctx, kind, epoch)
}

func (s setSink) Progress(kind reader.ObjectType, resourceVersion string) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if !s.set.retired {
		s.o.filter.progress(kind, parseVersion(resourceVersion))
	}
}
