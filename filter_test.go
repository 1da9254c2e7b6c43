package watchlist

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/internal/checkpoint"
	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// step is one call on an output in a filter test: an event, the begin or end of a complete state,
// a stream's progress, or the start of a relist's overlap.
type step struct {
	event watch.EventType // "" for the other steps
	uid   string
	rv    string
	sync  bool   // the event belongs to the complete state begun last
	op    string // "begin", "end", "rollback" (an end that is older than the last resume point), "progress", "overlap"
}

// ev is a change; st is an object of the complete state begun last.
func ev(t watch.EventType, uid, rv string) step { return step{event: t, uid: uid, rv: rv} }
func st(uid, rv string) step                    { return step{event: watch.Added, uid: uid, rv: rv, sync: true} }
func endAt(rv string) step                      { return step{op: "end", rv: rv} }
func rollbackAt(rv string) step                 { return step{op: "rollback", rv: rv} }
func progressAt(rv string) step                 { return step{op: "progress", rv: rv} }

var (
	begin   = step{op: "begin"}
	overlap = step{op: "overlap"}
)

const (
	uidA = "0d3c8f3e-1111-4a0e-9e0c-000000000001"
	uidB = "0d3c8f3e-1111-4a0e-9e0c-000000000002"
	uidC = "not-a-uuid-C"
)

func TestFilterDecisions(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  []string // "Change uid rv"
	}{
		{"add then update",
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Modified, uidA, "11")},
			[]string{"Add " + uidA + " 10", "Update " + uidA + " 11"}},
		{"duplicate version dropped",
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Added, uidA, "10"), ev(watch.Modified, uidA, "10")},
			[]string{"Add " + uidA + " 10"}},
		{"older version dropped",
			[]step{ev(watch.Modified, uidA, "12"), ev(watch.Modified, uidA, "11")},
			[]string{"Add " + uidA + " 12"}},
		{"numeric order, not lexical",
			[]step{ev(watch.Added, uidA, "9"), ev(watch.Modified, uidA, "10")},
			[]string{"Add " + uidA + " 9", "Update " + uidA + " 10"}},
		{"delete of an unknown object dropped",
			[]step{ev(watch.Deleted, uidA, "10")},
			nil},
		// Until 2026-11 this case expected "Add 11": a stream that lagged brought a deleted object back.
		{"a deleted object does not come back from a stream that lags",
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Deleted, uidA, "12"), ev(watch.Modified, uidA, "11")},
			[]string{"Add " + uidA + " 10", "Delete " + uidA + " 12"}},
		{"a tombstone keeps a lagging set from bringing it back during an overlap",
			[]step{overlap, ev(watch.Added, uidA, "10"), ev(watch.Deleted, uidA, "12"), progressAt("13"), ev(watch.Modified, uidA, "11"), ev(watch.Added, uidA, "10")},
			[]string{"Add " + uidA + " 10", "Delete " + uidA + " 12"}},
		{"a complete state without an object deletes it with its last version",
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Added, uidB, "11"), begin, st(uidB, "11"), endAt("20")},
			[]string{"Add " + uidA + " 10", "Add " + uidB + " 11", "Delete " + uidA + " 10"}},
		{"an object newer than the complete state is not deleted by it",
			[]step{begin, ev(watch.Added, uidA, "25"), endAt("20")},
			[]string{"Add " + uidA + " 25"}},
		// Finding 1: a lagging stream's add during a relist must not save an object the state lacks.
		{"an object a lagging stream adds while a state runs is deleted at its end",
			[]step{begin, ev(watch.Added, uidA, "15"), st(uidB, "11"), endAt("20")},
			[]string{"Add " + uidA + " 15", "Add " + uidB + " 11", "Delete " + uidA + " 15"}},
		{"an object a lagging stream adds after a state that lacked it is dropped",
			[]step{begin, st(uidB, "11"), endAt("20"), ev(watch.Added, uidA, "15"), ev(watch.Deleted, uidA, "16")},
			[]string{"Add " + uidB + " 11"}},
		// Finding 5: the tombstone of a synthesized delete stands at the state's version.
		{"a synthesized delete during an overlap stands at the state's version",
			[]step{ev(watch.Added, uidA, "10"), overlap, begin, endAt("20"), progressAt("15"), ev(watch.Modified, uidA, "12"), ev(watch.Deleted, uidA, "13")},
			[]string{"Add " + uidA + " 10", "Delete " + uidA + " 10"}},
		{"a newer version in a complete state is an update",
			[]step{ev(watch.Added, uidA, "10"), begin, st(uidA, "15"), endAt("20")},
			[]string{"Add " + uidA + " 10", "Update " + uidA + " 15"}},
		{"malformed versions compare for equality only",
			[]step{ev(watch.Added, uidA, "x1"), ev(watch.Added, uidA, "x1"), ev(watch.Modified, uidA, "x0")},
			[]string{"Add " + uidA + " x1", "Update " + uidA + " x0"}},
		{"a state with malformed versions sweeps every identity it did not hold",
			[]step{ev(watch.Added, uidA, "x1"), ev(watch.Added, uidB, "x2"), begin, st(uidB, "x2"), endAt("y")},
			[]string{"Add " + uidA + " x1", "Add " + uidB + " x2", "Delete " + uidA + " "}},
		{"a UID that is not a UUID survives a synthesized delete",
			[]step{ev(watch.Added, uidC, "10"), begin, endAt("20")},
			[]string{"Add " + uidC + " 10", "Delete " + uidC + " 10"}},
		// Finding 8: etcd restored without a revision bump; the second state re-baselines.
		{"a rolled-back state deletes what it lacks and the next one delivers older versions",
			[]step{ev(watch.Added, uidA, "50"), ev(watch.Added, uidB, "40"), begin, st(uidA, "30"), rollbackAt("35"),
				begin, st(uidA, "30"), endAt("36"), ev(watch.Modified, uidA, "37")},
			[]string{"Add " + uidA + " 50", "Add " + uidB + " 40", "Delete " + uidB + " 40", "Update " + uidA + " 30", "Update " + uidA + " 37"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runSteps(t, tc.steps)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("entries\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestTombstonesAreForgotten: a delete's tombstone goes once the only set passed it, and stays
// while two sets run.
func TestTombstonesAreForgotten(t *testing.T) {
	o, _ := playSteps(t, []step{ev(watch.Added, uidA, "10"), ev(watch.Deleted, uidA, "12"), progressAt("12")})
	if n := len(o.filter.objects); n != 0 {
		t.Errorf("%d records after the stream passed the delete, want 0", n)
	}
	o, _ = playSteps(t, []step{overlap, ev(watch.Added, uidA, "10"), ev(watch.Deleted, uidA, "12"), progressAt("20")})
	if n := len(o.filter.objects); n != 1 {
		t.Errorf("%d records during an overlap, want the tombstone", n)
	}
}

// runSteps plays steps through an output for pods and returns the entries it delivered.
func runSteps(t *testing.T, steps []step) []string {
	t.Helper()
	_, got := playSteps(t, steps)
	return got
}

// playSteps plays steps through an output for pods, as its current set, and returns the output and
// the entries it delivered.
func playSteps(t *testing.T, steps []step) (*output, []string) {
	t.Helper()
	ch := make(chan reader.Entry, len(steps)+8)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	set := newTestSet()
	sink := setSink{o: o, set: set}
	ctx := context.Background()
	var token uint32
	for _, s := range steps {
		var err error
		switch s.op {
		case "begin":
			token = sink.BeginSync(podID)
		case "end", "rollback":
			err = sink.EndSync(ctx, podID, token, s.rv, s.op == "rollback")
		case "progress":
			err = sink.Progress(ctx, podID, s.rv)
		case "overlap":
			o.beginOverlap(newTestSet())
		default:
			var sync uint32
			if s.sync {
				sync = token
			}
			err = sink.Observe(ctx, podID, s.event, pod(s.uid, s.rv), sync)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(ch)
	var got []string
	for e := range ch {
		p, err := e.Pod()
		if err != nil {
			t.Fatal(err)
		}
		if p.Name == "" || p.Namespace == "" {
			t.Errorf("entry %s lacks namespace or name", e)
		}
		got = append(got, fmt.Sprintf("%s %s %s", e.ChangeType(), e.UID(), p.ResourceVersion))
	}
	return o, got
}

// newTestSet returns a set that runs nothing, one cluster-wide stream per kind in objs (default: a
// pod stream), for tests that drive its sink.
func newTestSet(objs ...reader.ObjectType) *streamSet {
	if len(objs) == 0 {
		objs = []reader.ObjectType{reader.OTPod}
	}
	ctx, cancel := context.WithCancel(context.Background())
	set := &streamSet{ctx: ctx, cancel: cancel, stats: newStats(), failed: make(chan struct{}),
		synced: make(chan struct{}), done: make([]bool, len(objs)), unsynced: len(objs),
		resyncing: make([]atomic.Bool, len(objs)), resume: make([]string, len(objs))}
	for _, o := range objs {
		k, _ := kinds.ByObject(o)
		set.specs = append(set.specs, streamSpec{kind: k})
	}
	return set
}

func pod(uid, rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "pod-" + uid[len(uid)-1:], UID: types.UID(uid), ResourceVersion: rv,
	}}
}

func TestSendCancelledIsNotRecorded(t *testing.T) {
	ch := make(chan reader.Entry) // nobody reads
	o := newOutput(ch, 0, newStats(), logr.Discard())
	sink := setSink{o: o, set: newTestSet()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sink.Observe(ctx, podID, watch.Added, pod(uidA, "10"), 0); err == nil {
		t.Fatal("Observe with a cancelled context and no reader returned nil")
	}
	if n := len(o.filter.objects); n != 0 {
		t.Fatalf("filter recorded %d objects whose entry was never delivered", n)
	}
}

func TestUUIDKeyRoundTrip(t *testing.T) {
	for _, uid := range []string{uidA, "ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000000"} {
		k, canonical := keyOf(types.UID(uid))
		if !canonical || formatUUID(k) != uid {
			t.Errorf("keyOf(%q) = %x, %v; formats back as %q", uid, k, canonical, formatUUID(k))
		}
	}
	for _, uid := range []string{"", "X0000000-0000-0000-0000-000000000000", "0D3C8F3E-1111-4A0E-9E0C-000000000001", uidC} {
		if _, canonical := keyOf(types.UID(uid)); canonical {
			t.Errorf("keyOf(%q) is canonical", uid)
		}
	}
}

// BenchmarkFilterBytesPerObject measures the filter's heap per tracked object, reported with and
// without the namespace/name bytes. Target: at most 100 B/object plus namespace and name.
func BenchmarkFilterBytesPerObject(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				perObject, names := filterHeap(n)
				b.ReportMetric(perObject, "B/object")
				b.ReportMetric(perObject-names, "B/object-excl-names")
			}
		})
	}
}

func filterHeap(n int) (perObject, nameBytes float64) {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Namespace:       fmt.Sprintf("team-%d", i%50),
			Name:            fmt.Sprintf("web-%08d-abcde", i),
			UID:             types.UID(fmt.Sprintf("0d3c8f3e-1111-4a0e-9e0c-%012x", i)),
			ResourceVersion: fmt.Sprint(100000 + i),
		}}
		nameBytes += float64(len(pods[i].Namespace) + 1 + len(pods[i].Name))
	}
	before := heapInUse()
	f := newFilter(0)
	for _, p := range pods {
		k, _ := keyOf(p.UID)
		f.commit(k, p.UID, podID, reader.CTAdd, p.Namespace, p.Name, parseVersion(p.ResourceVersion), 0, 0)
	}
	after := heapInUse()
	runtime.KeepAlive(f)
	runtime.KeepAlive(pods)
	return float64(after-before) / float64(n), nameBytes / float64(n)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFilterBytesPerObject keeps the memory target from regressing: the filter costs at most 100
// bytes per object beyond the namespace/name bytes, at a size where map growth is averaged out.
func TestFilterBytesPerObject(t *testing.T) {
	perObject, names := filterHeap(50_000)
	t.Logf("filter: %.1f B/object, %.1f B/object without namespace/name", perObject, perObject-names)
	if perObject-names > 100 {
		t.Errorf("filter uses %.1f B/object beyond namespace and name; the target is at most 100", perObject-names)
	}
}

// podID is the filter's key for pods.
const podID = kinds.ID(reader.OTPod)

// TestPendingTakesNoOlderDelete: an add the consumer held at a checkpoint is pending after the
// restart. A resume point before it may replay an older delete (the object left a selector's scope,
// then matched again at the add's version): that delete is an older state, not the object's end.
// A reviewer found it delivered, a (UID, resourceVersion) the consumer had already taken; the model
// test ("restarts, a stream per namespace, a selector", seed 185) failed on it.
func TestPendingTakesNoOlderDelete(t *testing.T) {
	f := newFilter(0)
	k, _ := keyOf(uidA)
	f.restore([]checkpoint.Object{{Key: k, Kind: uint8(podID), Name: "ns/pod-1", Version: 5, Pending: true}})
	for _, c := range []struct {
		t    watch.EventType
		rv   string
		want reader.ChangeType
	}{
		{watch.Deleted, "3", reader.CTUnknown}, // older than the held add
		{watch.Added, "4", reader.CTUnknown},
		{watch.Added, "5", reader.CTAdd}, // the held add comes again
		{watch.Modified, "6", reader.CTAdd},
		{watch.Deleted, "7", reader.CTDelete}, // gone since
	} {
		if got := f.decide(k, podID, "ns", c.t, parseVersion(c.rv), 0, 0); got != c.want {
			t.Errorf("pending at 5, %s at %s: %s, want %s", c.t, c.rv, got, c.want)
		}
	}
}
