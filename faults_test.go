package watchlist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// seeds are the random seeds each fault scenario runs with.
var seeds = []uint64{1, 2, 3}

// newProxy puts a TCP proxy of the test's own between a reader and the apiserver.
func newProxy(t *testing.T) *testenv.Proxy {
	t.Helper()
	p, err := testenv.NewProxy(plane(t).APIServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestConnectionsCutDuringChurn: the reader's connections are cut, or refused for a while, every
// few hundred milliseconds while another client creates, updates and deletes. The reader converges
// to the server, with the deletes of every gap, and never breaks a promise.
func TestConnectionsCutDuringChurn(t *testing.T) {
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			p := newProxy(t)
			typ := RTPod | RTService | RTRBAC
			rr := startReader(t, p.Config(plane(t).Config), typ)
			ns := newNamespace(t, plane(t).Clientset, "cuts")
			ch := churn(t, plane(t).Clientset, ns, seed, 5*time.Millisecond, reader.OTPod, reader.OTService, reader.OTRole)
			faults := 0
			for i := range 8 {
				time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
				if i%2 == 0 {
					p.Cut()
				} else {
					p.Block()
					time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
					p.Unblock()
				}
				faults++
			}
			writes := ch.stop()
			rr.c.assertConverged(t, plane(t).Clientset, typ, 30*time.Second)
			t.Logf("seed %d: %d writes (%d failed), %d faults, %d entries checked, restarts: ended %d, error %d",
				seed, writes, ch.failed.Load(), faults, rr.c.total(),
				rr.r.stats.restartCount(stream.ReasonEnded), rr.r.stats.restartCount(stream.ReasonError))
			if rr.r.stats.restartCount(stream.ReasonEnded)+rr.r.stats.restartCount(stream.ReasonError) == 0 {
				t.Error("no stream restarted: the faults did not reach the reader")
			}
		})
	}
}

// TestExpiredResumeFindsDeletes: the reader is cut off while objects it has seen are deleted and
// etcd is compacted, so that its resume gets 410 and only the diff of a fresh WatchList can find
// those deletes.
func TestExpiredResumeFindsDeletes(t *testing.T) {
	ctx := context.Background()
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			p := newProxy(t)
			rr := startReader(t, p.Config(plane(t).Config), RTPod)
			ns := newNamespace(t, plane(t).Clientset, "expired")
			var pods []types.UID
			objs := map[types.UID]string{}
			for i := range 10 {
				obj := mustCreate(t, plane(t).Clientset, reader.OTPod, ns, fmt.Sprint("p-", i))
				pods = append(pods, obj.GetUID())
				objs[obj.GetUID()] = obj.GetName()
			}
			waitFor(t, 10*time.Second, "the pods", func() bool { return rr.c.hasVersion(pods[9], "1") })

			p.Block()
			deleted := 3 + rng.IntN(5)
			for _, uid := range pods[:deleted] {
				obj, err := testenv.NewObject("Pod", ns, objs[uid])
				if err != nil {
					t.Fatal(err)
				}
				if err := testenv.Delete(ctx, plane(t).Clientset, obj); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				mustCreate(t, plane(t).Clientset, reader.OTPod, ns, fmt.Sprint("late-", i))
			}
			if _, err := plane(t).CompactEtcd(ctx); err != nil {
				t.Fatal(err)
			}
			p.Unblock()

			rr.c.assertConverged(t, plane(t).Clientset, RTPod, 30*time.Second)
			for _, uid := range pods[:deleted] {
				if !rr.c.isDeleted(uid) {
					t.Errorf("pod %s deleted during the gap was not delivered as a delete", objs[uid])
				}
			}
			expired := rr.r.stats.restartsOf(reader.OTPod, stream.ReasonExpired)
			synthesized := rr.r.stats.synthesizedOf(reader.OTPod)
			t.Logf("seed %d: %d pods deleted in the gap, 410 restarts %d, synthesized deletes %d, %d entries checked",
				seed, deleted, expired, synthesized, rr.c.total())
			if expired == 0 {
				t.Error("the resume did not get 410: the expired path did not run")
			}
			if synthesized < deleted {
				t.Errorf("%d deletes found by the diff, want at least %d", synthesized, deleted)
			}
		})
	}
}

// TestResumeWithoutReplay: watches end every 3-6 s (the server's --min-request-timeout) during a
// minute of churn; every resume continues from the last resume point with no replay.
func TestResumeWithoutReplay(t *testing.T) {
	timing := fastTiming()
	timing.WatchTimeout = 0 // leave the watch's length to --min-request-timeout
	typ := RTPod | RTService
	rr := startReader(t, plane(t).Config, typ, withTiming(timing))
	ns := newNamespace(t, plane(t).Clientset, "resume")
	ch := churn(t, plane(t).Clientset, ns, 7, 20*time.Millisecond, reader.OTPod, reader.OTService)
	time.Sleep(time.Minute)
	writes := ch.stop()
	rr.c.assertConverged(t, plane(t).Clientset, typ, 20*time.Second)
	ended := rr.r.stats.restartCount(stream.ReasonEnded)
	t.Logf("%d writes, %d resumes after a normal end, %d entries checked", writes, ended, rr.c.total())
	if ended < 10 {
		t.Errorf("only %d resumes in a minute; watches should end every 3-6 s", ended)
	}
	if n := rr.r.stats.restartCount(stream.ReasonExpired); n > 0 {
		t.Errorf("%d resumes expired: a resume point should stay valid", n)
	}
}

// TestAPIServerRestartDuringChurn: the apiserver stops and starts again while objects change. With
// the watch cache on, resumes get 410 and the reader diffs a fresh state.
func TestAPIServerRestartDuringChurn(t *testing.T) {
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			typ := RTPod | RTService | RTRBAC
			rr := startReader(t, plane(t).Config, typ)
			ns := newNamespace(t, plane(t).Clientset, "restart")
			ch := churn(t, plane(t).Clientset, ns, seed, 5*time.Millisecond, reader.OTPod, reader.OTService, reader.OTRole)
			time.Sleep(time.Duration(500+rand.New(rand.NewPCG(seed, 3)).IntN(1000)) * time.Millisecond)
			if err := plane(t).RestartAPIServer(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			writes := ch.stop()
			rr.c.assertConverged(t, plane(t).Clientset, typ, 30*time.Second)
			expired := rr.r.stats.restartCount(stream.ReasonExpired)
			t.Logf("seed %d: %d writes (%d failed while down), 1 restart, %d entries checked, 410 resumes %d, synthesized deletes %d",
				seed, writes, ch.failed.Load(), rr.c.total(), expired, rr.r.stats.synthesizedOf(reader.OTService)+rr.r.stats.synthesizedOf(reader.OTRole)+rr.r.stats.synthesizedOf(reader.OTPod))
			if expired == 0 {
				t.Error("no resume got 410 after the restart: the expired path did not run")
			}
		})
	}
}
