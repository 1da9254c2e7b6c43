package watchlist

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/internal/checkpoint"
	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// filter remembers, for every object delivered and not yet deleted, its identity and the last
// resourceVersion delivered: nothing of the object itself. It decides which events become entries
// (a new identity, a newer version, a delete) and finds the identities a complete state no longer
// holds. It is not safe for concurrent use: output guards it, except for the token counter and the
// live counts.
//
// Deletes missed during a gap are found from complete states alone. Every request for a complete
// state (WatchList or LIST) takes a new token, and each object of that state stamps its identity
// with it, in the slot of its set. When the state ends at resourceVersion S, an identity of its
// scope that it did not hold, and whose last version delivered is not newer than S, did not exist
// at S: it was deleted. An identity with a newer version was written after S, by a stream ahead of
// this one, and is this stream's to deliver. Changes (events after a complete state) never stamp:
// an event of a lagging stream is no evidence that an object exists now.
//
// The newest complete state of each scope (a kind, or a kind in one namespace) is its floor: that
// state held every object of the scope at its latest version up to the floor's resourceVersion, so
// any event at or below it is delivered already, older, or of an object it found gone, and is
// dropped. This keeps a lagging stream (the old set of a relist, a replica behind its peers) from
// bringing back what a newer state already found gone.
//
// Versions that are not integers (no kube-apiserver writes them) compare only for equality: for
// them the floor does not apply and a complete state sweeps every identity it did not hold. Two
// streams of such a kind cannot be merged, so during a relist only the current set delivers it
// (see output.observe).
type filter struct {
	objects map[uidKey]record
	// oddUIDs keeps the few UIDs that are not canonical UUIDs, by the key derived from them.
	oddUIDs map[uidKey]types.UID
	// tokens may be taken without output's lock (beginSync), so that a stream can begin a complete
	// state while another waits under that lock for the consumer.
	tokens atomic.Uint32
	// perNamespace: the kind is read by one stream per namespace, so complete states, floors and
	// rollbacks are per namespace (a scope); otherwise a kind is one scope. Set before any event.
	perNamespace [kinds.IDs]bool
	// scopes holds, by scope, the marks of its complete states (see scopeMarks).
	scopes map[scopeKey]*scopeMarks
	// opaque says a kind's versions are not integers; read without output's lock (by a swap).
	opaque [kinds.IDs]atomic.Bool
	// tombs are deleted identities kept while an older version may still arrive (see remove).
	tombs []tomb
	// live counts the live identities of each kind; read without output's lock (by a metrics
	// scrape, which must not wait for the consumer).
	live [kinds.IDs]atomic.Int64
}

// uidKey is a UID in 16 bytes: a UUID's bytes, or for any other UID a hash of it.
type uidKey [16]byte

// record is what the filter keeps per identity: 32 bytes plus the name's bytes.
type record struct {
	name string // "namespace/name", or "/name" for cluster-scoped objects
	rv   version
	// marks holds, for each of the two sets that may run at once (a set's slot: a relist's new set
	// takes the slot the current one does not use), the token of that set's newest complete state
	// that held this identity; 0: none. Tokens are taken before a request is served, so their
	// order says nothing of the states' resourceVersions: a sweep asks only "did this state hold
	// it", and one set's states come one after another.
	marks [2]uint32
	kind  kinds.ID
	dead  bool // a tombstone: rv is the version at or below which the object is known gone from the scope
	void  bool // rv came from a history the server lost (a rollback): any version of a complete state replaces it
	// pending: restored from a checkpoint that left out its add (the consumer held it then, and
	// may not have finished it): its version, or a newer one, is an add again; its delete a delete.
	pending bool
}

// scopeKey names what one stream's complete state covers: a kind, in one namespace or in all ("").
type scopeKey struct {
	kind      kinds.ID
	namespace string
}

// scopeMarks is what the filter knows of a scope's complete states.
type scopeMarks struct {
	// floor is the newest complete state.
	floor floorMark
	// high is the newest version delivered, and the last token taken then: a complete state with a
	// later token cannot be older on a server whose history only moves forward.
	high floorMark
	// rolledBack is the last token taken before the last rollback: a complete state with a token up
	// to it began in a history the server lost, and must be taken again.
	rolledBack uint32
}

// scope returns the marks of the scope an object of kind in namespace belongs to.
func (f *filter) scope(kind kinds.ID, namespace string) *scopeMarks {
	if !f.perNamespace[kind] {
		namespace = ""
	}
	key := scopeKey{kind, namespace}
	m := f.scopes[key]
	if m == nil {
		m = &scopeMarks{}
		f.scopes[key] = m
	}
	return m
}

// inScope reports whether rec belongs to the scope of kind and namespace ("" is every namespace).
func inScope(rec record, kind kinds.ID, namespace string) bool {
	return rec.kind == kind && (namespace == "" || len(rec.name) > len(namespace) &&
		rec.name[len(namespace)] == '/' && rec.name[:len(namespace)] == namespace)
}

// floorMark is a scope's newest complete state: its resourceVersion and token, and the last token
// taken when it ended (a state with a later token began after it).
type floorMark struct {
	rv    version
	token uint32
	ended uint32
}

// tomb names a tombstone to remove once no stream can bring back an older version.
type tomb struct {
	key  uidKey
	kind kinds.ID
	rv   version
}

// version is a resourceVersion. A well-formed one (digits, no leading zero) is its number; any
// other is a hash with the top bit set, which compares only for equality.
type version uint64

const opaqueVersion version = 1 << 63

func parseVersion(rv string) version {
	if _, err := resourceversion.CompareResourceVersion(rv, rv); err == nil {
		if n, err := strconv.ParseUint(rv, 10, 64); err == nil && n < uint64(opaqueVersion) {
			return version(n)
		}
	}
	sum := sha256.Sum256([]byte(rv))
	var v version
	for _, b := range sum[:8] {
		v = v<<8 | version(b)
	}
	return v | opaqueVersion
}

func (v version) opaque() bool { return v&opaqueVersion != 0 }

// newerThan reports whether v is a later version than old. Versions that are not well formed are
// only known to differ; a different one counts as newer.
func (v version) newerThan(old version) bool {
	if v.opaque() || old.opaque() {
		return v != old
	}
	return v > old
}

// atMost reports whether v is known to be at or below s: both integers, v <= s.
func (v version) atMost(s version) bool {
	return !v.opaque() && !s.opaque() && v <= s
}

func (v version) String() string {
	if v.opaque() {
		return "" // not kept; a synthesized delete of such an object carries no resourceVersion
	}
	return strconv.FormatUint(uint64(v), 10)
}

func newFilter(size int) *filter {
	return &filter{objects: make(map[uidKey]record, size), scopes: make(map[scopeKey]*scopeMarks)}
}

// keyOf returns the key of uid: the bytes of a canonical lower-case UUID (what API servers assign),
// or else a hash of uid, which commit remembers so that uidOf can give it back.
func keyOf(uid types.UID) (k uidKey, canonical bool) {
	if parseUUID(string(uid), &k) {
		return k, true
	}
	sum := sha256.Sum256([]byte(uid))
	copy(k[:], sum[:])
	return k, false
}

func (f *filter) uidOf(k uidKey) types.UID {
	if uid, ok := f.oddUIDs[k]; ok {
		return uid
	}
	return types.UID(formatUUID(k))
}

// beginSync returns the token of a new complete state. It is safe for concurrent use.
func (f *filter) beginSync() uint32 {
	return f.tokens.Add(1)
}

// decide returns the entry an event becomes, or CTUnknown to drop it. sync is the token of the
// complete state the object belongs to, 0 for a change; an object of a complete state stamps its
// identity.
func (f *filter) decide(k uidKey, kind kinds.ID, namespace string, t watch.EventType, rv version, slot int, sync uint32) reader.ChangeType {
	rec, known := f.objects[k]
	if known && rec.dead {
		if rec.rv.opaque() || rv.opaque() || !rv.newerThan(rec.rv) {
			return reader.CTUnknown // gone by then: a lagging stream's version
		}
		// A version after the tombstone: an object that left a selector's scope matches again (a
		// deleted one has no later version). It comes back as a new identity; commit replaces the
		// tombstone only once the add was delivered.
		rec, known = record{}, false
	}
	if known && sync != 0 {
		rec.marks[slot] = sync
		f.objects[k] = rec
	}
	if known && rec.pending {
		// The add of rec.rv, which the consumer may or may not have finished: it comes again, or
		// the object's delete if it is gone by then. A version older than the add (a resume point
		// before it replays a selector's delete and re-add) is an older state.
		switch {
		case !(rv == rec.rv || rv.newerThan(rec.rv) || rv.opaque() || rec.rv.opaque()):
			return reader.CTUnknown
		case t == watch.Deleted:
			return reader.CTDelete
		default:
			return reader.CTAdd
		}
	}
	if fl := f.scope(kind, namespace).floor; fl.token != 0 && rv.atMost(fl.rv) {
		// At or below the newest complete state: that state held the object at its latest version
		// up to there (so this one is delivered already, or older), or found it gone.
		return reader.CTUnknown
	}
	switch {
	case !known && t == watch.Deleted:
		return reader.CTUnknown // never delivered: nothing to delete
	case !known:
		return reader.CTAdd
	case !rv.newerThan(rec.rv) && !(rec.void && sync != 0):
		return reader.CTUnknown // delivered already, or older than what was
	case t == watch.Deleted:
		return reader.CTDelete
	default:
		return reader.CTUpdate
	}
}

// commit records an entry that was delivered.
func (f *filter) commit(k uidKey, uid types.UID, kind kinds.ID, ct reader.ChangeType, namespace, name string, rv version, slot int, sync uint32) {
	if h := &f.scope(kind, namespace).high; !rv.opaque() && rv > h.rv {
		h.rv, h.ended = rv, f.tokens.Load()
	}
	switch ct {
	case reader.CTAdd:
		rec := record{name: namespace + "/" + name, rv: rv, kind: kind}
		rec.marks[slot] = sync
		f.objects[k] = rec
		f.live[kind].Add(1)
		if _, canonical := keyOf(uid); !canonical {
			if f.oddUIDs == nil {
				f.oddUIDs = make(map[uidKey]types.UID)
			}
			f.oddUIDs[k] = uid
		}
	case reader.CTUpdate:
		rec := f.objects[k]
		rec.rv, rec.void = rv, false
		f.objects[k] = rec
	case reader.CTDelete:
		f.remove(k, rv)
	}
}

// remove turns a deleted identity, known gone at rv, into a tombstone, so that no stream that lags
// (the other set during a relist) can bring the object back; progress forgets it once only one set
// runs and it has passed rv: the stream that deleted it does so at once.
func (f *filter) remove(k uidKey, rv version) {
	rec := f.objects[k]
	f.live[rec.kind].Add(-1)
	rec.rv, rec.dead = rv, true
	f.objects[k] = rec
	f.tombs = append(f.tombs, tomb{key: k, kind: rec.kind, rv: rv})
}

// gone returns the live identities of kind in namespace ("" for all) that the complete state with
// token sync of the set in slot, whole at s, did not hold and that were deleted by s: their last
// version is not newer than s (or not comparable, or void). After a rollback every identity it did
// not hold is gone.
func (f *filter) gone(kind kinds.ID, namespace string, slot int, sync uint32, s version, rolledBack bool) []uidKey {
	var keys []uidKey
	for k, rec := range f.objects {
		if !inScope(rec, kind, namespace) || rec.dead || rec.marks[slot] == sync {
			continue
		}
		if rolledBack || rec.void || rec.rv.atMost(s) || rec.rv.opaque() || s.opaque() {
			keys = append(keys, k)
		}
	}
	return keys
}

// endSync records that the complete state with token sync is whole at s, once its deletes were
// delivered: it becomes the kind's floor when it is the newest.
//
// After a rollback (s older than the point the stream had resumed from: etcd restored without a
// revision bump) the versions delivered cannot be trusted: the restored history reuses the numbers
// of the lost one. The identities the state held forget their versions, so that the next complete
// state delivers each as it is now (unchanged objects too, once), tombstones go (a restored object
// may live again), and the kind has no floor until then.
func (f *filter) endSync(kind kinds.ID, namespace string, slot int, sync uint32, s version, rolledBack bool) {
	m := f.scope(kind, namespace)
	if rolledBack {
		for k, rec := range f.objects {
			switch {
			case !inScope(rec, kind, namespace):
			case rec.dead:
				delete(f.objects, k)
				delete(f.oddUIDs, k)
			case rec.marks[slot] == sync || rec.marks[1-slot] > sync: // held by this state, or by the other set's begun since (also after the restore)
				rec.void = true
				f.objects[k] = rec
			}
		}
		m.floor, m.high = floorMark{}, floorMark{}
		m.rolledBack = f.tokens.Load()
		return
	}
	if s.opaque() {
		return
	}
	if m.floor.token == 0 || s > m.floor.rv {
		m.floor = floorMark{rv: s, token: sync, ended: f.tokens.Load()}
	}
}

// wentBack reports whether the complete state with token sync, whole at s, shows that the server's
// history went back: a server answers a complete state at its newest resourceVersion or later, yet
// s is older than the kind's floor state, which ended before this one began, or than a version
// delivered before it began.
func (f *filter) wentBack(kind kinds.ID, namespace string, sync uint32, s version) bool {
	older := func(m floorMark) bool { return m.rv != 0 && sync > m.ended && s.atMost(m.rv) && s != m.rv }
	m := f.scope(kind, namespace)
	return older(m.floor) || older(m.high)
}

// sawVersion notes a version of kind, and reports whether the kind's versions are not integers.
func (f *filter) sawVersion(kind kinds.ID, v version) bool {
	if v.opaque() && !f.opaque[kind].Load() {
		f.opaque[kind].Store(true)
	}
	return f.opaque[kind].Load()
}

// stale reports whether the complete state with token sync began before the kind's last rollback.
func (f *filter) stale(kind kinds.ID, namespace string, sync uint32) bool {
	return sync <= f.scope(kind, namespace).rolledBack
}

// progress says the stream of kind in namespace ("" for all) has seen every event up to rv: tombstones at or below it can go,
// unless two sets of streams still run. A tombstone is judged by its record, which may have come
// back to life (and died again) since the tomb was listed.
func (f *filter) progress(kind kinds.ID, namespace string, rv version, overlap bool) {
	if overlap || len(f.tombs) == 0 {
		return
	}
	kept := f.tombs[:0]
	for _, t := range f.tombs {
		rec, ok := f.objects[t.key]
		switch {
		case t.kind != kind || ok && !inScope(rec, kind, namespace):
			kept = append(kept, t) // another stream's to pass
		case !ok || !rec.dead || rec.rv != t.rv:
			// alive again, or dead again under a newer tomb: this entry is spent
		case !rec.rv.opaque() && !rv.opaque() && rec.rv > rv:
			kept = append(kept, t)
		default:
			delete(f.objects, t.key)
			delete(f.oddUIDs, t.key)
		}
	}
	f.tombs = kept
}

// parseUUID reads a canonical lower-case 8-4-4-4-12 UUID into k, without allocating.
func parseUUID(s string, k *uidKey) bool {
	if len(s) != 36 {
		return false
	}
	n := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
			continue
		}
		hi, ok1 := nibble(s[i])
		lo, ok2 := nibble(s[i+1])
		if !ok1 || !ok2 {
			return false
		}
		k[n] = hi<<4 | lo
		n++
		i++
	}
	return true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// formatUUID writes k in the canonical lower-case form.
func formatUUID(k uidKey) string {
	var b [36]byte
	hex.Encode(b[0:8], k[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], k[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], k[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], k[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], k[10:16])
	return string(b[:])
}

// export returns what the filter keeps of every identity, for a checkpoint, except that of skip
// when not nil.
func (f *filter) export(skip *uidKey) []checkpoint.Object {
	out := make([]checkpoint.Object, 0, len(f.objects))
	for k, rec := range f.objects {
		if skip == nil || k != *skip {
			out = append(out, f.exportOne(k, rec))
		}
	}
	return out
}

// exportOne returns the checkpoint's form of the record of k.
func (f *filter) exportOne(k uidKey, rec record) checkpoint.Object {
	o := checkpoint.Object{Key: k, Kind: uint8(rec.kind), Name: rec.name, Version: uint64(rec.rv), Dead: rec.dead, Void: rec.void, Pending: rec.pending}
	if uid, ok := f.oddUIDs[k]; ok {
		o.UID = string(uid)
	}
	return o
}

// restore fills an empty filter with a checkpoint's objects: what a reader that ran before
// delivered. No complete state holds them yet (their marks are 0), so the first one of each scope
// finds which are gone.
func (f *filter) restore(objs []checkpoint.Object) {
	for _, o := range objs {
		rec := record{name: o.Name, rv: version(o.Version), kind: kinds.ID(o.Kind), dead: o.Dead, void: o.Void, pending: o.Pending}
		f.objects[o.Key] = rec
		if o.UID != "" {
			if f.oddUIDs == nil {
				f.oddUIDs = make(map[uidKey]types.UID)
			}
			f.oddUIDs[o.Key] = types.UID(o.UID)
		}
		if rec.dead {
			f.tombs = append(f.tombs, tomb{key: o.Key, kind: rec.kind, rv: rec.rv})
		} else {
			f.live[rec.kind].Add(1)
		}
	}
}
