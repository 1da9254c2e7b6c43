package watchlist

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// ignoringProxy serves plain HTTP on a local port and forwards every request to the apiserver of
// cfg, as cfg's user, without the sendInitialEvents and resourceVersionMatch parameters. An
// apiserver with the WatchList feature off then behaves as one that ignores them: a watch from
// resourceVersion "" begins with synthetic ADDED events of every object and never sends the
// initial-events-end bookmark. (With the feature on, the server defaults such a watch to
// sendInitialEvents=true.)
func ignoringProxy(t *testing.T, cfg *rest.Config) *rest.Config {
	t.Helper()
	return serveProxy(t, forwardTo(t, cfg, func(q url.Values) {
		q.Del("sendInitialEvents")
		q.Del("resourceVersionMatch")
	}))
}

// forwardTo returns a reverse proxy to the apiserver of cfg, as cfg's user, that passes watch events
// at once; edit, if not nil, may change each request's query on the way.
func forwardTo(t *testing.T, cfg *rest.Config, edit func(url.Values)) *httputil.ReverseProxy {
	t.Helper()
	target, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			if edit != nil {
				q := r.Out.URL.Query()
				edit(q)
				r.Out.URL.RawQuery = q.Encode()
			}
		},
		Transport:     transport,
		FlushInterval: -1, // watch events pass at once
	}
}

// serveProxy serves h on a local port, plain HTTP, until the test ends, and returns a config for it.
func serveProxy(t *testing.T, h http.Handler) *rest.Config {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

// TestFallbackWhenWatchListIsOff: on a second control plane with the WatchList feature off (and
// ingresses not served), the reader falls back to LIST + WATCH, says so once per stream,
// and still delivers the state and every change. Through a proxy that drops sendInitialEvents, the
// same server ignores it, as servers before WatchList did: the initial state never ends, and each
// stream falls back once InitialEventsTimeout passed, without delivering any object twice. A kind
// the server does not serve fails Run.
func TestFallbackWhenWatchListIsOff(t *testing.T) {
	old, err := testenv.Start(testenv.Options{APIServerFlags: map[string]string{
		"feature-gates":  "WatchList=false",
		"runtime-config": "networking.k8s.io/v1/ingresses=false",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Stop() })

	t.Run("LIST + WATCH", func(t *testing.T) {
		ns := newNamespace(t, old.Clientset, "fallback")
		for _, name := range []string{"a", "b", "c"} {
			mustCreate(t, old.Clientset, reader.OTPod, ns, name)
		}
		var logs syncBuffer
		typ := RTPod | RTService | RTNamespace
		rr := startReader(t, old.Config, typ, WithLogger(funcr.New(logs.line, funcr.Options{})))
		ch := churn(t, old.Clientset, ns, 11, 10*time.Millisecond, reader.OTPod, reader.OTService)
		time.Sleep(3 * time.Second)
		writes := ch.stop()
		rr.c.assertConverged(t, old.Clientset, typ, 20*time.Second)
		if got := strings.Count(logs.String(), "falling back to LIST + WATCH"); got != 3 {
			t.Errorf("%d fallback messages, want one per stream (3):\n%s", got, logs.String())
		}
		if n := rr.r.stats.restartCount(stream.ReasonFallback); n != 3 {
			t.Errorf("%d fallback restarts, want 3", n)
		}
		t.Logf("fallback: %d writes, %d entries checked", writes, rr.c.total())
	})

	t.Run("sendInitialEvents ignored", func(t *testing.T) {
		ns := newNamespace(t, old.Clientset, "ignored")
		for _, name := range []string{"a", "b", "c"} {
			mustCreate(t, old.Clientset, reader.OTPod, ns, name)
		}
		timing := fastTiming()
		timing.InitialEventsTimeout = 2 * time.Second
		var logs syncBuffer
		typ := RTPod | RTService | RTNamespace
		start := time.Now()
		rr := startReader(t, ignoringProxy(t, old.Config), typ, withTiming(timing),
			WithLogger(funcr.New(logs.line, funcr.Options{})))
		took := time.Since(start)
		if took < timing.InitialEventsTimeout {
			t.Errorf("synced in %s, before InitialEventsTimeout (%s): the end bookmark was not missing", took, timing.InitialEventsTimeout)
		}
		if got := strings.Count(logs.String(), "the server sent no initial-events-end bookmark"); got != 3 {
			t.Errorf("%d fallbacks for a missing bookmark, want one per stream (3):\n%s", got, logs.String())
		}
		if n := rr.r.stats.restartCount(stream.ReasonFallback); n != 3 {
			t.Errorf("%d fallback restarts, want 3", n)
		}
		ch := churn(t, old.Clientset, ns, 12, 10*time.Millisecond, reader.OTPod, reader.OTService)
		time.Sleep(3 * time.Second)
		writes := ch.stop()
		rr.c.assertConverged(t, old.Clientset, typ, 20*time.Second)
		t.Logf("synced in %s through the fallback; %d writes, %d entries checked", took.Round(time.Millisecond), writes, rr.c.total())
	})

	t.Run("custom resource", func(t *testing.T) {
		installCRDsOn(t, old.Config)
		dyn := dynamicFor(t, old.Config)
		ns := newNamespace(t, old.Clientset, "resources")
		createResources(t, dyn, widgets, ns, "w-", 5)
		timing := fastTiming()
		timing.PageSize = 2 // several pages, each decoded as an unstructured list
		rr := startReader(t, old.Config, 0, WithResources(widgets), withTiming(timing))
		snapshot := resourceSnapshot(dyn, widgets)
		rr.c.awaitView(t, "the server", 20*time.Second, snapshot)
		ch := churnResources(t, dyn, ns, 13, 10*time.Millisecond, widgets)
		time.Sleep(2 * time.Second)
		writes := ch.stop()
		rr.c.awaitView(t, "the server", 30*time.Second, snapshot)
		if n := rr.r.stats.restartsOfID(kindID(t, rr.r, widgets), stream.ReasonFallback); n != 1 {
			t.Errorf("%d fallback restarts of the widgets' stream, want 1", n)
		}
		t.Logf("widgets through the fallback: %d writes, %d entries checked", writes, rr.c.total())
	})

	t.Run("not served", func(t *testing.T) {
		err, _ := runErr(t, old.Config, RTIngressController)
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "ingresses") {
			t.Fatalf("Run = %v, want NotFound naming ingresses", err)
		}
	})
}
