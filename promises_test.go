package watchlist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// This file holds one test on the real control plane for each finding of a review whose bug the
// code now fixes. Each builds the production condition of its finding and checks the promise the
// bug broke; each comment says what the test sees with the bug.

// wasDelivered reports whether any entry of uid was delivered.
func (c *collector) wasDelivered(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.last[uid]
	return ok
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// podWatchDelay slows down the pod watches of a rest.Config (install it with cfg.Wrap(d.wrap)).
// A pod watch opened while lag > 0 reads every byte of its response lag after the server sent it,
// for as long as it lasts, as a client whose watch runs behind the server; watches opened while
// lag is 0 are not slowed. While hold > 0, a pod WatchList request (sendInitialEvents=true) waits
// hold before it is sent, as a complete state that takes the server a while.
type podWatchDelay struct {
	lag  atomic.Int64 // a time.Duration
	hold atomic.Int64 // a time.Duration
}

func isPodWatch(req *http.Request) bool {
	return strings.HasSuffix(req.URL.Path, "/pods") && req.URL.Query().Get("watch") == "true"
}

func (d *podWatchDelay) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if !isPodWatch(req) {
			return rt.RoundTrip(req)
		}
		if hold := time.Duration(d.hold.Load()); hold > 0 && req.URL.Query().Get("sendInitialEvents") == "true" {
			timer := time.NewTimer(hold)
			select {
			case <-timer.C:
			case <-req.Context().Done():
				timer.Stop()
				return nil, req.Context().Err()
			}
		}
		lag := time.Duration(d.lag.Load())
		resp, err := rt.RoundTrip(req)
		if err == nil && lag > 0 {
			resp.Body = newLaggingBody(resp.Body, lag)
		}
		return resp, err
	})
}

// laggingBody is a response body whose bytes come out lag after they arrived: a delay line, so
// that the lag stays the same however many events pass (a large initial state is late by lag,
// not by lag per event). Close ends it at once, also a Read waiting for its bytes.
type laggingBody struct {
	body   io.ReadCloser
	lag    time.Duration
	chunks chan lagChunk
	done   chan struct{}
	close  sync.Once
	// Owned by the goroutine that reads.
	cur []byte
	err error
}

type lagChunk struct {
	at   time.Time
	data []byte
	err  error
}

func newLaggingBody(body io.ReadCloser, lag time.Duration) *laggingBody {
	b := &laggingBody{body: body, lag: lag, chunks: make(chan lagChunk, 4096), done: make(chan struct{})}
	go b.pump()
	return b
}

// pump reads the real body as fast as it comes and stamps each chunk with its arrival time.
func (b *laggingBody) pump() {
	for {
		buf := make([]byte, 32<<10)
		n, err := b.body.Read(buf)
		select {
		case b.chunks <- lagChunk{at: time.Now(), data: buf[:n], err: err}:
		case <-b.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (b *laggingBody) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		var c lagChunk
		select {
		case c = <-b.chunks:
		case <-b.done:
			return 0, io.ErrClosedPipe
		}
		if wait := time.Until(c.at.Add(b.lag)); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-b.done:
				timer.Stop()
				return 0, io.ErrClosedPipe
			}
		}
		b.cur, b.err = c.data, c.err
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

func (b *laggingBody) Close() error {
	b.close.Do(func() { close(b.done) })
	return b.body.Close()
}

// TestLaggingOldSetRelistKeepsDeletes builds "a relist loses deletes when the old set lags": the
// current set's pods watch runs seconds behind the server (a delay line on its response body,
// lag 3.5 s), pods are created and, 2 s later, deleted, and a relist starts right after whose
// fresh WatchList takes 2.5 s to be asked. So the lagging old set delivers the pods' ADDED events
// while the new set runs (after its complete state began) and their deletes only after the swap,
// when the old set is retired and its events no longer count. The new set's complete state does
// not hold the pods, so it must deliver their deletes itself. Two rounds: the first with the set
// that Run started, the second with a set that a relist started while the lag was on.
//
// Promise 5 (nothing lost: a relist converges, an object deleted during the gap arrives as a
// delete). With the bug (the new set's sweep skipped an identity that any event had touched since
// the new set's complete state began), the pods stay in the view after the relist forever:
// assertConverged fails naming them, and the check that each delivered pod was delivered as a
// delete fails. The test also fails when its timing did not build the race (no delete had to come
// from the new set's complete state).
func TestLaggingOldSetRelistKeepsDeletes(t *testing.T) {
	const (
		lag  = 3500 * time.Millisecond // how far the old set's pods watch runs behind
		gap  = 2 * time.Second         // between the creates and the deletes
		hold = 2500 * time.Millisecond // before the new set's pods WatchList is sent
	)
	// The old set delivers the ADDED events at create+lag (about 1.5 s after the relist began and
	// 1 s before the new set's state ends) and the deletes at create+gap+lag (1 s after the swap).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := plane(t).Clientset
	var delay podWatchDelay
	cfg := rest.CopyConfig(plane(t).Config)
	cfg.Wrap(delay.wrap)

	delay.lag.Store(int64(lag))
	rr := startReader(t, cfg, RTPod)
	delay.lag.Store(0)
	ns := newNamespace(t, cs, "lagging")

	for round := range 2 {
		if round > 0 {
			// A relist whose streams open while the lag is on: its set, now current, lags.
			delay.lag.Store(int64(lag))
			if err := rr.r.Relist(ctx); err != nil {
				t.Fatalf("round %d: the relist that makes the current set lag: %v", round, err)
			}
			delay.lag.Store(0)
		}
		synthesized := rr.r.stats.synthesizedOf(reader.OTPod)
		var pods []client.Object
		for i := range 5 {
			pods = append(pods, mustCreate(t, cs, reader.OTPod, ns, fmt.Sprintf("x-%d-%d", round, i)))
		}
		time.Sleep(gap)
		for _, p := range pods {
			if err := testenv.Delete(ctx, cs, p); err != nil {
				t.Fatal(err)
			}
		}

		delay.hold.Store(int64(hold))
		start := time.Now()
		err := rr.r.Relist(ctx)
		delay.hold.Store(0)
		if err != nil {
			t.Fatalf("round %d: Relist: %v", round, err)
		}
		took := time.Since(start)

		rr.c.assertConverged(t, cs, RTPod, 5*time.Second)
		delivered := 0
		for _, p := range pods {
			if !rr.c.wasDelivered(p.GetUID()) {
				continue // the old set had not reached it by the swap, and the new set never saw it
			}
			delivered++
			if !rr.c.isDeleted(p.GetUID()) {
				t.Errorf("round %d: pod %s was delivered but its delete never was", round, p.GetName())
			}
		}
		fromState := rr.r.stats.synthesizedOf(reader.OTPod) - synthesized
		t.Logf("round %d: relist took %s; %d of %d pods delivered by the lagging set, %d deletes found by the new set's complete state",
			round, took.Round(time.Millisecond), delivered, len(pods), fromState)
		if fromState == 0 {
			t.Errorf("round %d: no delete came from the new set's complete state: the lagging set did not deliver "+
				"a pod between the relist's start and the swap, so the race was not built", round)
		}
	}
}

// TestWaitForSyncAfterRelist: after relists, and also when a relist swaps in before the reader was
// ever synced, WaitForSync returns nil on every call (21 calls with a 1 s timeout each), over all
// 12 streams of RTAll.
//
// Promise: WaitForSync returns nil once every stream delivered its initial state, and being synced
// belongs to the reader, across relists. With the bug (WaitForSync waited on the set Run started,
// which a relist stops, and picked at random between "synced" and "stopped" for each stream), a
// call after the first relist fails with probability 1-2^-12: with "streams stopped", or, as the
// code before the fix did (seen on commit 6c5e3fd), with ctx's deadline, because it then waited
// for a reader that was not stopping. Either way the first call already fails.
func TestWaitForSyncAfterRelist(t *testing.T) {
	waitMany := func(t *testing.T, r *Reader, calls int) {
		t.Helper()
		for i := range calls {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := r.WaitForSync(ctx)
			cancel()
			if err != nil {
				t.Fatalf("WaitForSync call %d after a relist = %v, want nil", i, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("after relists", func(t *testing.T) {
		rr := startReader(t, plane(t).Config, RTAll)
		for range 3 {
			if err := rr.r.Relist(ctx); err != nil {
				t.Fatalf("Relist: %v", err)
			}
			waitMany(t, rr.r, 7)
		}
	})

	t.Run("relist before the first sync", func(t *testing.T) {
		out := make(chan Entry)
		c := collect(out, false)
		r := newReaderFor(t, plane(t).Config, RTAll, out)
		if err := r.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// No WaitForSync first: the relist's set may be swapped in before the first set synced.
		if err := r.Relist(ctx); err != nil {
			t.Fatalf("Relist: %v", err)
		}
		waitMany(t, r, 21)
		c.assertConverged(t, plane(t).Clientset, RTAll, 20*time.Second)
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		<-c.done
		c.assertPromises(t)
	})
}

// busyPods creates a pod in ns every interval (with updates, it also touches the pod made before)
// until stop is called; stop returns the number of writes. A write that fails fails the test.
func busyPods(t *testing.T, cs *kubernetes.Clientset, ns string, interval time.Duration, updates bool) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	writes := 0
	go func() {
		defer close(done)
		var prev client.Object
		for i := 0; ctx.Err() == nil; i++ {
			obj, err := testenv.NewObject("Pod", ns, fmt.Sprintf("busy-%d", i))
			if err == nil {
				obj, err = testenv.Create(ctx, cs, obj)
			}
			if err == nil && updates && prev != nil {
				writes++
				_, err = testenv.Touch(ctx, cs, prev)
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("busy pods: %v", err)
				return
			}
			writes++
			prev = obj
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { cancel(); <-done })
		return writes
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestBusyKindBehindIgnoringServerFallsBack: a server that ignores sendInitialEvents (a second
// control plane with the WatchList feature off, behind ignoringProxy) while pods change every
// 100 ms, from before Run on: the watch starts with a synthetic ADDED event per object and then
// brings every change, and never the initial-events-end bookmark. With InitialEventsTimeout 2 s
// the pods stream still falls back to LIST + WATCH: Run and WaitForSync return nil within 15 s,
// the pods stream restarted for ReasonFallback, and once the churn stops the view converges. Two
// ways: only creates (ADDED events: only the deadline can tell), and creates and updates (a
// MODIFIED event before the bookmark shows at once that the server ignored the parameter).
//
// Promise: WaitForSync returns once every stream delivered its initial state (the fallback
// delivers it from a LIST), then promises 1-5. With the bug (the initial-events timer was an idle
// timer, reset by every event), a kind that changes more often than the timeout never falls back
// and never syncs: WaitForSync fails with context deadline exceeded after 15 s.
func TestBusyKindBehindIgnoringServerFallsBack(t *testing.T) {
	old, err := testenv.Start(testenv.Options{APIServerFlags: map[string]string{"feature-gates": "WatchList=false"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Stop() })
	timing := fastTiming()
	timing.InitialEventsTimeout = 2 * time.Second
	typ := RTPod | RTService

	for _, updates := range []bool{false, true} {
		name := "creates"
		if updates {
			name = "creates and updates"
		}
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t, old.Clientset, "busy")
			stopBusy := busyPods(t, old.Clientset, ns, 100*time.Millisecond, updates)
			time.Sleep(300 * time.Millisecond) // busy before the reader starts

			var logs syncBuffer
			out := make(chan Entry)
			c := collect(out, false)
			r := newReaderFor(t, ignoringProxy(t, old.Config), typ, out, withTiming(timing),
				WithLogger(funcr.New(logs.line, funcr.Options{})))
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			if err := r.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			opened := time.Since(start)
			if err := r.WaitForSync(ctx); err != nil {
				t.Fatalf("WaitForSync while pods change every 100 ms: %v\nlog:\n%s", err, logs.String())
			}
			synced := time.Since(start)
			if n := r.stats.restartsOf(reader.OTPod, stream.ReasonFallback); n == 0 {
				t.Errorf("the pods stream never restarted for ReasonFallback\nlog:\n%s", logs.String())
			}
			// Each way must reach the fallback by its own path, or it tests nothing new.
			why := `"kind"="Pod" "reason"="the server sent no initial-events-end bookmark in time"`
			if updates {
				why = `"kind"="Pod" "reason"="the server ignored sendInitialEvents: a MODIFIED event before`
			}
			if !strings.Contains(logs.String(), why) {
				t.Errorf("the pods stream did not fall back for the reason this case builds (%s)\nlog:\n%s", why, logs.String())
			}
			time.Sleep(time.Second)
			writes := stopBusy()
			c.assertConverged(t, old.Clientset, typ, 20*time.Second)
			c.closeReader(t, r, 10*time.Second)
			t.Logf("opened in %s, synced in %s; %d writes, %d entries checked; fallback restarts: pods %d, services %d",
				opened.Round(time.Millisecond), synced.Round(time.Millisecond), writes, c.total(),
				r.stats.restartsOf(reader.OTPod, stream.ReasonFallback), r.stats.restartsOf(reader.OTService, stream.ReasonFallback))
		})
	}
}

// errorEvent is the one event a server that cannot serve WatchList answers it with.
const errorEvent = `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",` +
	`"message":"etcd lacks progress notification","reason":"InternalError","code":500}}`

// errorEventProxy serves plain HTTP on a local port and forwards every request to the apiserver of
// cfg, as cfg's user, except a WATCH with sendInitialEvents=true: that one it answers itself with
// 200, one ERROR event (errorEvent) and the end of the body, as kube-apiserver does when it cannot
// serve WatchList (its etcd lacks progress notifications). served counts those answers.
func errorEventProxy(t *testing.T, cfg *rest.Config, served *atomic.Int64) *rest.Config {
	t.Helper()
	forward := forwardTo(t, cfg, nil)
	return serveProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("watch") == "true" && q.Get("sendInitialEvents") == "true" {
			served.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, errorEvent+"\n")
			return
		}
		forward.ServeHTTP(w, r)
	}))
}

// TestErrorEventBeforeBookmarkFallsBack: every WatchList is answered with 200 and one ERROR event
// (500 "etcd lacks progress notification") before any initial event, as kube-apiserver does when it
// cannot serve WatchList; LIST and plain watches reach the real apiserver. The reader must fall back
// to LIST + WATCH: Run and WaitForSync return nil within 15 s, every stream restarted for
// ReasonFallback, and the view converges after some churn.
//
// Promise: WaitForSync returns once every stream delivered its initial state, then promises 1-5.
// With the bug (an ERROR event before the end bookmark was retried as any 500, forever, with
// WatchList), no stream ever synced: WaitForSync fails with context deadline exceeded after 15 s
// and the fallback count is 0.
func TestErrorEventBeforeBookmarkFallsBack(t *testing.T) {
	var served atomic.Int64
	typ := RTPod | RTService
	var logs syncBuffer
	out := make(chan Entry)
	c := collect(out, false)
	r := newReaderFor(t, errorEventProxy(t, plane(t).Config, &served), typ, out,
		WithLogger(funcr.New(logs.line, funcr.Options{})))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, logs.String())
	}
	if err := r.WaitForSync(ctx); err != nil {
		t.Fatalf("WaitForSync when every WatchList ends with an ERROR event: %v (%d ERROR answers)\nlog:\n%s",
			err, served.Load(), logs.String())
	}
	synced := time.Since(start)
	if n := r.stats.restartCount(stream.ReasonFallback); n != 2 {
		t.Errorf("%d fallback restarts, want one per stream (2)\nlog:\n%s", n, logs.String())
	}
	ns := newNamespace(t, plane(t).Clientset, "error-event")
	ch := churn(t, plane(t).Clientset, ns, 13, 10*time.Millisecond, reader.OTPod, reader.OTService)
	time.Sleep(2 * time.Second)
	writes := ch.stop()
	c.assertConverged(t, plane(t).Clientset, typ, 20*time.Second)
	c.closeReader(t, r, 10*time.Second)
	t.Logf("synced in %s after %d ERROR answers; %d writes, %d entries checked",
		synced.Round(time.Millisecond), served.Load(), writes, c.total())
}

// TestRelistStalledConsumer: the consumer stops reading during Relist, as one that calls Relist
// from the goroutine that reads out does. The reader (pods, out unbuffered) syncs while the test
// reads; then pods churn, so that a stream waits in a send with the output's lock held, and Relist
// runs with a 2 s context while nobody reads out (the only consumer waits for Relist). Relist must
// return within about 3 s with an error wrapping context.DeadlineExceeded and leave the current set
// running; then the consumer reads again, the view converges, every promise holds, a later Relist
// succeeds and Close returns.
//
// Promise: Relist returns once swapped in, failed, or ctx ended (its ctx bounds every wait), and
// Close returns. With the bug (Relist took the output's lock without a context), Relist blocked
// for as long as the consumer did not read, and a consumer that waits for it never reads again:
// the test reports Relist still blocked 10 s after it began.
func TestRelistStalledConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make(chan Entry)
	r := newReaderFor(t, plane(t).Config, RTPod, out)
	// The test reads out and passes each entry to the collector: while it does not, nobody reads.
	toCollector := make(chan Entry)
	c := collect(toCollector, false)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			go func() {
				for e := range out {
					toCollector <- e
				}
				close(toCollector)
			}()
		}
	}
	t.Cleanup(resume) // so that Close can finish on any path

	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	synced := make(chan error, 1)
	go func() { synced <- r.WaitForSync(ctx) }()
consume:
	for {
		select {
		case e := <-out:
			toCollector <- e
		case err := <-synced:
			if err != nil {
				t.Fatalf("WaitForSync: %v", err)
			}
			break consume
		}
	}

	ns := newNamespace(t, plane(t).Clientset, "stalled")
	ch := churn(t, plane(t).Clientset, ns, 21, 5*time.Millisecond, reader.OTPod)
	time.Sleep(500 * time.Millisecond) // the pods stream now waits in a send, holding the output's lock

	relistCtx, cancelRelist := context.WithTimeout(ctx, 2*time.Second)
	defer cancelRelist()
	start := time.Now()
	relisted := make(chan error, 1)
	go func() { relisted <- r.Relist(relistCtx) }()
	var relistErr error
	returned := true
	select {
	case relistErr = <-relisted:
	case <-time.After(10 * time.Second):
		returned = false
	}
	took := time.Since(start)
	resume()
	if !returned {
		t.Errorf("Relist still blocked %s after it began with a 2 s context while the consumer waited for it", took.Round(time.Millisecond))
		select {
		case relistErr = <-relisted:
			t.Logf("Relist returned %v once the consumer read again", relistErr)
		case <-time.After(20 * time.Second):
			t.Fatal("Relist still blocked 20 s after the consumer read again")
		}
	} else {
		if !errors.Is(relistErr, context.DeadlineExceeded) {
			t.Errorf("Relist with nobody reading = %v, want an error wrapping context.DeadlineExceeded", relistErr)
		}
		if took > 3500*time.Millisecond {
			t.Errorf("Relist took %s with a 2 s context", took.Round(time.Millisecond))
		}
	}
	if now, most, _ := r.stats.setCounts(); now != 1 || most > 2 {
		t.Errorf("after the failed relist: %d sets running (want 1), at most %d at once (want <= 2)", now, most)
	}

	time.Sleep(time.Second)
	writes := ch.stop()
	c.assertConverged(t, plane(t).Clientset, RTPod, 20*time.Second)
	if err := r.Relist(ctx); err != nil {
		t.Errorf("Relist once the consumer reads again: %v", err)
	}
	c.closeReader(t, r, 10*time.Second)
	t.Logf("Relist with nobody reading returned after %s: %v; then %d writes, %d entries checked",
		took.Round(time.Millisecond), relistErr, writes, c.total())
}

// TestNeverReachedServerIsNotOpen builds "Run reports every stream open when the server was never
// reached": the reader's user has no right to list or watch pods (an envtest user without any RBAC
// binding), and a TCP proxy in front of the apiserver closes every connection as soon as it accepts
// it, until the first WatchList ended. client-go's Watch retries such connection errors about 10
// times 1 s apart and then returns an empty watch with no error; the stream must not count that as
// an answer. Once connections pass, the WatchList gets Forbidden, which retrying will not fix.
//
// Promise (Run): Run errors on a stream that cannot open for a reason retrying will not fix, naming
// the resource. With the bug (a stream was marked open as soon as Watch returned without error, so
// on the empty watch), Run returns nil after about 10 s and the Forbidden is then retried forever:
// the test reports Run = nil.
func TestNeverReachedServerIsNotOpen(t *testing.T) {
	user, err := plane(t).Env.AddUser(envtest.User{Name: "watchlist-never-reached"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t)
	p.Block()
	var logs syncBuffer
	out := make(chan Entry)
	r := newReaderFor(t, p.Config(user.Config()), RTPod, out, WithLogger(funcr.New(logs.line, funcr.Options{})))
	go func() {
		for range out {
		}
	}()
	var ran atomic.Bool
	result := make(chan error, 1)
	start := time.Now()
	go func() {
		err := r.Run(context.Background())
		ran.Store(true)
		result <- err
	}()
	waitFor(t, 40*time.Second, "the first WatchList to end while every connection is closed", func() bool {
		return ran.Load() || r.stats.restartsOf(reader.OTPod, stream.ReasonError) > 0
	})
	firstTurn := time.Since(start)
	p.Unblock()
	var runErr error
	select {
	case runErr = <-result:
	case <-time.After(30 * time.Second):
		t.Fatalf("Run still running 30 s after connections pass\nlog:\n%s", logs.String())
	}
	took := time.Since(start)
	if runErr == nil {
		t.Fatalf("Run = nil after %s, want Forbidden naming pods: the stream counted as open though the server never answered\nlog:\n%s",
			took.Round(time.Millisecond), logs.String())
	}
	if !apierrors.IsForbidden(runErr) || !strings.Contains(runErr.Error(), "pods") {
		t.Fatalf("Run = %v, want Forbidden naming pods\nlog:\n%s", runErr, logs.String())
	}
	if !strings.Contains(logs.String(), "watch ended before the initial state was complete") {
		t.Errorf("the stream never got client-go's empty watch, so the test did not build its condition\nlog:\n%s", logs.String())
	}
	t.Logf("first WatchList ended after %s; Run failed after %s: %v", firstTurn.Round(time.Millisecond), took.Round(time.Millisecond), runErr)
}
