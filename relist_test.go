package watchlist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/reader"
)

// TestSwapRetiresTheOldSet plays a relist through the output: the new set's complete state lacks
// one object, which comes out as a delete when that state ends, the reader counts as synced once
// the new set is swapped in, and an event of the old set after the swap is not delivered.
func TestSwapRetiresTheOldSet(t *testing.T) {
	ctx := context.Background()
	ch := make(chan reader.Entry, 16)
	st := newStats()
	o := newOutput(ch, 0, st, logr.Discard())
	old, next := newTestSet(), newTestSet()
	oldSink, nextSink := setSink{o: o, set: old}, setSink{o: o, set: next}
	for _, p := range []struct{ uid, rv string }{{uidA, "10"}, {uidB, "11"}} {
		if err := oldSink.Observe(ctx, podID, watch.Added, pod(p.uid, p.rv), 0); err != nil {
			t.Fatal(err)
		}
	}
	o.beginOverlap(next)
	token := nextSink.BeginSync(podID)
	if err := nextSink.Observe(ctx, podID, watch.Added, pod(uidB, "11"), token); err != nil {
		t.Fatal(err)
	}
	if err := nextSink.EndSync(ctx, podID, token, "20", false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-next.synced:
	default:
		t.Fatal("the new set is not synced after its only stream's complete state")
	}
	select {
	case <-o.synced:
		t.Fatal("the reader counts as synced through a candidate before the swap")
	default:
	}
	if resync := o.swap(old, next); len(resync) != 0 {
		t.Fatalf("streams %v asked to resync; pods have integer versions", resync)
	}
	select {
	case <-o.synced:
	default:
		t.Fatal("the reader is not synced after the swap")
	}
	if err := oldSink.Observe(ctx, podID, watch.Modified, pod(uidB, "21"), 0); err != nil {
		t.Fatal(err)
	}
	close(ch)
	var got []string
	for e := range ch {
		got = append(got, fmt.Sprintf("%s %s", e.ChangeType(), e.UID()))
	}
	want := fmt.Sprint([]string{"Add " + uidA, "Add " + uidB, "Delete " + uidA})
	if fmt.Sprint(got) != want {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if o.overlap() {
		t.Fatal("still overlapping after the swap")
	}
}

// TestQuietRelist: relists of a cluster where nothing changes deliver no entry at all, whether on
// the timer or asked for, and never run more than two sets.
func TestQuietRelist(t *testing.T) {
	rr := startReader(t, plane(t).Config, RTAll, withRelistPeriod(400*time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	before := rr.c.total()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rr.r.Relist(ctx); err != nil {
		t.Fatalf("Relist: %v", err)
	}
	waitFor(t, 30*time.Second, "3 relists", func() bool { _, _, n := rr.r.stats.setCounts(); return n >= 3 })
	now, most, relists := rr.r.stats.setCounts()
	if got := rr.c.total() - before; got != 0 {
		t.Errorf("%d entries delivered by %d relists of a quiet cluster, want 0", got, relists)
	}
	if most > 2 {
		t.Errorf("%d sets ran at once, want at most 2", most)
	}
	t.Logf("%d relists of %d objects: 0 entries; sets now %d, at most %d", relists, before, now, most)
}

// TestRelistDuringChurn: relists every ~0.5 s while objects change; nothing is doubled or lost.
func TestRelistDuringChurn(t *testing.T) {
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			typ := RTPod | RTService | RTRBAC
			rr := startReader(t, plane(t).Config, typ, withRelistPeriod(500*time.Millisecond))
			ns := newNamespace(t, plane(t).Clientset, "relist")
			ch := churn(t, plane(t).Clientset, ns, seed, 5*time.Millisecond, reader.OTPod, reader.OTService, reader.OTRole)
			waitFor(t, 60*time.Second, "4 relists", func() bool { _, _, n := rr.r.stats.setCounts(); return n >= 4 })
			writes := ch.stop()
			rr.c.assertConverged(t, plane(t).Clientset, typ, 20*time.Second)
			_, most, relists := rr.r.stats.setCounts()
			if most > 2 {
				t.Errorf("%d sets ran at once, want at most 2", most)
			}
			t.Logf("seed %d: %d writes, %d relists, %d entries checked", seed, writes, relists, rr.c.total())
		})
	}
}

// TestRelistThatCannotComplete: while the server cannot be reached the relist gives up, the current
// set keeps running, and the reader still converges once the server is back.
func TestRelistThatCannotComplete(t *testing.T) {
	p := newProxy(t)
	typ := RTPod | RTService
	rr := startReader(t, p.Config(plane(t).Config), typ)
	rr.r.relistLimit = 1500 * time.Millisecond
	p.Block()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := rr.r.Relist(ctx); err == nil {
		t.Fatal("Relist succeeded with the server unreachable")
	}
	t.Logf("relist gave up after %s", time.Since(start).Round(time.Millisecond))
	if now, most, _ := rr.r.stats.setCounts(); now != 1 || most > 2 {
		t.Errorf("sets now %d (want 1), at most %d (want <= 2)", now, most)
	}
	ns := newNamespace(t, plane(t).Clientset, "relist-down")
	ch := churn(t, plane(t).Clientset, ns, 4, 10*time.Millisecond, reader.OTPod, reader.OTService)
	time.Sleep(time.Second)
	p.Unblock()
	time.Sleep(time.Second)
	ch.stop()
	rr.c.assertConverged(t, plane(t).Clientset, typ, 30*time.Second)
	if err := rr.r.Relist(ctx); err != nil {
		t.Fatalf("Relist once the server is back: %v", err)
	}
}

// TestRelistForbidden: a relist by a user whose rights were taken away fails with Forbidden naming
// the resource, the current set keeps running, and once the rights are back the reader converges and
// relists again.
func TestRelistForbidden(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "watchlist-relist-revoked"
	typ := RTPod | RTService
	rr := startReader(t, userWithRole(t, name, readerRole(t)), typ)
	bindings := plane(t).Clientset.RbacV1().ClusterRoleBindings()
	binding, err := bindings.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bindings.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The apiserver's authorizer sees the delete a moment later: relist until it is refused.
	var relistErr error
	waitFor(t, 20*time.Second, "a refused relist", func() bool {
		relistErr = rr.r.Relist(ctx)
		return relistErr != nil
	})
	if !apierrors.IsForbidden(relistErr) || !strings.Contains(relistErr.Error(), "relist") {
		t.Fatalf("Relist = %v, want a relist error wrapping Forbidden", relistErr)
	}
	if now, most, _ := rr.r.stats.setCounts(); now != 1 || most > 2 {
		t.Errorf("sets now %d (want 1), at most %d (want <= 2)", now, most)
	}

	binding.ResourceVersion = ""
	if _, err := bindings.Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, plane(t).Clientset, "relist-forbidden")
	ch := churn(t, plane(t).Clientset, ns, 5, 10*time.Millisecond, reader.OTPod, reader.OTService)
	time.Sleep(2 * time.Second)
	writes := ch.stop()
	rr.c.assertConverged(t, plane(t).Clientset, typ, 30*time.Second)
	waitFor(t, 20*time.Second, "a relist once the rights are back", func() bool { return rr.r.Relist(ctx) == nil })
	t.Logf("refused relist: %v; then %d writes, %d entries checked", relistErr, writes, rr.c.total())
}
