package watchlist

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// fastTiming keeps backoff short so that fault tests recover in seconds.
func fastTiming() stream.Timing {
	t := stream.DefaultTiming()
	t.Backoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 1 << 30, Cap: 2 * time.Second}
	t.BackoffReset = 10 * time.Second
	return t
}

// withTiming replaces the streams' timing: tests only.
func withTiming(t stream.Timing) Option {
	return func(r *Reader) error { r.timing = t; return nil }
}

// withRelistPeriod relists every d, below WithRelist's public bounds: tests only.
func withRelistPeriod(d time.Duration) Option {
	return func(r *Reader) error { r.relistEvery = d; return nil }
}

// getters checks that the typed getter of an entry's ObjectType works.
var getters = map[reader.ObjectType]func(reader.Entry) error{
	reader.OTNode:               func(e reader.Entry) error { _, err := e.Node(); return err },
	reader.OTPod:                func(e reader.Entry) error { _, err := e.Pod(); return err },
	reader.OTNamespace:          func(e reader.Entry) error { _, err := e.Namespace(); return err },
	reader.OTPersistentVolume:   func(e reader.Entry) error { _, err := e.PersistentVolume(); return err },
	reader.OTClusterRole:        func(e reader.Entry) error { _, err := e.ClusterRole(); return err },
	reader.OTClusterRoleBinding: func(e reader.Entry) error { _, err := e.ClusterRoleBinding(); return err },
	reader.OTRole:               func(e reader.Entry) error { _, err := e.Role(); return err },
	reader.OTRoleBinding:        func(e reader.Entry) error { _, err := e.RoleBinding(); return err },
	reader.OTService:            func(e reader.Entry) error { _, err := e.Service(); return err },
	reader.OTDeployment:         func(e reader.Entry) error { _, err := e.Deployment(); return err },
	reader.OTIngressController:  func(e reader.Entry) error { _, err := e.IngressController(); return err },
	reader.OTEndpoint:           func(e reader.Entry) error { _, err := e.Endpoint(); return err },
	reader.OTEndpointSlice:      func(e reader.Entry) error { _, err := e.EndpointSlice(); return err },
	reader.OTResource:           checkResourceEntry,
}

// checkResourceEntry checks an entry of WithResources: it names its resource and holds an
// *unstructured.Unstructured with its apiVersion and kind, and a typed getter refuses it.
func checkResourceEntry(e reader.Entry) error {
	u, ok := e.Object().(*unstructured.Unstructured)
	switch {
	case !ok:
		return fmt.Errorf("holds %T, want *unstructured.Unstructured", e.Object())
	case e.Resource().Resource == "" || e.Resource().Version == "":
		return fmt.Errorf("names no resource: %v", e.Resource())
	case u.GetAPIVersion() != e.Resource().GroupVersion().String() || u.GetKind() == "":
		return fmt.Errorf("apiVersion %q kind %q, want the resource's %s", u.GetAPIVersion(), u.GetKind(), e.Resource().GroupVersion())
	}
	if _, err := e.Pod(); err == nil {
		return errors.New("Pod() accepted it")
	}
	return nil
}

// testenvKind names each ObjectType as package testenv does.
var testenvKind = map[reader.ObjectType]string{
	reader.OTNode: "Node", reader.OTPod: "Pod", reader.OTNamespace: "Namespace",
	reader.OTPersistentVolume: "PersistentVolume", reader.OTClusterRole: "ClusterRole",
	reader.OTClusterRoleBinding: "ClusterRoleBinding", reader.OTRole: "Role",
	reader.OTRoleBinding: "RoleBinding", reader.OTService: "Service",
	reader.OTDeployment: "Deployment", reader.OTIngressController: "Ingress",
	reader.OTEndpoint: "Endpoints", reader.OTEndpointSlice: "EndpointSlice",
}

// viewItem is what the collector knows of one live object.
type viewItem struct {
	kind      reader.ObjectType
	resource  string // OTResource's, as "widgets.stable.example.com"
	name      string
	rv        string
	namespace string
}

// collector consumes a reader's output until it closes, checks every promise of the output stream
// on each entry, and keeps the view (UID → last version) that tests compare with the server.
type collector struct {
	mu         sync.Mutex
	view       map[types.UID]viewItem
	last       map[types.UID]string // last version delivered, also for deleted objects
	deleted    map[types.UID]bool
	seen       map[string]bool // "uid@rv" delivered
	counts     map[reader.ChangeType]int
	byKind     map[reader.ObjectType]map[reader.ChangeType]int
	violations []string
	log        []reader.Entry // kept only while keepLog
	keepLog    bool
	opts       collectorOptions
	done       chan struct{}
}

// collectorOptions adapt the collector's checks to a reader's scope.
type collectorOptions struct {
	// keepLog keeps every entry in log.
	keepLog bool
	// metadataOnly names the kinds read with WithMetadataOnly: their entries must hold a
	// *metav1.PartialObjectMetadata, and their typed getters must fail.
	metadataOnly map[reader.ObjectType]bool
	// reAdds allows an object delivered as deleted to come back as CTAdd at a newer version: under
	// a selector, an object that stops matching is deleted and one that matches again is added.
	reAdds bool
}

// collect starts consuming out. The goroutine ends when out closes; done says so.
func collect(out <-chan reader.Entry, keepLog bool) *collector {
	return collectWith(out, collectorOptions{keepLog: keepLog})
}

// collectWith is collect with the checks adapted by opts.
func collectWith(out <-chan reader.Entry, opts collectorOptions) *collector {
	c := &collector{
		view: map[types.UID]viewItem{}, last: map[types.UID]string{}, deleted: map[types.UID]bool{},
		seen: map[string]bool{}, counts: map[reader.ChangeType]int{},
		byKind: map[reader.ObjectType]map[reader.ChangeType]int{}, keepLog: opts.keepLog, opts: opts,
		done: make(chan struct{}),
	}
	go func() {
		defer close(c.done)
		for e := range out {
			c.check(e)
		}
	}()
	return c
}

func (c *collector) violate(format string, args ...any) {
	if len(c.violations) < 50 {
		c.violations = append(c.violations, fmt.Sprintf(format, args...))
	}
}

// check applies the promises of design.md to one entry.
func (c *collector) check(e reader.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[e.ChangeType()]++
	if c.byKind[e.ObjectType()] == nil {
		c.byKind[e.ObjectType()] = map[reader.ChangeType]int{}
	}
	c.byKind[e.ObjectType()][e.ChangeType()]++
	if c.keepLog {
		c.log = append(c.log, e)
	}
	get, ok := getters[e.ObjectType()]
	if !ok {
		c.violate("entry of unknown object type %s", e.ObjectType())
		return
	}
	if c.opts.metadataOnly[e.ObjectType()] {
		if _, ok := e.Object().(*metav1.PartialObjectMetadata); !ok {
			c.violate("%s: metadata-only kind holds %T, want *metav1.PartialObjectMetadata", e, e.Object())
			return
		}
		if err := get(e); err == nil {
			c.violate("typed getter of metadata-only %s returned no error", e)
		}
	} else if err := get(e); err != nil {
		c.violate("typed getter of %s: %v", e, err)
		return
	}
	m, err := meta.Accessor(e.Object())
	if err != nil {
		c.violate("%s: %v", e, err)
		return
	}
	uid, rv := m.GetUID(), m.GetResourceVersion()
	if uid == "" || rv == "" || m.GetName() == "" {
		c.violate("%s: missing uid, name or resourceVersion", e)
		return
	}
	k, _ := kinds.ByObject(e.ObjectType())
	if k.Namespaced && m.GetNamespace() == "" {
		c.violate("%s: namespaced kind without namespace", e)
	}
	last, known := c.last[uid]
	newer := !known
	if known {
		cmp, err := resourceversion.CompareResourceVersion(rv, last)
		newer = err == nil && cmp > 0
		if err == nil && cmp < 0 {
			c.violate("%s: version %s after newer %s", e, rv, last)
		}
	}
	synthesized := e.ChangeType() == reader.CTDelete && known && rv == last
	key := string(uid) + "@" + rv
	if c.seen[key] && !synthesized {
		c.violate("%s: (UID, resourceVersion) delivered twice", e)
	}
	c.seen[key] = true
	_, live := c.view[uid]
	switch e.ChangeType() {
	case reader.CTAdd:
		if live || c.deleted[uid] && !(c.opts.reAdds && newer) {
			c.violate("%s: add of an object already live or deleted", e)
		}
		if c.opts.reAdds {
			delete(c.deleted, uid) // back in the selector's scope
		}
	case reader.CTUpdate:
		if !live || !newer {
			c.violate("%s: update of an unknown object or to a version not newer", e)
		}
	case reader.CTDelete:
		if !live || !(newer || synthesized) {
			c.violate("%s: delete of an unknown object or of an older version", e)
		}
	default:
		c.violate("%s: change type %d", e, e.ChangeType())
	}
	c.last[uid] = rv
	if e.ChangeType() == reader.CTDelete {
		delete(c.view, uid)
		c.deleted[uid] = true
		return
	}
	c.view[uid] = viewItem{kind: e.ObjectType(), resource: e.Resource().GroupResource().String(), name: m.GetName(), namespace: m.GetNamespace(), rv: rv}
}

// total counts the entries seen so far.
func (c *collector) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sumValues(c.counts)
}

func (c *collector) count(ct reader.ChangeType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[ct]
}

// liveCount returns how many live objects of kind the view holds.
func (c *collector) liveCount(kind reader.ObjectType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.view {
		if v.kind == kind {
			n++
		}
	}
	return n
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertConverged waits until the view equals a LIST of every kind the reader watches, and fails with the
// differences when it does not within timeout.
func (c *collector) assertConverged(t *testing.T, cs *kubernetes.Clientset, typ RetrieveType, timeout time.Duration) {
	t.Helper()
	var names []string
	for _, k := range kinds.For(typ) {
		names = append(names, testenvKind[k.Object])
	}
	c.awaitView(t, "the server", timeout, func(ctx context.Context) (map[types.UID]testenv.Item, error) {
		return testenv.Snapshot(ctx, cs, names...)
	})
}

// awaitView waits until the view equals what list returns (the server's truth, named what), and
// fails with the differences when it does not within timeout.
func (c *collector) awaitView(t *testing.T, what string, timeout time.Duration, list func(context.Context) (map[types.UID]testenv.Item, error)) {
	t.Helper()
	var diff []string
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		snap, err := list(ctx)
		cancel()
		if err == nil {
			diff = c.diff(snap)
			if len(diff) == 0 {
				return
			}
		} else {
			diff = []string{err.Error()}
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader's view differs from %s after %s (%d differences): %v", what, timeout, len(diff), diff[:min(len(diff), 10)])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diff lists how the view differs from snap, a Snapshot of the server.
func (c *collector) diff(snap map[types.UID]testenv.Item) []string {
	c.mu.Lock()
	view := make(map[types.UID]testenv.Item, len(c.view))
	for uid, v := range c.view {
		kind := testenvKind[v.kind]
		if v.kind == reader.OTResource {
			kind = v.resource
		}
		view[uid] = testenv.Item{Kind: kind, Namespace: v.namespace, Name: v.name, ResourceVersion: v.rv}
	}
	c.mu.Unlock()
	return testenv.Diff(snap, view)
}

// closeReader closes r, whose output c consumes, and fails the test unless Close returned and out
// closed within timeout and every promise held.
func (c *collector) closeReader(t *testing.T, r *Reader, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		t.Errorf("out not closed after Close")
	}
	c.assertPromises(t)
}

// assertPromises fails the test with the violations seen.
func (c *collector) assertPromises(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		t.Errorf("%d violations of the output promises, first: %v", len(c.violations), c.violations[:min(10, len(c.violations))])
	}
}

// run is a started reader and its collector.
type run struct {
	r   *Reader
	c   *collector
	cs  *kubernetes.Clientset
	typ RetrieveType
}

// startReader makes, starts and syncs a reader through cfg, and on cleanup closes it and checks
// that out closed and that every promise held.
func startReader(t *testing.T, cfg *rest.Config, typ RetrieveType, opts ...Option) *run {
	t.Helper()
	return startReaderWith(t, cfg, typ, collectorOptions{}, opts...)
}

// startReaderWith is startReader with a collector whose checks copts adapt.
func startReaderWith(t *testing.T, cfg *rest.Config, typ RetrieveType, copts collectorOptions, opts ...Option) *run {
	t.Helper()
	out := make(chan Entry)
	c := collectWith(out, copts)
	r := newReaderFor(t, cfg, typ, out, opts...)
	t.Cleanup(func() { c.closeReader(t, r, 30*time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := r.WaitForSync(ctx); err != nil {
		t.Fatalf("WaitForSync: %v", err)
	}
	// WaitForSync returns once the last initial entry was sent: the collector may still be taking it.
	waitFor(t, 10*time.Second, "the collector to take every entry sent", func() bool { return c.total() >= r.stats.deliveredCount() })
	return &run{r: r, c: c, cs: r.clientset, typ: typ}
}

// newReaderFor makes a reader through cfg (the test's logger and fastTiming; opts come after and
// may replace them) and gives it out, without running it. On cleanup it closes the reader.
func newReaderFor(t *testing.T, cfg *rest.Config, typ RetrieveType, out chan Entry, opts ...Option) *Reader {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithLogger(testr.NewWithOptions(t, testr.Options{Verbosity: 2})), withTiming(fastTiming())}, opts...)
	r, err := New(context.Background(), cs, typ, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetOut(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// kindsOf lists the ObjectTypes a RetrieveType enables.
func kindsOf(typ RetrieveType) []reader.ObjectType {
	var out []reader.ObjectType
	for _, k := range kinds.For(typ) {
		out = append(out, k.Object)
	}
	return slices.Clip(out)
}
