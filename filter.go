package watchlist

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/reader"
)

// filter remembers, for every object delivered and not yet deleted, its identity and the last
// resourceVersion delivered: nothing of the object itself. It decides which events become entries
// (a new identity, a newer version, a delete) and finds the identities a complete state no longer
// holds. It is not safe for concurrent use: output guards it, except for the epoch and the live
// counts.
//
// Gaps are found with epochs. Every request for a complete state (WatchList or LIST) begins a new
// epoch, and every event stamps its identity with the current epoch, delivered or not. When that
// state is complete, an identity of its kind stamped before the epoch began was in neither the state
// nor any later event: it was deleted during the gap.
type filter struct {
	objects map[uidKey]record
	// oddUIDs keeps the few UIDs that are not canonical UUIDs, by the key derived from them.
	oddUIDs map[uidKey]types.UID
	// epoch may be advanced without output's lock (beginSync), so that a stream can begin a complete
	// state while another waits under that lock for the consumer.
	epoch atomic.Uint32
	// overlap: two sets of streams run (a relist); a delete leaves a tombstone so that the set that
	// lags behind cannot bring the object back.
	overlap bool
	tombs   []tomb
	// live counts the live identities of each kind; read without output's lock (by a metrics
	// scrape, which must not wait for the consumer).
	live [numObjectTypes]atomic.Int64
}

// numObjectTypes bounds reader.ObjectType values.
const numObjectTypes = int(reader.OTEndpoint) + 1

// uidKey is a UID in 16 bytes: a UUID's bytes, or for any other UID a hash of it.
type uidKey [16]byte

// record is what the filter keeps per identity: 32 bytes plus the name's bytes.
type record struct {
	name string // "namespace/name", or "/name" for cluster-scoped objects
	rv   version
	mark uint32 // the epoch in which an event last named this identity
	kind reader.ObjectType
	dead bool // a tombstone: deleted during an overlap
}

// tomb names a tombstone to remove once no stream can bring back an older version.
type tomb struct {
	key  uidKey
	kind reader.ObjectType
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

// newerThan reports whether v is a later version than old. Versions that are not well formed are
// only known to differ; a different one counts as newer.
func (v version) newerThan(old version) bool {
	if v&opaqueVersion != 0 || old&opaqueVersion != 0 {
		return v != old
	}
	return v > old
}

func (v version) String() string {
	if v&opaqueVersion != 0 {
		return "" // not kept; a synthesized delete of such an object carries no resourceVersion
	}
	return strconv.FormatUint(uint64(v), 10)
}

func newFilter(size int) *filter {
	return &filter{objects: make(map[uidKey]record, size)}
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

// beginSync starts an epoch for a complete state of some kind. It is safe for concurrent use.
func (f *filter) beginSync() uint32 {
	return f.epoch.Add(1)
}

// decide stamps the identity and returns the entry an event becomes, or CTUnknown to drop it.
func (f *filter) decide(k uidKey, t watch.EventType, rv version) reader.ChangeType {
	rec, known := f.objects[k]
	if known {
		rec.mark = f.epoch.Load()
		f.objects[k] = rec
	}
	switch {
	case !known && t == watch.Deleted:
		return reader.CTUnknown // never delivered: nothing to delete
	case !known:
		return reader.CTAdd
	case !rv.newerThan(rec.rv):
		return reader.CTUnknown // delivered already, or older than what was
	case rec.dead:
		return reader.CTUnknown // deleted during an overlap; a later version cannot exist
	case t == watch.Deleted:
		return reader.CTDelete
	default:
		return reader.CTUpdate
	}
}

// commit records an entry that was delivered.
func (f *filter) commit(k uidKey, uid types.UID, kind reader.ObjectType, ct reader.ChangeType, namespace, name string, rv version) {
	switch ct {
	case reader.CTAdd:
		f.objects[k] = record{name: namespace + "/" + name, rv: rv, mark: f.epoch.Load(), kind: kind}
		f.live[kind].Add(1)
		if _, canonical := keyOf(uid); !canonical {
			if f.oddUIDs == nil {
				f.oddUIDs = make(map[uidKey]types.UID)
			}
			f.oddUIDs[k] = uid
		}
	case reader.CTUpdate:
		rec := f.objects[k]
		rec.rv, rec.mark = rv, f.epoch.Load()
		f.objects[k] = rec
	case reader.CTDelete:
		f.remove(k, rv)
	}
}

// remove forgets a deleted identity, or during an overlap turns it into a tombstone at rv.
func (f *filter) remove(k uidKey, rv version) {
	rec := f.objects[k]
	f.live[rec.kind].Add(-1)
	if !f.overlap {
		delete(f.objects, k)
		delete(f.oddUIDs, k)
		return
	}
	rec.rv, rec.dead = rv, true
	f.objects[k] = rec
	f.tombs = append(f.tombs, tomb{key: k, kind: rec.kind, rv: rv})
}

// missing returns the live identities of kind not stamped since epoch began.
func (f *filter) missing(kind reader.ObjectType, epoch uint32) []uidKey {
	var gone []uidKey
	for k, rec := range f.objects {
		if rec.kind == kind && !rec.dead && rec.mark < epoch {
			gone = append(gone, k)
		}
	}
	return gone
}

// progress says a stream of kind has seen every event up to rv: tombstones at or below it can go,
// unless two sets of streams still run.
func (f *filter) progress(kind reader.ObjectType, rv version) {
	if f.overlap || len(f.tombs) == 0 {
		return
	}
	kept := f.tombs[:0]
	for _, t := range f.tombs {
		comparable := t.rv&opaqueVersion == 0 && rv&opaqueVersion == 0
		if t.kind != kind || comparable && t.rv > rv {
			kept = append(kept, t)
			continue
		}
		if rec, ok := f.objects[t.key]; ok && rec.dead {
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
