package watchlist

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/reader"
)

// step is one call on an output in a filter test: an event, or the begin/end of a complete state.
type step struct {
	event watch.EventType // "" for a sync step
	uid   string
	rv    string
	sync  string // "begin" or "end"
}

func ev(t watch.EventType, uid, rv string) step { return step{event: t, uid: uid, rv: rv} }

var (
	begin = step{sync: "begin"}
	end   = step{sync: "end"}
)

const (
	uidA = "0d3c8f3e-1111-4a0e-9e0c-000000000001"
	uidB = "0d3c8f3e-1111-4a0e-9e0c-000000000002"
	uidC = "not-a-uuid-C"
)

func TestFilterDecisions(t *testing.T) {
	tests := []struct {
		name    string
		overlap bool
		steps   []step
		want    []string // "Change uid rv"
	}{
		{"add then update", false,
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Modified, uidA, "11")},
			[]string{"Add " + uidA + " 10", "Update " + uidA + " 11"}},
		{"duplicate version dropped", false,
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Added, uidA, "10"), ev(watch.Modified, uidA, "10")},
			[]string{"Add " + uidA + " 10"}},
		{"older version dropped", false,
			[]step{ev(watch.Modified, uidA, "12"), ev(watch.Modified, uidA, "11")},
			[]string{"Add " + uidA + " 12"}},
		{"numeric order, not lexical", false,
			[]step{ev(watch.Added, uidA, "9"), ev(watch.Modified, uidA, "10")},
			[]string{"Add " + uidA + " 9", "Update " + uidA + " 10"}},
		{"delete of an unknown object dropped", false,
			[]step{ev(watch.Deleted, uidA, "10")},
			nil},
		{"delete then gone", false,
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Deleted, uidA, "12"), ev(watch.Modified, uidA, "11")},
			[]string{"Add " + uidA + " 10", "Delete " + uidA + " 12", "Add " + uidA + " 11"}},
		{"tombstone during overlap keeps a lagging set from bringing it back", true,
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Deleted, uidA, "12"), ev(watch.Modified, uidA, "11"), ev(watch.Added, uidA, "10")},
			[]string{"Add " + uidA + " 10", "Delete " + uidA + " 12"}},
		{"a complete state without an object deletes it with its last version", false,
			[]step{ev(watch.Added, uidA, "10"), ev(watch.Added, uidB, "11"), begin, ev(watch.Added, uidB, "11"), end},
			[]string{"Add " + uidA + " 10", "Add " + uidB + " 11", "Delete " + uidA + " 10"}},
		{"an object touched after the state began is not deleted", false,
			[]step{ev(watch.Added, uidA, "10"), begin, ev(watch.Modified, uidA, "13"), end},
			[]string{"Add " + uidA + " 10", "Update " + uidA + " 13"}},
		{"a newer version in a complete state is an update", false,
			[]step{ev(watch.Added, uidA, "10"), begin, ev(watch.Added, uidA, "15"), end},
			[]string{"Add " + uidA + " 10", "Update " + uidA + " 15"}},
		{"malformed versions compare for equality only", false,
			[]step{ev(watch.Added, uidA, "x1"), ev(watch.Added, uidA, "x1"), ev(watch.Modified, uidA, "x0")},
			[]string{"Add " + uidA + " x1", "Update " + uidA + " x0"}},
		{"a UID that is not a UUID survives a synthesized delete", false,
			[]step{ev(watch.Added, uidC, "10"), begin, end},
			[]string{"Add " + uidC + " 10", "Delete " + uidC + " 10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runSteps(t, tc.overlap, tc.steps)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("entries\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// runSteps plays steps through an output for pods and returns the entries it delivered.
func runSteps(t *testing.T, overlap bool, steps []step) []string {
	t.Helper()
	ch := make(chan reader.Entry, len(steps)+8)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	o.filter.overlap = overlap
	set := &streamSet{pending: map[reader.ObjectType]uint32{}}
	sink := setSink{o: o, set: set}
	ctx := context.Background()
	var epoch uint32
	for _, s := range steps {
		var err error
		switch s.sync {
		case "begin":
			epoch = sink.BeginSync(reader.OTPod)
		case "end":
			err = sink.EndSync(ctx, reader.OTPod, epoch)
		default:
			err = sink.Observe(ctx, reader.OTPod, s.event, pod(s.uid, s.rv))
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
	return got
}

func pod(uid, rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: "pod-" + uid[len(uid)-1:], UID: types.UID(uid), ResourceVersion: rv,
	}}
}

func TestSendCancelledIsNotRecorded(t *testing.T) {
	ch := make(chan reader.Entry) // nobody reads
	o := newOutput(ch, 0, newStats(), logr.Discard())
	sink := setSink{o: o, set: &streamSet{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sink.Observe(ctx, reader.OTPod, watch.Added, pod(uidA, "10")); err == nil {
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
		f.commit(k, p.UID, reader.OTPod, reader.CTAdd, p.Namespace, p.Name, parseVersion(p.ResourceVersion))
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
