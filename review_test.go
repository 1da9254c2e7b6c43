package watchlist

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/reader"
)

// reviewEntries drains ch into "Change uid rv" strings.
func reviewEntries(t *testing.T, ch chan reader.Entry) []string {
	t.Helper()
	var got []string
	for {
		select {
		case e := <-ch:
			p, err := e.Pod()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s %s", e.ChangeType(), e.UID(), p.ResourceVersion))
		default:
			return got
		}
	}
}

// relistFixture returns an output on a buffered channel, with the sink of its current set and that
// of a relist's new set in the other slot, not yet overlapping (beginOverlap makes it so).
func relistFixture() (o *output, ch chan reader.Entry, cur, cand setSink) {
	ch = make(chan reader.Entry, 64)
	o = newOutput(ch, 0, newStats(), logr.Discard())
	next := newTestSet()
	next.slot = 1
	return o, ch, setSink{o: o, set: newTestSet()}, setSink{o: o, set: next}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTokenOrderIsNotStateOrder: a token is taken (BeginSync) before the request, but the
// request may go out later (client-go's rate limiter, a slow dial), so a state with the smaller
// token can be served at a newer resourceVersion than one with a larger token. gone() skips an
// identity stamped by any state with a larger token ("a state begun since held it"), even though
// that state was older. Here the candidate's state (token 2, served at 120) lacks A, deleted at
// 110; the current set's 410 re-sync (token 3, served at 105) stamped A. The candidate sweeps
// nothing, is swapped in, the old set is retired before it delivers A's delete: A stays in the
// view forever (promise 5).
func TestTokenOrderIsNotStateOrder(t *testing.T) {
	ctx := context.Background()
	o, ch, curSink, candSink := relistFixture()
	cur, cand := curSink.set, candSink.set

	// The current set's first state: A at 95, whole at 100.
	t1 := curSink.BeginSync(podID)
	must(t, curSink.Observe(ctx, podID, watch.Added, pod(uidA, "95"), t1))
	must(t, curSink.EndSync(ctx, podID, t1, "100", false))

	// A relist: the candidate's stream takes its token; its request waits in the rate limiter.
	o.beginOverlap(cand)
	tc := candSink.BeginSync(podID)

	// Meanwhile the current stream gets a 410 and takes its complete state again, served at 105.
	t3 := curSink.BeginSync(podID)
	must(t, curSink.Observe(ctx, podID, watch.Added, pod(uidA, "95"), t3))
	must(t, curSink.EndSync(ctx, podID, t3, "105", false))

	// A is deleted at 110. The candidate's request is finally served at 120: no A.
	must(t, candSink.EndSync(ctx, podID, tc, "120", false))
	if !isClosed(cand.synced) {
		t.Fatal("candidate not synced")
	}
	o.swap(cur, cand)
	// The old set lagged: its delete at 110 comes after the swap and is ignored (retired).
	must(t, curSink.Observe(ctx, podID, watch.Deleted, pod(uidA, "110"), 0))
	// The new current set watches from 120 on: nothing more of A.
	must(t, candSink.Progress(ctx, podID, "130"))

	got := reviewEntries(t, ch)
	want := []string{"Add " + uidA + " 95", "Delete " + uidA + " 95"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("A was deleted at 110, before the candidate's state at 120, and is never deleted:\n got %v\nwant %v", got, want)
	}
}

// TestOpaqueSwapInFlight: with versions that are not integers, the candidate delivers
// nothing during the overlap, and swap makes it current before its Resync takes effect. An event
// the candidate's stream had in flight (waiting for output's lock, or buffered in the watch: the
// stream's select picks between resync and the result channel at random) is then delivered by the
// new current set, compared for equality only: an older version after a newer one (promise 4) and
// then the newer version a second time (promise 3).
func TestOpaqueSwapInFlight(t *testing.T) {
	ctx := context.Background()
	o, ch, curSink, candSink := relistFixture()
	cur, cand := curSink.set, candSink.set

	t1 := curSink.BeginSync(podID)
	must(t, curSink.Observe(ctx, podID, watch.Added, pod(uidA, "x5"), t1))
	must(t, curSink.EndSync(ctx, podID, t1, "x5", false))

	o.beginOverlap(cand)
	tc := candSink.BeginSync(podID)
	must(t, candSink.Observe(ctx, podID, watch.Added, pod(uidA, "x5"), tc))
	must(t, candSink.EndSync(ctx, podID, tc, "x5", false))

	// The current set runs ahead: x6, x7.
	must(t, curSink.Observe(ctx, podID, watch.Modified, pod(uidA, "x6"), 0))
	must(t, curSink.Observe(ctx, podID, watch.Modified, pod(uidA, "x7"), 0))

	resync := o.swap(cur, cand)
	if len(resync) != 1 {
		t.Fatalf("swap asked %d resyncs, want 1", len(resync))
	}
	// The candidate's stream lags: its x6 and x7 were read before it acts on the Resync.
	must(t, candSink.Observe(ctx, podID, watch.Modified, pod(uidA, "x6"), 0))
	must(t, candSink.Observe(ctx, podID, watch.Modified, pod(uidA, "x7"), 0))

	got := reviewEntries(t, ch)
	want := []string{"Add " + uidA + " x5", "Update " + uidA + " x6", "Update " + uidA + " x7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the swap the lagging candidate re-delivers older versions:\n got %v\nwant %v", got, want)
	}
}

// TestRelistBeforeRunReturned: Relist called while Run still waits for the first streams to open
// (here the server never answers the first watch) is refused with ErrNotRunning. Before, it was
// accepted, and a relist whose new set synced before the first set opened stopped that set under
// Run, which then returned "reader closed" and shut down a reader whose streams were fine.
func TestRelistBeforeRunReturned(t *testing.T) {
	var watches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("watch") != "true" {
			http.NotFound(w, req)
			return
		}
		if watches.Add(1) == 1 { // the first set's request: the server has yet to answer
			<-req.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"10","annotations":{"k8s.io/initial-events-end":"true"}}}}`)
		w.(http.Flusher).Flush()
		<-req.Context().Done()
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	must(t, err)
	r, err := New(context.Background(), cs, RTPod, withTiming(fastTiming()))
	must(t, err)
	out := make(chan Entry, 16)
	must(t, r.SetOut(context.Background(), out))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	}()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(context.Background()) }()
	waitFor(t, 5*time.Second, "the first watch request", func() bool { return watches.Load() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Relist(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Relist while Run waits = %v, want ErrNotRunning", err)
	}
	must(t, r.Close(ctx))
	select {
	case err := <-runErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Run after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}
