package watchlist

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// The resources the tests of WithResources read: a custom one (testdata/crds) and a built-in one
// no RetrieveType bit reads.
var (
	widgets    = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "widgets"}
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// installCRDs installs the CRDs of testdata/crds on the shared plane (again: it updates them) and
// waits until the server serves them.
func installCRDs(t *testing.T) { installCRDsOn(t, plane(t).Config) }

// installCRDsOn installs the CRDs of testdata/crds through cfg.
func installCRDsOn(t *testing.T, cfg *rest.Config) {
	t.Helper()
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths: []string{"testdata/crds"}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(err)
	}
}

// dynamicFor returns a dynamic client through cfg.
func dynamicFor(t *testing.T, cfg *rest.Config) *dynamic.DynamicClient {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// newResourceObject returns an object of gvr (a Widget or a ConfigMap) to create in namespace.
func newResourceObject(gvr schema.GroupVersionResource, namespace, name string, n int) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetNamespace(namespace)
	u.SetName(name)
	switch gvr {
	case widgets:
		u.SetAPIVersion("stable.example.com/v1")
		u.SetKind("Widget")
		u.Object["spec"] = map[string]any{"size": int64(n), "color": "blue"}
	default:
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.Object["data"] = map[string]any{"n": fmt.Sprint(n)}
	}
	return u
}

// touchResource changes obj so that the server gives it a new resourceVersion.
func touchResource(obj *unstructured.Unstructured, n int) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["touched"] = fmt.Sprint(n)
	obj.SetLabels(labels)
}

// resourceSnapshot lists every object of gvrs cluster-wide, as items named by resource (the way the
// collector names OTResource entries).
func resourceSnapshot(dyn dynamic.Interface, gvrs ...schema.GroupVersionResource) func(context.Context) (map[types.UID]testenv.Item, error) {
	return func(ctx context.Context) (map[types.UID]testenv.Item, error) {
		out := map[types.UID]testenv.Item{}
		for _, gvr := range gvrs {
			list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			for _, item := range list.Items {
				out[item.GetUID()] = testenv.Item{Kind: gvr.GroupResource().String(), Namespace: item.GetNamespace(), Name: item.GetName(), ResourceVersion: item.GetResourceVersion()}
			}
		}
		return out, nil
	}
}

// churnResources starts a churner of objects of gvrs in ns, through dyn, a write every pause.
func churnResources(t *testing.T, dyn dynamic.Interface, ns string, seed uint64, pause time.Duration, gvrs ...schema.GroupVersionResource) *churner {
	t.Helper()
	type object struct {
		gvr schema.GroupVersionResource
		obj *unstructured.Unstructured
	}
	return startChurn(t, seed, pause, churnOps[object]{
		create: func(ctx context.Context, rng *rand.Rand, i int) (object, error) {
			gvr := gvrs[rng.IntN(len(gvrs))]
			obj, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, newResourceObject(gvr, ns, fmt.Sprintf("churn-%d-%d", seed, i), i), metav1.CreateOptions{})
			return object{gvr, obj}, err
		},
		touch: func(ctx context.Context, o object, i int) (object, error) {
			touchResource(o.obj, i)
			obj, err := dyn.Resource(o.gvr).Namespace(ns).Update(ctx, o.obj, metav1.UpdateOptions{})
			return object{o.gvr, obj}, err
		},
		remove: func(ctx context.Context, o object) error {
			return dyn.Resource(o.gvr).Namespace(ns).Delete(ctx, o.obj.GetName(), metav1.DeleteOptions{})
		},
	})
}

// createResources creates n objects of gvr in ns and returns them.
func createResources(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, prefix string, n int) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for i := range n {
		obj, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), newResourceObject(gvr, ns, fmt.Sprint(prefix, i), i), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, obj)
	}
	return out
}

// kindID returns the filter's key of gvr in r (a resource of WithResources, once Run returned).
func kindID(t *testing.T, r *Reader, gvr schema.GroupVersionResource) kinds.ID {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kinds {
		if k.Resource == gvr {
			return k.ID
		}
	}
	t.Fatalf("reader reads no %s", gvr)
	return 0
}

// mediaTypes records the Content-Type of the answers to requests of each resource.
type mediaTypes struct {
	mu   sync.Mutex
	seen map[string]map[string]bool // resource → media types
}

func (m *mediaTypes) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil {
			parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
			media, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
			m.mu.Lock()
			if m.seen[parts[len(parts)-1]] == nil {
				m.seen[parts[len(parts)-1]] = map[string]bool{}
			}
			m.seen[parts[len(parts)-1]][media] = true
			m.mu.Unlock()
		}
		return resp, err
	})
}

// of returns the media types seen for resource.
func (m *mediaTypes) of(resource string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for media := range m.seen[resource] {
		out = append(out, media)
	}
	return out
}

// TestResourcesKeepEveryPromise: a custom resource (Widgets) and a built-in one no bit reads
// (ConfigMaps), read with WithResources alone: the initial state, churn, a relist during churn, and
// convergence to a LIST through the dynamic client, with every promise checked on every entry.
// Widgets come as JSON, ConfigMaps as protobuf.
func TestResourcesKeepEveryPromise(t *testing.T) {
	installCRDs(t)
	dyn := dynamicFor(t, plane(t).Config)
	ns := newNamespace(t, plane(t).Clientset, "resources")
	createResources(t, dyn, widgets, ns, "before-", 20)
	createResources(t, dyn, configMaps, ns, "before-", 10)

	media := &mediaTypes{seen: map[string]map[string]bool{}}
	cfg := rest.CopyConfig(plane(t).Config)
	cfg.Wrap(media.wrap)
	rr := startReader(t, cfg, 0, WithResources(widgets, configMaps))
	snapshot := resourceSnapshot(dyn, widgets, configMaps)
	rr.c.awaitView(t, "the server", 20*time.Second, snapshot)

	ch := churnResources(t, dyn, ns, 1, 5*time.Millisecond, widgets, configMaps)
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rr.r.Relist(ctx); err != nil {
		t.Fatalf("Relist: %v", err)
	}
	time.Sleep(time.Second)
	writes := ch.stop()
	rr.c.awaitView(t, "the server", 30*time.Second, snapshot)

	rr.c.mu.Lock()
	byKind := rr.c.byKind[reader.OTResource]
	rr.c.mu.Unlock()
	t.Logf("%d writes; %d entries checked: %v", writes, rr.c.total(), byKind)
	if byKind[reader.CTUpdate] == 0 || byKind[reader.CTDelete] == 0 {
		t.Errorf("churn delivered no update or no delete: %v", byKind)
	}
	if got := media.of("widgets"); len(got) != 1 || got[0] != "application/json" {
		t.Errorf("widgets came as %v, want only application/json", got)
	}
	if got := media.of("configmaps"); len(got) != 1 || got[0] != "application/vnd.kubernetes.protobuf" {
		t.Errorf("configmaps came as %v, want only protobuf", got)
	}
}

// TestResourcesGapFindsDeletes: while the reader's connections are blocked, Widgets are deleted and
// created and the apiserver restarts, so the watch cache no longer serves the resume point (410).
// The reader gets a fresh state and delivers the deletes of the gap. (Compacting etcd cannot make a
// custom resource's resume expire: the CRD's storage always has a watch cache, which compaction
// does not trim; --watch-cache-sizes does not apply to it.)
func TestResourcesGapFindsDeletes(t *testing.T) {
	installCRDs(t)
	dyn := dynamicFor(t, plane(t).Config)
	ns := newNamespace(t, plane(t).Clientset, "resource-gap")
	objs := createResources(t, dyn, widgets, ns, "w-", 10)
	p := newProxy(t)
	rr := startReader(t, p.Config(plane(t).Config), 0, WithResources(widgets))
	snapshot := resourceSnapshot(dyn, widgets)
	rr.c.awaitView(t, "the server", 20*time.Second, snapshot)

	p.Block()
	ctx := context.Background()
	deleted := objs[:4]
	for _, obj := range deleted {
		if err := dyn.Resource(widgets).Namespace(ns).Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createResources(t, dyn, widgets, ns, "late-", 3)
	if err := plane(t).RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	p.Unblock()

	rr.c.awaitView(t, "the server", 60*time.Second, snapshot)
	for _, obj := range deleted {
		if !rr.c.isDeleted(obj.GetUID()) {
			t.Errorf("widget %s deleted during the gap was not delivered as a delete", obj.GetName())
		}
	}
	id := kindID(t, rr.r, widgets)
	expired, synthesized := rr.r.stats.restartsOfID(id, stream.ReasonExpired), rr.r.stats.synthesizedOfID(id)
	t.Logf("%d widgets deleted in the gap; 410 restarts %d, synthesized deletes %d, %d entries checked", len(deleted), expired, synthesized, rr.c.total())
	if expired == 0 {
		t.Error("the widgets' resume did not get 410: the expired path did not run")
	}
	if synthesized < len(deleted) {
		t.Errorf("%d deletes found by the diff, want at least %d", synthesized, len(deleted))
	}
}

// TestCRDDeletedWhileWatched: a CRD is deleted while the reader reads it and pods. Every object of
// it arrives as a delete, "not served" is logged once, and pods keep flowing. Created again, the
// resource is read again.
func TestCRDDeletedWhileWatched(t *testing.T) {
	crd := gadgetCRD()
	install := func() {
		t.Helper()
		if _, err := envtest.InstallCRDs(plane(t).Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd.DeepCopy()}}); err != nil {
			t.Fatal(err)
		}
	}
	install()
	gadgets := schema.GroupVersionResource{Group: "test.example.com", Version: "v1", Resource: "gadgets"}
	dyn := dynamicFor(t, plane(t).Config)
	ns := newNamespace(t, plane(t).Clientset, "crd-deleted")
	objs := make([]*unstructured.Unstructured, 0, 5)
	for i := range 5 {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "test.example.com/v1", "kind": "Gadget"}}
		u.SetNamespace(ns)
		u.SetName(fmt.Sprint("g-", i))
		obj, err := dyn.Resource(gadgets).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}

	logs := &syncBuffer{}
	log := funcr.New(logs.line, funcr.Options{Verbosity: 0})
	rr := startReader(t, plane(t).Config, RTPod, WithResources(gadgets), WithLogger(log))
	server := func(ctx context.Context) (map[types.UID]testenv.Item, error) { // pods and gadgets
		items, err := resourceSnapshot(dyn, gadgets)(ctx)
		if err != nil {
			return nil, err
		}
		pods, err := testenv.Snapshot(ctx, plane(t).Clientset, testenv.KindPod)
		maps.Copy(items, pods)
		return items, err
	}
	rr.c.awaitView(t, "the server", 20*time.Second, server)

	if err := envtest.UninstallCRDs(plane(t).Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd.DeepCopy()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the gadgets' deletes", func() bool {
		for _, obj := range objs {
			if !rr.c.isDeleted(obj.GetUID()) {
				return false
			}
		}
		return true
	})
	// The reader goes on with the rest.
	pod := mustCreate(t, plane(t).Clientset, reader.OTPod, ns, "after")
	waitFor(t, 10*time.Second, "a pod created after", func() bool { return rr.c.hasVersion(pod.GetUID(), pod.GetResourceVersion()) })
	time.Sleep(3 * time.Second) // a few retries of the gone resource
	if n := strings.Count(logs.String(), "not served any more"); n != 1 {
		t.Errorf("\"not served any more\" logged %d times, want once:\n%s", n, logs)
	}
	id := kindID(t, rr.r, gadgets)
	t.Logf("%d gadgets deleted with their CRD (%d of the deletes synthesized); retries while not served: %d; log:\n%s",
		len(objs), rr.r.stats.synthesizedOfID(id), rr.r.stats.restartsOfID(id, stream.ReasonError), logs)

	install()
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "test.example.com/v1", "kind": "Gadget"}}
	u.SetNamespace(ns)
	u.SetName("again")
	var again *unstructured.Unstructured
	waitFor(t, 20*time.Second, "a gadget created once the CRD is back", func() bool {
		var err error
		again, err = dyn.Resource(gadgets).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err)
	})
	waitFor(t, 40*time.Second, "the new gadget", func() bool { return again != nil && rr.c.hasVersion(again.GetUID(), again.GetResourceVersion()) })
	rr.c.awaitView(t, "the server", 20*time.Second, server)
}

// gadgetCRD is a CRD of the test's own, deleted while watched.
func gadgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.test.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "test.example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

// TestResourcesRunErrors: a resource the server does not serve, or one the user may not read, makes
// Run fail naming it.
func TestResourcesRunErrors(t *testing.T) {
	installCRDs(t)
	for _, tc := range []struct {
		name string
		gvr  schema.GroupVersionResource
		want string
	}{
		{"unknown group", schema.GroupVersionResource{Group: "nowhere.example.com", Version: "v1", Resource: "things"}, "things.nowhere.example.com (nowhere.example.com/v1)"},
		{"unknown resource", schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "gizmos"}, "gizmos.stable.example.com"},
		{"unknown version", schema.GroupVersionResource{Group: "stable.example.com", Version: "v9", Resource: "widgets"}, "widgets.stable.example.com (stable.example.com/v9)"},
		{"not watchable", schema.GroupVersionResource{Version: "v1", Resource: "bindings"}, "does not list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, _ := runErr(t, plane(t).Config, 0, WithResources(tc.gvr))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error naming %q", err, tc.want)
			}
		})
	}
	t.Run("forbidden", func(t *testing.T) {
		user, err := plane(t).Env.AddUser(envtest.User{Name: "no-widgets"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err, _ = runErr(t, user.Config(), 0, WithResources(widgets))
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "widgets.stable.example.com") {
			t.Fatalf("Run = %v, want Forbidden naming widgets.stable.example.com", err)
		}
	})
}
