package watchlist

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// continueFrom makes c go on from what prev saw: a reader restarted from a checkpoint delivers only
// the difference, which c checks against everything the earlier reader delivered (a version it
// delivered must not come again).
func (c *collector) continueFrom(prev *collector) {
	prev.mu.Lock()
	defer prev.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.Copy(c.view, prev.view)
	maps.Copy(c.last, prev.last)
	maps.Copy(c.deleted, prev.deleted)
	maps.Copy(c.seen, prev.seen)
}

// initialEventsCounter counts the requests that ask for a complete state (WatchList or LIST).
type initialEventsCounter struct{ n atomic.Int64 }

func (c *initialEventsCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		q := req.URL.Query()
		if q.Get("sendInitialEvents") == "true" || (q.Has("limit") && q.Get("limit") != "1") { // a WatchList, or the fallback's LIST (not a LIST of one)
			c.n.Add(1)
		}
		return rt.RoundTrip(req)
	})
}

// downtimeChanges makes, in ns, while no reader runs: 3 pods created, 2 touched, 2 deleted, 1
// service deleted. It returns the pods it deleted.
func downtimeChanges(t *testing.T, ns string, pods []client.Object, svc client.Object) []client.Object {
	t.Helper()
	ctx := context.Background()
	cs := plane(t).Clientset
	for i := range 3 {
		mustCreate(t, cs, reader.OTPod, ns, fmt.Sprint("new-", i))
	}
	for _, p := range pods[:2] {
		if _, err := testenv.Touch(ctx, cs, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range append([]client.Object{svc}, pods[2:4]...) {
		if err := testenv.Delete(ctx, cs, obj); err != nil {
			t.Fatal(err)
		}
	}
	return pods[2:4]
}

// warmRestart runs a reader of pods and services with a file checkpoint until it synced, closes
// it, makes downtimeChanges (then calls during, if not nil), and starts a second reader from the
// checkpoint. It returns the second run, its count of complete-state requests, and the deleted pods.
func warmRestart(t *testing.T, during func()) (*run, *initialEventsCounter, []client.Object) {
	t.Helper()
	ns := newNamespace(t, plane(t).Clientset, "warm")
	var pods []client.Object
	for i := range 6 {
		pods = append(pods, mustCreate(t, plane(t).Clientset, reader.OTPod, ns, fmt.Sprint("p-", i)))
	}
	svc := mustCreate(t, plane(t).Clientset, reader.OTService, ns, "web")
	store := FileCheckpoint(filepath.Join(t.TempDir(), "reader.ckpt"))
	typ := RTPod | RTService

	first := startReader(t, plane(t).Config, typ, WithCheckpoint(store, time.Hour))
	first.c.closeReader(t, first.r, 30*time.Second) // saves the last checkpoint
	if _, err := store.Load(context.Background()); err != nil {
		t.Fatalf("no checkpoint after Close: %v", err)
	}
	deleted := downtimeChanges(t, ns, pods, svc)
	if during != nil {
		during()
	}

	out := make(chan Entry)
	c := collectWith(out, collectorOptions{keepLog: true})
	c.continueFrom(first.c)
	r, counter := startFromCheckpoint(t, store, typ, out, 60*time.Second)
	t.Cleanup(func() { c.closeReader(t, r, 30*time.Second) })
	second := &run{r: r, c: c, cs: plane(t).Clientset, typ: typ}
	second.c.assertConverged(t, plane(t).Clientset, typ, 30*time.Second)
	return second, counter, deleted
}

// startFromCheckpoint starts a reader of typ that sends on out, from store's checkpoint, and waits
// up to timeout until it synced. The counter counts its requests for a complete state.
func startFromCheckpoint(t *testing.T, store CheckpointStore, typ RetrieveType, out chan Entry, timeout time.Duration) (*Reader, *initialEventsCounter) {
	t.Helper()
	counter := &initialEventsCounter{}
	cfg := rest.CopyConfig(plane(t).Config)
	cfg.Wrap(counter.wrap)
	r := newReaderFor(t, cfg, typ, out, WithCheckpoint(store, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run from the checkpoint: %v", err)
	}
	if err := r.WaitForSync(ctx); err != nil {
		t.Fatalf("WaitForSync from the checkpoint: %v", err)
	}
	return r, counter
}

// assertOnlyTheDifference checks that the restarted reader delivered exactly the downtime's
// changes: 3 pods added, updates pods updated, 2 pods and a service deleted, nothing else. A
// resumed watch brings every change (testenv.Delete removes a finalizer first: an update too); a
// diffed complete state only the last.
func assertOnlyTheDifference(t *testing.T, rr *run, deleted []client.Object, updates int) {
	t.Helper()
	waitFor(t, 10*time.Second, "the downtime's entries", func() bool { return rr.c.total() >= 6+updates })
	time.Sleep(500 * time.Millisecond) // anything more would come now
	rr.c.mu.Lock()
	entries := append([]reader.Entry(nil), rr.c.log...)
	rr.c.mu.Unlock()
	counts := map[string]int{}
	for _, e := range entries {
		counts[fmt.Sprint(e.ChangeType(), " ", e.ObjectType())]++
	}
	want := map[string]int{"Add Pod": 3, "Update Pod": updates, "Delete Pod": 2, "Delete Service": 1}
	if !maps.Equal(counts, want) {
		t.Errorf("the restarted reader delivered %v, want exactly the downtime's changes %v; entries: %v", counts, want, entries)
	}
	for _, obj := range deleted {
		if !rr.c.isDeleted(obj.GetUID()) {
			t.Errorf("pod %s deleted while no reader ran was not delivered as a delete", obj.GetName())
		}
	}
}

// TestWarmRestartDeliversOnlyTheDifference: a reader stops, saving its checkpoint; pods are
// created, changed and deleted, and a service deleted; a reader started from the checkpoint resumes
// each stream from its saved point (no complete state is transferred) and delivers exactly those
// changes.
func TestWarmRestartDeliversOnlyTheDifference(t *testing.T) {
	rr, counter, deleted := warmRestart(t, nil)
	assertOnlyTheDifference(t, rr, deleted, 4) // 2 touches, 2 finalizers removed
	if n := counter.n.Load(); n != 0 {
		t.Errorf("%d requests for a complete state after a restart within the watch window, want 0", n)
	}
	t.Logf("restart: %d entries, %d complete states requested", rr.c.total(), counter.n.Load())
}

// TestWarmRestartAfterCompaction: as above, but etcd is compacted while no reader runs, so the pods'
// saved point is gone (410; pods bypass the watch cache on this plane). Their stream gets a complete
// state not older than that point, diffed against the checkpoint: the same entries, the deletes
// synthesized.
func TestWarmRestartAfterCompaction(t *testing.T) {
	rr, counter, deleted := warmRestart(t, func() {
		if _, err := plane(t).CompactEtcd(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	assertOnlyTheDifference(t, rr, deleted, 2) // the 2 touched pods, as they are now
	expired, synthesized := rr.r.stats.restartsOf(reader.OTPod, stream.ReasonExpired), rr.r.stats.synthesizedOf(reader.OTPod)
	t.Logf("restart after compaction: %d entries, %d complete states requested, pods expired %d, synthesized %d",
		rr.c.total(), counter.n.Load(), expired, synthesized)
	if expired == 0 || synthesized != len(deleted) {
		t.Errorf("pods: %d expired restarts and %d synthesized deletes, want at least 1 and %d", expired, synthesized, len(deleted))
	}
}

// TestWarmRestartAfterAPIServerRestart: as above, but the apiserver restarts while no reader runs,
// as in production. Services are served by the watch cache, whose new history begins past the
// saved point: their stream gets 410 Expired (or 429 until the cache is ready, then 410) and diffs
// a complete state against the checkpoint, decoding only what it delivers. Pods bypass the watch
// cache on this plane: etcd still has their history, so their stream resumes and gets every change.
func TestWarmRestartAfterAPIServerRestart(t *testing.T) {
	rr, counter, deleted := warmRestart(t, func() {
		if err := plane(t).RestartAPIServer(); err != nil {
			t.Fatal(err)
		}
	})
	assertOnlyTheDifference(t, rr, deleted, 4) // pods resumed: 2 touches, 2 finalizers removed
	expired := rr.r.stats.restartsOf(reader.OTService, stream.ReasonExpired)
	synthesized := rr.r.stats.synthesizedOf(reader.OTService)
	t.Logf("restart after an apiserver restart: %d entries, %d complete states requested, services: %d expired restarts, %d synthesized deletes",
		rr.c.total(), counter.n.Load(), expired, synthesized)
	if expired == 0 || synthesized != 1 || counter.n.Load() == 0 {
		t.Errorf("services: %d expired restarts, %d synthesized deletes, %d complete states; want the stream expired, "+
			"a complete state taken and the deleted service synthesized", expired, synthesized, counter.n.Load())
	}
	if n := rr.r.stats.synthesizedOf(reader.OTPod); n != 0 {
		t.Errorf("%d pod deletes synthesized, want 0: their resumed watch brings them", n)
	}
}

// TestCheckpointKeepsAResumedPoint: a reader restarted from a checkpoint and stopped again before
// its resumed watch saw any event (a quiet kind) saves the point it resumed from, so the next start
// resumes too. A reviewer found the point saved as "", which made the next start take a complete
// state.
func TestCheckpointKeepsAResumedPoint(t *testing.T) {
	store := FileCheckpoint(filepath.Join(t.TempDir(), "reader.ckpt"))
	first := startReader(t, plane(t).Config, RTService, WithCheckpoint(store, time.Hour))
	first.c.closeReader(t, first.r, 30*time.Second)
	for run := 2; run <= 3; run++ {
		out := make(chan Entry)
		c := collectWith(out, collectorOptions{})
		r, counter := startFromCheckpoint(t, store, RTService, out, 30*time.Second)
		c.closeReader(t, r, 30*time.Second) // at once: no event came on the resumed watch
		if n := counter.n.Load(); n != 0 {
			t.Errorf("run %d, started from the checkpoint of run %d: %d complete states requested, want 0", run, run-1, n)
		}
	}
}

// TestCheckpointRefused: a checkpoint that is not one, one cut short, and one of a reader of other
// kinds make Run fail with a clear error, and are left as they were.
func TestCheckpointRefused(t *testing.T) {
	dir := t.TempDir()
	services := filepath.Join(dir, "services.ckpt")
	rr := startReader(t, plane(t).Config, RTService, WithCheckpoint(FileCheckpoint(services), time.Hour))
	rr.c.closeReader(t, rr.r, 30*time.Second)
	valid, err := os.ReadFile(services)
	if err != nil {
		t.Fatal(err)
	}
	otherFormat := append([]byte(nil), valid...)
	otherFormat[4]++ // the format version follows the 4-byte magic
	for _, tc := range []struct {
		name string
		data []byte
		typ  RetrieveType
		opts []Option
		want string
	}{
		{"not a checkpoint", []byte(`{"kind":"ConfigMap"}`), RTService, nil, "checkpoint unreadable"},
		{"cut short", valid[:len(valid)/2], RTService, nil, "checkpoint unreadable"},
		{"another format version", otherFormat, RTService, nil, "another format version"},
		{"other kinds", valid, RTPod, nil, "other kinds or another scope"},
		{"another scope", valid, RTService, []Option{WithLabelSelector(RTService, "app=web")}, "other kinds or another scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			err, _ := runErr(t, plane(t).Config, tc.typ, append(tc.opts, WithCheckpoint(FileCheckpoint(path), time.Hour))...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.data) {
				t.Error("the refused checkpoint was changed")
			}
		})
	}
}

// TestCheckpointCoversWhatWasTaken: with entries waiting in out's buffer, Checkpoint waits (and
// fails when ctx ends first); once the consumer took them, it saves.
func TestCheckpointCoversWhatWasTaken(t *testing.T) {
	ns := newNamespace(t, plane(t).Clientset, "taken")
	for i := range 5 {
		mustCreate(t, plane(t).Clientset, reader.OTPod, ns, fmt.Sprint("p-", i))
	}
	out := make(chan Entry, 1000)
	store := FileCheckpoint(filepath.Join(t.TempDir(), "reader.ckpt"))
	r := newReaderFor(t, plane(t).Config, RTPod, out, WithCheckpoint(store, time.Hour))
	if err := r.Checkpoint(context.Background()); err != ErrNotRunning {
		t.Errorf("Checkpoint before Run = %v, want ErrNotRunning", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if err := r.Checkpoint(short); err == nil || !strings.Contains(err.Error(), "not taken") {
		t.Fatalf("Checkpoint with %d entries in out's buffer = %v, want an error saying they were not taken", len(out), err)
	}
	c := collect(out, false)
	waitFor(t, 10*time.Second, "the buffer taken", func() bool { return len(out) == 0 })
	if err := r.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint once out was drained: %v", err)
	}
	data, err := store.Load(ctx)
	if err != nil || len(data) == 0 {
		t.Fatalf("Load after Checkpoint = %d bytes, %v", len(data), err)
	}
	c.closeReader(t, r, 30*time.Second)
	if err := r.Checkpoint(ctx); err != ErrClosed {
		t.Errorf("Checkpoint after Close = %v, want ErrClosed", err)
	}
}
