package testenv_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/watchlist-go/watchlist/internal/testenv"
)

// plane is the control plane shared by the tests of this package, set by TestMain.
var plane *testenv.Plane

func TestMain(m *testing.M) {
	opts := testenv.Options{
		APIServerFlags: map[string]string{"watch-cache-sizes": "pods#0"},
		Restartable:    true,
	}
	os.Exit(testenv.RunMain(m, opts, func(p *testenv.Plane) { plane = p }))
}

const waitFor = 10 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// nonName matches what a namespace name may not contain.
var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// uniqueName returns prefix (made a valid DNS label) with a random suffix, so that -count=N
// runs do not collide with objects left from earlier runs.
func uniqueName(prefix string) string {
	prefix = strings.Trim(nonName.ReplaceAllString(strings.ToLower(prefix), "-"), "-")
	return prefix[:min(len(prefix), 50)] + "-" + strings.ToLower(rand.Text()[:6])
}

// newNamespace creates a namespace for the test. It is not deleted: without the namespace
// controller it would stay Terminating anyway.
func newNamespace(ctx context.Context, t *testing.T) string {
	t.Helper()
	name := uniqueName(t.Name())
	obj, err := testenv.NewObject(testenv.KindNamespace, "", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.Create(ctx, plane.Clientset, obj); err != nil {
		t.Fatal(err)
	}
	return name
}

func newProxy(t *testing.T) (*testenv.Proxy, *kubernetes.Clientset) {
	t.Helper()
	proxy, err := testenv.NewProxy(plane.APIServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proxy.Close(); err != nil {
			t.Error(err)
		}
	})
	cs, err := kubernetes.NewForConfig(proxy.Config(plane.Config))
	if err != nil {
		t.Fatal(err)
	}
	return proxy, cs
}

// waitClosed drains w until its ResultChan closes and returns the events seen.
func waitClosed(t *testing.T, w watch.Interface) []watch.Event {
	t.Helper()
	var events []watch.Event
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return events
			}
			events = append(events, ev)
		case <-timeout:
			t.Fatalf("watch still open after %v (events: %d)", waitFor, len(events))
		}
	}
}

func createPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) client.Object {
	t.Helper()
	obj, err := testenv.NewObject(testenv.KindPod, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	created, err := testenv.Create(ctx, cs, obj)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func TestStartReportsMissingAssets(t *testing.T) {
	for name, dir := range map[string]string{"unset": "", "empty dir": t.TempDir()} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(testenv.AssetsEnv, dir)
			p, err := testenv.Start(testenv.Options{})
			var assetsErr *testenv.AssetsError
			if p != nil || !errors.As(err, &assetsErr) {
				t.Fatalf("Start = %v, %v; want an *AssetsError", p, err)
			}
			for _, want := range []string{"KUBEBUILDER_ASSETS", "make envtest-assets"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if code := testenv.RunMain(nil, testenv.Options{}, nil); code != 1 {
				t.Errorf("RunMain without assets = %d, want 1", code)
			}
		})
	}
}

// startEcho runs a TCP echo server until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echoThrough dials addr and checks one round trip; it returns the open connection.
func echoThrough(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo through proxy = %q, %v", buf, err)
	}
	return c
}

// expectClosed checks that the peer has closed c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a cut connection = %d, %v; want EOF or reset", n, err)
	}
}

func TestProxyTCP(t *testing.T) {
	proxy, err := testenv.NewProxy(startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	a, b := echoThrough(t, proxy.Addr()), echoThrough(t, proxy.Addr())
	if n := proxy.Cut(); n != 2 {
		t.Errorf("Cut = %d, want 2", n)
	}
	expectClosed(t, a)
	expectClosed(t, b)
	echoThrough(t, proxy.Addr())

	proxy.Block()
	c, err := net.Dial("tcp", proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	_ = c.Close()
	proxy.Unblock()
	echoThrough(t, proxy.Addr())
	if err := proxy.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", proxy.Addr()); err == nil {
		t.Error("proxy still accepts after Close")
	}
}

func TestProxyCutEndsWatch(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(ctx, t)
	proxy, pcs := newProxy(t)
	w, err := pcs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if n := proxy.Cut(); n < 1 {
		t.Fatalf("Cut = %d, want at least the watch's connection", n)
	}
	start := time.Now()
	for _, ev := range waitClosed(t, w) {
		if ev.Type == watch.Error {
			t.Errorf("unexpected error event %v", ev.Object)
		}
	}
	t.Logf("watch closed %v after Cut", time.Since(start))
	if _, err := pcs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list through the proxy after Cut: %v", err)
	}
}

func TestProxyBlockUnblock(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(ctx, t)
	proxy, pcs := newProxy(t)
	createPod(ctx, t, pcs, ns, "before-block")

	proxy.Block()
	obj, err := testenv.NewObject(testenv.KindPod, ns, "while-blocked")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.Create(ctx, pcs, obj); err == nil {
		t.Fatal("create through a blocked proxy succeeded")
	} else {
		t.Logf("blocked: %v", err)
	}

	proxy.Unblock()
	createPod(ctx, t, pcs, ns, "after-unblock")
}

func TestRestartAPIServer(t *testing.T) {
	ctx := testContext(t)
	cs := plane.Clientset
	ns := newNamespace(ctx, t)
	pod := createPod(ctx, t, cs, ns, "survivor")
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	createPod(ctx, t, cs, ns, "after-rv") // a write after the RV makes the 410 below certain

	start := time.Now()
	if err := plane.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver restarted in %v", time.Since(start))
	waitClosed(t, w)

	got, err := testenv.Get(ctx, cs, testenv.KindPod, ns, pod.GetName())
	if err != nil {
		t.Fatalf("old clientset after restart: %v", err)
	}
	if got.GetUID() != pod.GetUID() {
		t.Errorf("pod UID %s after restart, want %s", got.GetUID(), pod.GetUID())
	}
	// The namespaces watch cache is new, so the old RV is now too old.
	old, err := cs.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Stop()
	expectExpired(t, old)
}

// expectExpired checks that w starts with a 410 ERROR event and then closes.
func expectExpired(t *testing.T, w watch.Interface) {
	t.Helper()
	events := waitClosed(t, w)
	if len(events) == 0 || events[0].Type != watch.Error {
		t.Fatalf("events %v, want an ERROR first", events)
	}
	err := apierrors.FromObject(events[0].Object)
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("first event %v, want 410", err)
	}
	t.Logf("410: %v", err)
}

func TestCompactEtcd(t *testing.T) {
	ctx := testContext(t)
	cs := plane.Clientset
	ns := newNamespace(ctx, t)
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// At least two writes between the RV and the compaction (faults.md item 1d).
	if err := testenv.Delete(ctx, cs, createPod(ctx, t, cs, ns, "churn")); err != nil {
		t.Fatal(err)
	}
	rev, err := plane.CompactEtcd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev <= 0 {
		t.Fatalf("CompactEtcd = %d, want > 0", rev)
	}
	if again, err := plane.CompactEtcd(ctx); err != nil || again < rev {
		t.Fatalf("second CompactEtcd = %d, %v; want >= %d", again, err, rev)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectExpired(t, w)
}

// snapshotOf returns the snapshot entry for obj of kind.
func snapshotOf(ctx context.Context, t *testing.T, kind string, obj client.Object) (testenv.Item, bool) {
	t.Helper()
	snap, err := testenv.Snapshot(ctx, plane.Clientset, kind)
	if err != nil {
		t.Fatal(err)
	}
	item, ok := snap[obj.GetUID()]
	return item, ok
}

func expectSnapshotRV(ctx context.Context, t *testing.T, kind string, obj client.Object) {
	t.Helper()
	want := testenv.Item{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), ResourceVersion: obj.GetResourceVersion()}
	if got, ok := snapshotOf(ctx, t, kind, obj); !ok || got != want {
		t.Errorf("snapshot has %v (%v), want %v", got, ok, want)
	}
}

func TestKindsLifecycle(t *testing.T) {
	ctx := testContext(t)
	cs := plane.Clientset
	ns := newNamespace(ctx, t)

	created := map[string]client.Object{}
	for _, kind := range testenv.Kinds() {
		obj, err := testenv.NewObject(kind, ns, uniqueName("fixture-"+kind))
		if err != nil {
			t.Fatal(err)
		}
		if created[kind], err = testenv.Create(ctx, cs, obj); err != nil {
			t.Fatal(err)
		}
	}
	// Why Delete removes this finalizer: no pv-protection controller runs.
	if fin := created[testenv.KindPersistentVolume].GetFinalizers(); !slices.Contains(fin, "kubernetes.io/pv-protection") {
		t.Errorf("PV finalizers %v lack kubernetes.io/pv-protection", fin)
	}
	all, err := testenv.Snapshot(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	view := map[types.UID]testenv.Item{}
	for kind, obj := range created {
		if _, ok := all[obj.GetUID()]; !ok {
			t.Errorf("full snapshot lacks %s %s", kind, obj.GetName())
		}
		view[obj.GetUID()] = all[obj.GetUID()]
	}
	if len(testenv.ByKind(all)) < len(created) {
		t.Errorf("snapshot spans %d kinds, want %d", len(testenv.ByKind(all)), len(created))
	}
	if diff := testenv.Diff(all, view); len(diff) == 0 {
		t.Error("Diff sees no difference between the full snapshot and the fixtures alone")
	}

	for _, kind := range testenv.Kinds() {
		t.Run(kind, func(t *testing.T) {
			obj := created[kind]
			expectSnapshotRV(ctx, t, kind, obj)
			touched, err := testenv.Touch(ctx, cs, obj)
			if err != nil {
				t.Fatal(err)
			}
			if touched.GetResourceVersion() == obj.GetResourceVersion() || touched.GetLabels()[testenv.TouchLabel] != "1" {
				t.Errorf("Touch left rv %s, label %q", touched.GetResourceVersion(), touched.GetLabels()[testenv.TouchLabel])
			}
			touched.GetLabels()["updated"] = "yes"
			updated, err := testenv.Update(ctx, cs, touched)
			if err != nil {
				t.Fatal(err)
			}
			expectSnapshotRV(ctx, t, kind, updated)

			if err := testenv.Delete(ctx, cs, updated); err != nil {
				t.Fatal(err)
			}
			_, present := snapshotOf(ctx, t, kind, updated)
			if kind != testenv.KindNamespace {
				if present {
					t.Errorf("%s still listed after Delete", kind)
				}
				return
			}
			// No namespace controller: the namespace stays Terminating.
			got, err := testenv.Get(ctx, cs, kind, "", updated.GetName())
			if err != nil {
				t.Fatal(err)
			}
			if phase := got.(*corev1.Namespace).Status.Phase; !present || phase != corev1.NamespaceTerminating {
				t.Errorf("deleted namespace: listed %v, phase %s; want listed, Terminating", present, phase)
			}
		})
	}
}
