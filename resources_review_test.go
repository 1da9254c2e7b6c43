package watchlist

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// Tests a reviewer wrote to break WithResources, with no control plane: each failed before its fix
// (two versions of one resource, a discovery entry without a kind, one 503 of discovery, Close
// during discovery).
var (
	rv2WidgetsV2 = schema.GroupVersionResource{Group: "stable.example.com", Version: "v2", Resource: "widgets"}
	rv2Served    = metav1.APIResource{Name: "widgets", Namespaced: true, Kind: "Widget", Verbs: metav1.Verbs{"list", "watch"}}
)

func rv2Widget(gvr schema.GroupVersionResource, uid, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(gvr.GroupVersion().WithKind("Widget"))
	u.SetNamespace("ns")
	u.SetName("w")
	u.SetUID(types.UID(uid))
	u.SetResourceVersion(rv)
	return u
}

// twoVersionKinds returns the kinds of widgets v1 and v2, as Run's discovery would make them.
func twoVersionKinds(t *testing.T) (kinds.Kind, kinds.Kind) {
	t.Helper()
	k1, err := kinds.Resource(0, widgets, rv2Served)
	must(t, err)
	k2, err := kinds.Resource(1, rv2WidgetsV2, rv2Served)
	must(t, err)
	return k1, k2
}

// TestResourcesReviewTwoVersionsOfOneResource: WithResources accepts two versions of one CRD (or
// events and events.events.k8s.io, autoscaling/v1 and v2 horizontalpodautoscalers): the same
// objects, with the same UIDs, under two kinds.IDs. The filter keys identities by UID alone, so the
// second stream's complete state stamps the first one's record with its own token, and the first
// stream's sweep then finds its own object "gone": a synthesized delete of an object that exists,
// at the very start (promise 1 and 5), and the v2 resource never gets its add.
func TestResourcesReviewTwoVersionsOfOneResource(t *testing.T) {
	if _, err := New(context.Background(), offlineClientset(t), 0, WithResources(widgets, rv2WidgetsV2)); err != nil {
		t.Logf("New rejects two versions of one resource: %v", err)
		return
	}
	k1, k2 := twoVersionKinds(t)

	ch := make(chan reader.Entry, 16)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	set := newTestSet(reader.OTPod, reader.OTPod)
	set.specs[0].kind, set.specs[1].kind = k1, k2
	s1, s2 := setSink{o: o, set: set, i: 0}, setSink{o: o, set: set, i: 1}
	ctx := context.Background()

	// Run starts both streams at once: both take their tokens, both states hold the widget.
	t1, t2 := s1.BeginSync(k1.ID), s2.BeginSync(k2.ID)
	must(t, s1.Observe(ctx, k1.ID, watch.Added, rv2Widget(widgets, uidA, "10"), t1))
	must(t, s2.Observe(ctx, k2.ID, watch.Added, rv2Widget(rv2WidgetsV2, uidA, "10"), t2))
	must(t, s1.EndSync(ctx, k1.ID, t1, "20", false))
	must(t, s2.EndSync(ctx, k2.ID, t2, "20", false))
	close(ch)

	var got []string
	for e := range ch {
		got = append(got, fmt.Sprintf("%s %s", e.ChangeType(), e.Resource().Version))
	}
	want := []string{"Add v1", "Add v2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("one widget that exists, read as v1 and v2:\n got %v\nwant %v", got, want)
	}
}

// TestResourcesReviewMetricsLabelsOfTwoVersions: Kind.Label is the GroupResource, so two versions of one
// resource (which New accepts) export the same label set twice: every scrape fails.
func TestResourcesReviewMetricsLabelsOfTwoVersions(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(context.Background(), offlineClientset(t), 0,
		WithResources(widgets, rv2WidgetsV2), WithMetrics(reg))
	if err != nil {
		t.Logf("New rejects two versions of one resource: %v", err)
		return
	}
	// What Run's discovery adds.
	k1, k2 := twoVersionKinds(t)
	r.mu.Lock()
	r.kinds = append(r.kinds, k1, k2)
	r.mu.Unlock()
	r.stats.delivered(k1.ID, reader.CTAdd)
	r.stats.delivered(k2.ID, reader.CTAdd)
	if _, err := reg.Gather(); err != nil {
		t.Errorf("Gather with widgets v1 and v2: %v", err)
	}
}

// TestResourcesReviewTombstoneWithoutKind: kinds.Resource takes the Kind from discovery's APIResource
// without checking it; an entry without one gives synthesized deletes with no kind (the contract:
// "apiVersion, kind, namespace, name, UID, resourceVersion"). discoverResources does not reject it.
func TestResourcesReviewTombstoneWithoutKind(t *testing.T) {
	served := rv2Served
	served.Kind = ""
	if _, err := findResource(&metav1.APIResourceList{APIResources: []metav1.APIResource{served}}, widgets); err != nil {
		t.Logf("findResource rejects it: %v", err)
		return
	}
	k, err := kinds.Resource(0, widgets, served)
	if err != nil {
		t.Logf("kinds.Resource rejects it: %v", err)
		return
	}
	e, err := k.Entry(reader.CTDelete, k.Tombstone("ns", "w", uidA, "10"))
	must(t, err)
	u := e.Object().(*unstructured.Unstructured)
	if u.GetKind() == "" || u.GetAPIVersion() == "" {
		t.Errorf("synthesized delete: apiVersion %q, kind %q", u.GetAPIVersion(), u.GetKind())
	}
}

// rv2Server serves the discovery of stable.example.com/v1 (through discovery, which calls it
// first) and a WatchList of widgets that ends its initial state at once and stays open.
func rv2Server(t *testing.T, discovery http.HandlerFunc) *kubernetes.Clientset {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/apis/stable.example.com/v1":
			discovery(w, req)
		case strings.HasSuffix(req.URL.Path, "/widgets") && req.URL.Query().Get("watch") == "true":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			fmt.Fprintln(w, `{"type":"BOOKMARK","object":{"kind":"Widget","apiVersion":"stable.example.com/v1","metadata":{"resourceVersion":"10","annotations":{"k8s.io/initial-events-end":"true"}}}}`)
			w.(http.Flusher).Flush()
			<-req.Context().Done()
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	must(t, err)
	return cs
}

func rv2Discovery(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"stable.example.com/v1","resources":[`+
		`{"name":"widgets","singularName":"widget","namespaced":true,"kind":"Widget","verbs":["list","watch"]},`+
		`{"name":"widgets/status","singularName":"","namespaced":true,"kind":"Widget","verbs":["get","patch","update"]}]}`)
}

// TestResourcesReviewRunDiscovery503: the README says Run fails at once only on what retrying will not fix
// (Forbidden, Unauthorized, not served) and that "connection errors, 429 and 5xx are retried with
// backoff". Run's discovery of WithResources retries nothing: one 503 (an aggregated API's
// apiserver briefly unavailable, an apiserver restarting) fails Run and stops the reader.
func TestResourcesReviewRunDiscovery503(t *testing.T) {
	var calls atomic.Int32
	cs := rv2Server(t, func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}`)
			return
		}
		rv2Discovery(w)
	})
	r, err := New(context.Background(), cs, 0, WithResources(widgets), withTiming(fastTiming()))
	must(t, err)
	must(t, r.SetOut(context.Background(), make(chan Entry, 16)))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Errorf("Run after one 503 of discovery: %v (discovery asked %d times)", err, calls.Load())
	}
}

// TestResourcesReviewCloseDuringDiscovery: Close does not end Run's discovery, which uses only Run's ctx
// (and the clientset has no timeout by default): Close returns, out is closed, but Run stays blocked
// for as long as the server does not answer.
func TestResourcesReviewCloseDuringDiscovery(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	cs := rv2Server(t, func(w http.ResponseWriter, req *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-req.Context().Done():
			return
		}
		rv2Discovery(w)
	})
	defer close(release) // registered after srv.Close's cleanup: runs first, so the server can close
	r, err := New(context.Background(), cs, 0, WithResources(widgets), withTiming(fastTiming()))
	must(t, err)
	must(t, r.SetOut(context.Background(), make(chan Entry, 16)))
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(context.Background()) }()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no discovery request")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, r.Close(ctx))
	select {
	case err := <-runErr:
		t.Logf("Run after Close: %v", err)
	case <-time.After(3 * time.Second):
		t.Error("Run still blocked in discovery 3s after Close returned")
	}
}
