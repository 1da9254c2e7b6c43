package watchlist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// The tests of this file guard design.md's "Scope": WithNamespaces, WithLabelSelector,
// WithFieldSelector and WithMetadataOnly. Every promise of the output stream must hold within the
// scope, and the reader must converge to a LIST with the same scope: scopedSnapshot is that LIST.

// scope is a reader's scope: what New is given, and what the server's truth is listed with.
type scope struct {
	types      RetrieveType
	namespaces []string // nil: every namespace
	labels     []scopeSelector
	fields     []scopeSelector
	metadata   RetrieveType // WithMetadataOnly
}

// scopeSelector is one WithLabelSelector or WithFieldSelector.
type scopeSelector struct {
	types    RetrieveType
	selector string
}

// options are the reader options that give it this scope.
func (s scope) options() []Option {
	var opts []Option
	if s.namespaces != nil {
		opts = append(opts, WithNamespaces(s.namespaces...))
	}
	for _, l := range s.labels {
		opts = append(opts, WithLabelSelector(l.types, l.selector))
	}
	for _, f := range s.fields {
		opts = append(opts, WithFieldSelector(f.types, f.selector))
	}
	if s.metadata != 0 {
		opts = append(opts, WithMetadataOnly(s.metadata))
	}
	return opts
}

// selectors returns the label and field selectors of kind k.
func (s scope) selectors(k kinds.Kind) (label, field string) {
	for _, l := range s.labels {
		if l.types&k.Bit != 0 {
			label = l.selector
		}
	}
	for _, f := range s.fields {
		if f.types&k.Bit != 0 {
			field = f.selector
		}
	}
	return label, field
}

// namespacesOf returns the namespaces kind k is listed in ("" is every namespace).
func (s scope) namespacesOf(k kinds.Kind) []string {
	if !k.Namespaced || s.namespaces == nil {
		return []string{metav1.NamespaceAll}
	}
	return s.namespaces
}

// collectorOptions adapt the collector to the scope: metadata-only kinds hold
// PartialObjectMetadata, and under a selector an object may leave and come back. The log is kept.
func (s scope) collectorOptions() collectorOptions {
	co := collectorOptions{keepLog: true, reAdds: len(s.labels)+len(s.fields) > 0, metadataOnly: map[reader.ObjectType]bool{}}
	for _, k := range kinds.For(s.metadata) {
		co.metadataOnly[k.Object] = true
	}
	return co
}

// metadataClient is a client-go metadata client of cfg: the scoped LIST's own client, not the
// reader's code.
func metadataClient(t *testing.T, cfg *rest.Config) metadata.Interface {
	t.Helper()
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// scopedSnapshot is the server's truth for sc: every kind of sc listed through mc in sc's
// namespaces with sc's selectors, by UID.
func scopedSnapshot(ctx context.Context, mc metadata.Interface, sc scope) (map[types.UID]testenv.Item, error) {
	out := map[types.UID]testenv.Item{}
	for _, k := range kinds.For(sc.types) {
		label, field := sc.selectors(k)
		for _, ns := range sc.namespacesOf(k) {
			list, err := mc.Resource(k.Resource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: label, FieldSelector: field})
			if err != nil {
				return nil, fmt.Errorf("list %s in %q (labels %q, fields %q): %w", k, ns, label, field, err)
			}
			for _, item := range list.Items {
				out[item.UID] = testenv.Item{Kind: testenvKind[k.Object], Namespace: item.Namespace, Name: item.Name, ResourceVersion: item.ResourceVersion}
			}
		}
	}
	return out, nil
}

// assertConvergedTo waits until the view equals scopedSnapshot(sc), and fails with the
// differences when it does not within timeout.
func (c *collector) assertConvergedTo(t *testing.T, mc metadata.Interface, sc scope, timeout time.Duration) {
	t.Helper()
	c.awaitView(t, "the scoped LIST", timeout, func(ctx context.Context) (map[types.UID]testenv.Item, error) {
		return scopedSnapshot(ctx, mc, sc)
	})
}

// entriesOf returns the entries of uid in the collector's log (keepLog), in order.
func (c *collector) entriesOf(uid types.UID) []reader.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []reader.Entry
	for _, e := range c.log {
		if e.UID() == uid {
			out = append(out, e)
		}
	}
	return out
}

// changesOf returns the change types of uid's entries, e.g. "Add Update Delete".
func (c *collector) changesOf(uid types.UID) string {
	var cts []string
	for _, e := range c.entriesOf(uid) {
		cts = append(cts, e.ChangeType().String())
	}
	return strings.Join(cts, " ")
}

// isLive reports whether the view holds uid.
func (c *collector) isLive(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.view[uid]
	return ok
}

// seenRequest is one request a reader's client made, and what came back.
type seenRequest struct {
	method, path string
	query        url.Values
	accept       string
	status       int // 0: no response (the proxy cut it)
	contentType  string
	body         *bodyMarks // what the response body held, as far as it was read
}

// mediaType is the response's media type without parameters.
func (r seenRequest) mediaType() string {
	mt, _, err := mime.ParseMediaType(r.contentType)
	if err != nil {
		return "unparsable: " + r.contentType
	}
	return mt
}

// The server names the type it encoded in every object's envelope (protobuf's runtime.Unknown, or
// JSON's kind), not in the Content-Type: these markers tell PartialObjectMetadata from whole
// pods and services in a response body.
var (
	metadataMarker = []byte("PartialObjectMetadata")
	wholeMarkers   = [][]byte{
		// protobuf: TypeMeta.kind of a watch event's object, or of a list
		[]byte("\x12\x03Pod"), []byte("\x12\x07Service"), []byte("\x12\x07PodList"), []byte("\x12\x0bServiceList"),
		// JSON
		[]byte(`"kind":"Pod"`), []byte(`"kind":"Service"`), []byte(`"kind":"PodList"`), []byte(`"kind":"ServiceList"`),
	}
)

// bodyMarks counts the markers in a response body as it is read.
type bodyMarks struct {
	mu       sync.Mutex
	metadata int // objects (or lists) of PartialObjectMetadata
	whole    int // whole Pods or Services
	tail     []byte
}

// counts returns the markers seen so far.
func (b *bodyMarks) counts() (metadata, whole int) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.metadata, b.whole
}

// scan counts the markers that end in p, with the tail of what was read before.
func (b *bodyMarks) scan(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf := append(b.tail, p...)
	count := func(marker []byte) int {
		n := 0
		for i := 0; ; {
			j := bytes.Index(buf[i:], marker)
			if j < 0 {
				return n
			}
			if i+j+len(marker) > len(b.tail) {
				n++
			}
			i += j + 1
		}
	}
	b.metadata += count(metadataMarker)
	for _, m := range wholeMarkers {
		b.whole += count(m)
	}
	keep := min(len(buf), 32)
	b.tail = append(b.tail[:0:0], buf[len(buf)-keep:]...)
}

// sniffBody passes a response body through, counting its markers.
type sniffBody struct {
	io.ReadCloser
	marks *bodyMarks
}

func (s sniffBody) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if n > 0 {
		s.marks.scan(p[:n])
	}
	return n, err
}

func (r seenRequest) isWatch() bool { return r.query.Get("watch") == "true" }

func (r seenRequest) String() string {
	return fmt.Sprintf("%s %s?%s Accept=%q -> %d %q", r.method, r.path, r.query.Encode(), r.accept, r.status, r.contentType)
}

// requestRecorder records every request of a rest.Config it wrapped.
type requestRecorder struct {
	mu   sync.Mutex
	reqs []seenRequest
}

// wrap returns a copy of cfg whose requests rec records.
func (rec *requestRecorder) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			seen := seenRequest{method: req.Method, path: req.URL.Path, query: req.URL.Query(), accept: req.Header.Get("Accept")}
			if err == nil {
				seen.status, seen.contentType = resp.StatusCode, resp.Header.Get("Content-Type")
				seen.body = &bodyMarks{}
				resp.Body = sniffBody{ReadCloser: resp.Body, marks: seen.body}
			}
			rec.mu.Lock()
			rec.reqs = append(rec.reqs, seen)
			rec.mu.Unlock()
			return resp, err
		})
	})
	return cfg
}

// of returns the recorded requests for resource (the last element of the path).
func (rec *requestRecorder) of(resource string) []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []seenRequest
	for _, r := range rec.reqs {
		if path.Base(r.path) == resource {
			out = append(out, r)
		}
	}
	return out
}

// watchPaths returns the distinct paths of the recorded watch requests.
func (rec *requestRecorder) watchPaths() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	set := map[string]bool{}
	for _, r := range rec.reqs {
		if r.isWatch() {
			set[r.path] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// resourcePath is where the server serves kind k in namespace ns ("" for all or cluster-scoped).
func resourcePath(k kinds.Kind, ns string) string {
	p := path.Join("/apis", k.Resource.Group, k.Resource.Version)
	if k.Resource.Group == "" {
		p = path.Join("/api", k.Resource.Version)
	}
	if ns != "" {
		p = path.Join(p, "namespaces", ns)
	}
	return path.Join(p, k.Resource.Resource)
}

// newPod creates a pod named name in ns with labels (besides the fixture's) and, when nodeName is
// not empty, bound to that node (no scheduler, nor node, is needed).
func newPod(t *testing.T, cs *kubernetes.Clientset, ns, name, nodeName string, labels map[string]string) client.Object {
	t.Helper()
	obj, err := testenv.NewObject(testenv.KindPod, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	pod := obj.(*corev1.Pod)
	for k, v := range labels {
		pod.Labels[k] = v
	}
	pod.Spec.NodeName = nodeName
	created, err := testenv.Create(context.Background(), cs, pod)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// relabel sets the pod's label app to value and returns the server's copy.
func relabel(t *testing.T, cs *kubernetes.Clientset, ns, name, value string) *corev1.Pod {
	t.Helper()
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Labels["app"] = value
		out, err = cs.CoreV1().Pods(ns).Update(context.Background(), pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("relabel pod %s/%s app=%s: %v", ns, name, value, err)
	}
	return out
}

// mustDelete deletes obj at once.
func mustDelete(t *testing.T, cs *kubernetes.Clientset, obj client.Object) {
	t.Helper()
	if err := testenv.Delete(context.Background(), cs, obj); err != nil {
		t.Fatal(err)
	}
}

// compact compacts etcd: a pod stream resuming from before it gets 410 (pods are served without
// the watch cache on the shared plane).
func compact(t *testing.T) {
	t.Helper()
	if _, err := plane(t).CompactEtcd(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// relist relists rr's reader now.
func relist(t *testing.T, rr *run) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rr.r.Relist(ctx); err != nil {
		t.Fatalf("Relist: %v", err)
	}
}

// TestScopeNewRejectsBadInput guards "an empty or invalid namespace, a duplicate, a selector that
// does not parse, or a type bit not enabled in New: New fails" (with an error, never a panic, and
// no reader). Were a check missing, New would return a reader (whose streams would ask the server
// for a namespace "" — every namespace — or fail only at Run), or panic. Good scopes are accepted,
// and WithNamespaces plans one stream per namespace and namespaced kind. Needs no control plane.
func TestScopeNewRejectsBadInput(t *testing.T) {
	cs := offlineClientset(t)
	tests := []struct {
		name    string
		types   RetrieveType
		opts    []Option
		wantErr string
	}{
		{"no namespace", RTPod, []Option{WithNamespaces()}, "WithNamespaces: no namespace"},
		{"nil namespaces", RTPod, []Option{WithNamespaces(nil...)}, "WithNamespaces: no namespace"},
		{"empty namespace", RTPod, []Option{WithNamespaces("")}, `"" is not a namespace name`},
		{"empty among good", RTPod, []Option{WithNamespaces("a", "")}, `"" is not a namespace name`},
		{"invalid namespace", RTPod, []Option{WithNamespaces("Bad_NS")}, `"Bad_NS" is not a namespace name`},
		{"namespace with a slash", RTPod, []Option{WithNamespaces("a/b")}, `"a/b" is not a namespace name`},
		{"namespace too long", RTPod, []Option{WithNamespaces(strings.Repeat("a", 64))}, "is not a namespace name"},
		{"duplicate namespace", RTPod, []Option{WithNamespaces("a", "b", "a")}, `"a" given twice`},
		{"namespaces given twice", RTPod, []Option{WithNamespaces("a"), WithNamespaces("b")}, "WithNamespaces: given twice"},
		{"same namespaces given twice", RTPod, []Option{WithNamespaces("a"), WithNamespaces("a")}, "WithNamespaces: given twice"},

		{"empty label selector", RTPod, []Option{WithLabelSelector(RTPod, "")}, "WithLabelSelector: empty selector"},
		{"label selector does not parse", RTPod, []Option{WithLabelSelector(RTPod, "a=(b")}, `WithLabelSelector("a=(b")`},
		{"label selector with a stray word", RTPod, []Option{WithLabelSelector(RTPod, "a=b c")}, `WithLabelSelector("a=b c")`},
		{"label selector types 0", RTPod, []Option{WithLabelSelector(0, "a=b")}, "WithLabelSelector: no RetrieveType bit"},
		{"label selector unknown bit", RTPod, []Option{WithLabelSelector(RTPod|1<<20, "a=b")}, "WithLabelSelector: unknown RetrieveType bits 0x100000"},
		{"label selector bit not enabled", RTPod, []Option{WithLabelSelector(RTService, "a=b")}, "WithLabelSelector: Service not enabled in New"},
		{"second label selector", RTPod | RTService, []Option{WithLabelSelector(RTPod, "a=b"), WithLabelSelector(RTService|RTPod, "c=d")}, "already has one"},

		{"empty field selector", RTPod, []Option{WithFieldSelector(RTPod, "")}, "WithFieldSelector: empty selector"},
		{"field selector does not parse", RTPod, []Option{WithFieldSelector(RTPod, "spec.nodeName==x==y")}, `WithFieldSelector("spec.nodeName==x==y")`},
		{"field selector without operator", RTPod, []Option{WithFieldSelector(RTPod, "spec.nodeName")}, `WithFieldSelector("spec.nodeName")`},
		{"field selector without a field", RTPod, []Option{WithFieldSelector(RTPod, "=x")}, `WithFieldSelector("=x"): a term without a field`},
		{"field selector of commas only", RTPod, []Option{WithFieldSelector(RTPod, ",")}, `WithFieldSelector(","): selects every object`},
		{"label selector of commas only", RTPod, []Option{WithLabelSelector(RTPod, ",")}, `WithLabelSelector(",")`},
		{"field selector types 0", RTPod, []Option{WithFieldSelector(0, "spec.nodeName=x")}, "WithFieldSelector: no RetrieveType bit"},
		{"field selector bit not enabled", RTPod, []Option{WithFieldSelector(RTPod|RTNode, "metadata.name=x")}, "WithFieldSelector: Node not enabled in New"},
		{"second field selector", RTPod, []Option{WithFieldSelector(RTPod, "spec.nodeName=x"), WithFieldSelector(RTPod, "spec.nodeName=y")}, "already has one"},

		{"metadata-only types 0", RTPod, []Option{WithMetadataOnly(0)}, "WithMetadataOnly: no RetrieveType bit"},
		{"metadata-only bit not enabled", RTPod, []Option{WithMetadataOnly(RTPod | RTService)}, "WithMetadataOnly: Service not enabled in New"},
		{"metadata-only unknown bit", RTPod, []Option{WithMetadataOnly(1 << 30)}, "WithMetadataOnly: unknown RetrieveType bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *Reader
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("New panicked: %v", p)
					}
				}()
				r, err = New(context.Background(), cs, tc.types, tc.opts...)
			}()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New() = %v, %v; want an error containing %q", r, err, tc.wantErr)
			}
			if r != nil {
				t.Errorf("New returned a reader with its error")
			}
		})
	}

	t.Run("good scopes", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			types   RetrieveType
			opts    []Option
			streams []string // kind in namespace, in plan order
		}{
			{"namespaces", RTNode | RTPod | RTRBAC, []Option{WithNamespaces("a", "b")},
				[]string{"nodes ", "pods a", "pods b", "roles.rbac.authorization.k8s.io a", "roles.rbac.authorization.k8s.io b",
					"rolebindings.rbac.authorization.k8s.io a", "rolebindings.rbac.authorization.k8s.io b",
					"clusterroles.rbac.authorization.k8s.io ", "clusterrolebindings.rbac.authorization.k8s.io "}},
			{"one namespace, cluster-scoped kinds only", RTNamespace, []Option{WithNamespaces("a")}, []string{"namespaces "}},
			{"same selector twice", RTPod | RTService, []Option{WithLabelSelector(RTPod, "a=b"), WithLabelSelector(RTPod|RTService, "a=b")},
				[]string{"pods ", "services "}},
			{"every option", RTPod | RTService, []Option{WithNamespaces("a"), WithLabelSelector(RTPod, "app in (web,db),!canary"),
				WithFieldSelector(RTPod, "spec.nodeName=n1"), WithMetadataOnly(RTPod), WithMetadataOnly(RTPod)},
				[]string{"pods a", "services a"}},
		} {
			r, err := New(context.Background(), cs, tc.types, tc.opts...)
			if err != nil {
				t.Errorf("%s: New: %v", tc.name, err)
				continue
			}
			var got []string
			for _, s := range r.streams {
				got = append(got, s.kind.String()+" "+s.scope.Namespace)
			}
			if !slices.Equal(got, tc.streams) {
				t.Errorf("%s: streams %q, want %q", tc.name, got, tc.streams)
			}
		}
	})
}

// TestScopeNamespaces guards "with WithNamespaces, a namespaced kind is read only in those
// namespaces, each with its own stream; cluster-scoped kinds are unaffected; every promise holds
// within the scope, and convergence is to a LIST with the same scope", across churn in three
// namespaces of which the reader reads two, connection cuts, a 410 (etcd compacted while the
// reader was cut off: its per-namespace pod streams must find the deletes of the gap by a diff of
// their own namespace only) and a relist. Broken, the view would hold objects of the third
// namespace (extra in the diff), miss the deletes of the gap, or a per-namespace sweep would
// delete another namespace's objects (missing, then an add of a deleted object); the requests
// would go cluster-wide, or not one per namespace.
func TestScopeNamespaces(t *testing.T) {
	cs := plane(t).Clientset
	a, b, c := newNamespace(t, cs, "scope-a"), newNamespace(t, cs, "scope-b"), newNamespace(t, cs, "scope-c")
	all := []string{a, b, c}
	sc := scope{types: RTPod | RTService | RTRBAC | RTNamespace, namespaces: []string{a, b}}
	for _, ns := range all {
		for _, ot := range []reader.ObjectType{reader.OTPod, reader.OTService, reader.OTRole, reader.OTRoleBinding} {
			mustCreate(t, cs, ot, ns, "pre")
		}
	}
	p := newProxy(t)
	var rec requestRecorder
	rr := startReaderWith(t, rec.wrap(p.Config(plane(t).Config)), sc.types, sc.collectorOptions(), sc.options()...)
	mc := metadataClient(t, plane(t).Config)
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)

	// One stream per namespace and namespaced kind, one for each cluster-scoped kind: each starts
	// once, and the watches go to exactly those paths.
	var wantPaths []string
	for _, k := range kinds.For(sc.types) {
		want := 1
		if k.Namespaced {
			want = len(sc.namespaces)
		}
		if got := rr.r.stats.restartsOf(k.Object, stream.ReasonStart); got != want {
			t.Errorf("%s: %d streams started, want %d", k, got, want)
		}
		for _, ns := range sc.namespacesOf(k) {
			wantPaths = append(wantPaths, resourcePath(k, ns))
		}
	}
	slices.Sort(wantPaths)
	if got := rec.watchPaths(); !slices.Equal(got, wantPaths) {
		t.Errorf("watches of\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantPaths, "\n"))
	}
	// Whole objects, not metadata (this also shows that the body markers of TestScopeMetadataOnly
	// see whole pods when there are some).
	for _, r := range rec.of("pods") {
		if metadata, whole := r.body.counts(); r.status == http.StatusOK && (metadata > 0 || whole == 0) {
			t.Errorf("pod watch answered with %d PartialObjectMetadata and %d whole Pods, want whole ones only: %s", metadata, whole, r)
		}
	}

	// Churn in every namespace while connections are cut or refused.
	rng := rand.New(rand.NewPCG(21, 1))
	startChurn := func(seed uint64) []*churner {
		var chs []*churner
		for i, ns := range all {
			chs = append(chs, churn(t, cs, ns, seed+uint64(i), 10*time.Millisecond, reader.OTPod, reader.OTService, reader.OTRole))
		}
		return chs
	}
	stopChurn := func(chs []*churner) (writes int64) {
		for _, ch := range chs {
			writes += ch.stop()
		}
		return writes
	}
	chs := startChurn(100)
	for i := range 6 {
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		if i%2 == 0 {
			p.Cut()
		} else {
			p.Block()
			time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
			p.Unblock()
		}
	}
	writes := stopChurn(chs)
	rr.c.assertConvergedTo(t, mc, sc, 30*time.Second)
	restarts := rr.r.stats.restartCount(stream.ReasonEnded) + rr.r.stats.restartCount(stream.ReasonError)
	t.Logf("cuts: %d writes in 3 namespaces, %d restarts, %d entries checked", writes, restarts, rr.c.total())
	if restarts == 0 {
		t.Error("no stream restarted: the cuts did not reach the reader")
	}

	// 410: cut off while pods of every namespace are deleted and etcd is compacted.
	gap := map[string][]client.Object{}
	for _, ns := range all {
		for i := range 4 {
			gap[ns] = append(gap[ns], mustCreate(t, cs, reader.OTPod, ns, fmt.Sprint("gap-", i)))
		}
	}
	for _, ns := range sc.namespaces {
		for _, obj := range gap[ns] {
			waitFor(t, 10*time.Second, "the gap pods", func() bool { return rr.c.hasVersion(obj.GetUID(), obj.GetResourceVersion()) })
		}
	}
	expired, synthesized := rr.r.stats.restartsOf(reader.OTPod, stream.ReasonExpired), rr.r.stats.synthesizedOf(reader.OTPod)
	p.Block()
	for _, ns := range all {
		mustDelete(t, cs, gap[ns][0])
		mustDelete(t, cs, gap[ns][1])
		mustCreate(t, cs, reader.OTPod, ns, "late")
	}
	compact(t)
	p.Unblock()
	rr.c.assertConvergedTo(t, mc, sc, 30*time.Second)
	for _, ns := range sc.namespaces {
		for _, obj := range gap[ns][:2] {
			if !rr.c.isDeleted(obj.GetUID()) {
				t.Errorf("pod %s/%s deleted in the gap was not delivered as a delete", ns, obj.GetName())
			}
		}
	}
	for _, obj := range gap[c] {
		if rr.c.wasDelivered(obj.GetUID()) {
			t.Errorf("pod %s/%s of a namespace outside the scope was delivered: %s", c, obj.GetName(), rr.c.changesOf(obj.GetUID()))
		}
	}
	expired = rr.r.stats.restartsOf(reader.OTPod, stream.ReasonExpired) - expired
	synthesized = rr.r.stats.synthesizedOf(reader.OTPod) - synthesized
	t.Logf("410: %d pod streams expired, %d deletes synthesized", expired, synthesized)
	if expired < len(sc.namespaces) {
		t.Errorf("%d pod streams got 410, want one per namespace (%d)", expired, len(sc.namespaces))
	}
	if synthesized != 2*len(sc.namespaces) {
		t.Errorf("%d pod deletes found by the diff, want %d (2 per namespace in scope)", synthesized, 2*len(sc.namespaces))
	}

	// A relist during churn.
	chs = startChurn(200)
	time.Sleep(500 * time.Millisecond)
	relist(t, rr)
	time.Sleep(300 * time.Millisecond)
	writes = stopChurn(chs)
	rr.c.assertConvergedTo(t, mc, sc, 30*time.Second)
	if got, want := rr.r.stats.restartsOf(reader.OTPod, stream.ReasonStart), 2*len(sc.namespaces); got != want {
		t.Errorf("%d pod streams started after a relist, want %d (one per namespace in each set)", got, want)
	}
	if got := rec.watchPaths(); !slices.Equal(got, wantPaths) {
		t.Errorf("after the faults and the relist, watches of\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantPaths, "\n"))
	}
	before := rr.c.total()
	relist(t, rr)
	if got := rr.c.total() - before; got != 0 {
		t.Errorf("a relist with nothing changed delivered %d entries", got)
	}
	t.Logf("relist: %d writes; %d entries checked in all", writes, rr.c.total())
}

// namespacedRole loads testdata/rbac-namespaced.yaml.
func namespacedRole(t *testing.T) *rbacv1.Role {
	return loadManifest[rbacv1.Role](t, "testdata/rbac-namespaced.yaml")
}

// TestScopeNamespacedRoleManifest guards the manifest a user of WithNamespaces binds per
// namespace: its Role grants exactly list and watch on exactly the resources of the namespaced
// kinds. Were a namespaced kind added to the table and not to the manifest, a reader bound to it
// would fail with Forbidden; were a cluster-scoped resource listed, a Role could not grant it.
func TestScopeNamespacedRoleManifest(t *testing.T) {
	role := namespacedRole(t)
	if role.Kind != "Role" || role.APIVersion != "rbac.authorization.k8s.io/v1" {
		t.Errorf("manifest holds a %s %s, want an rbac.authorization.k8s.io/v1 Role", role.APIVersion, role.Kind)
	}
	checkRules(t, "testdata/rbac-namespaced.yaml", role.Rules, func(k kinds.Kind) bool { return k.Namespaced })
}

// bindRole creates role in ns and binds it to user there with a RoleBinding.
func bindRole(t *testing.T, ns, user string, role *rbacv1.Role) {
	t.Helper()
	ctx := context.Background()
	role = role.DeepCopy()
	role.Namespace = ns
	if _, err := plane(t).Clientset.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := plane(t).Clientset.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestScopeNamespacedRoleUser guards "each [namespace] with its own stream, so a reader bound to
// namespaced Roles works": a user bound only to the Role of testdata/rbac-namespaced.yaml in
// namespaces a and b reads pods and services there, and converges. Broken (a cluster-wide request
// anywhere), Run would fail with Forbidden. Given a namespace c where the user may not read pods,
// Run fails at once with Forbidden naming pods and namespace c (as "a stream that cannot open for a
// reason retrying will not fix"); broken, Run would hang retrying, or name neither.
func TestScopeNamespacedRoleUser(t *testing.T) {
	cs := plane(t).Clientset
	a, b, c := newNamespace(t, cs, "scope-role-a"), newNamespace(t, cs, "scope-role-b"), newNamespace(t, cs, "scope-role-c")
	role := namespacedRole(t)
	const user = "watchlist-namespaced-reader"
	bindRole(t, a, user, role)
	bindRole(t, b, user, role)
	for _, ns := range []string{a, b, c} {
		mustCreate(t, cs, reader.OTPod, ns, "pre")
		mustCreate(t, cs, reader.OTService, ns, "pre")
	}
	u, err := plane(t).Env.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		t.Fatal(err)
	}
	userCfg := u.Config()
	mc := metadataClient(t, plane(t).Config)

	t.Run("bound namespaces", func(t *testing.T) {
		sc := scope{types: RTPod | RTService, namespaces: []string{a, b}}
		rr := startReaderWith(t, userCfg, sc.types, sc.collectorOptions(), sc.options()...)
		rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
		added := mustCreate(t, cs, reader.OTPod, a, "added")
		gone, err := testenv.Get(context.Background(), cs, testenv.KindService, b, "pre")
		if err != nil {
			t.Fatal(err)
		}
		mustDelete(t, cs, gone)
		mustCreate(t, cs, reader.OTPod, c, "outside")
		waitFor(t, 10*time.Second, "the add in a", func() bool { return rr.c.hasVersion(added.GetUID(), added.GetResourceVersion()) })
		waitFor(t, 10*time.Second, "the delete in b", func() bool { return rr.c.isDeleted(gone.GetUID()) })
		rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	})

	t.Run("namespace without a binding", func(t *testing.T) {
		err, took := runErr(t, userCfg, RTPod, WithNamespaces(a, b, c))
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "pods") || !strings.Contains(err.Error(), "namespace "+c) {
			t.Fatalf("Run = %v, want Forbidden naming pods and namespace %s", err, c)
		}
		if took > 5*time.Second {
			t.Errorf("Run took %s to report Forbidden", took)
		}
		t.Logf("Run failed after %s: %v", took.Round(time.Millisecond), err)
	})

	t.Run("namespace bound without pods", func(t *testing.T) {
		less := role.DeepCopy()
		less.Name = "watchlist-reader-no-pods"
		for i := range less.Rules {
			less.Rules[i].Resources = slices.DeleteFunc(less.Rules[i].Resources, func(r string) bool { return r == "pods" })
		}
		bindRole(t, c, user, less)
		err, took := runErr(t, userCfg, RTPod|RTService, WithNamespaces(a, b, c))
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "pods in namespace "+c) {
			t.Fatalf("Run = %v, want Forbidden naming pods in namespace %s", err, c)
		}
		if strings.Contains(err.Error(), "services") {
			t.Errorf("Run's error names services, which the user may read: %v", err)
		}
		if took > 5*time.Second {
			t.Errorf("Run took %s to report Forbidden", took)
		}
		t.Logf("Run failed after %s: %v", took.Round(time.Millisecond), err)
	})
}

// TestScopeLabelSelector guards "with a selector, the stream holds only what matches: an object
// that stops matching arrives as CTDelete, one that starts matching as CTAdd", with every promise
// holding within the scope and convergence to a LIST with the same selector, also across a cut, a
// 410 (the pod relabelled away while the reader was cut off still exists, outside the scope: only
// the diff can deliver its delete) and relists (a quiet one delivers nothing). Broken, pods
// labelled app=db would arrive, a relabelled pod would stay in the view (extra in the diff) or
// never come back (missing), or its return would be dropped by the filter as a stale version of a
// deleted object.
func TestScopeLabelSelector(t *testing.T) {
	cs := plane(t).Clientset
	ns := newNamespace(t, cs, "scope-label")
	sc := scope{types: RTPod, labels: []scopeSelector{{RTPod, "app=web"}}}
	pods := map[string]client.Object{}
	for i := range 4 {
		for _, app := range []string{"web", "db"} {
			name := fmt.Sprintf("%s-%d", app, i)
			pods[name] = newPod(t, cs, ns, name, "", map[string]string{"app": app})
		}
	}
	uid := func(name string) types.UID { return pods[name].GetUID() }
	p := newProxy(t)
	rr := startReaderWith(t, p.Config(plane(t).Config), sc.types, sc.collectorOptions(), sc.options()...)
	mc := metadataClient(t, plane(t).Config)
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	dbNeverDelivered := func(names ...string) {
		t.Helper()
		for _, name := range names {
			if rr.c.wasDelivered(uid(name)) {
				t.Errorf("pod %s (app=db throughout) was delivered: %s", name, rr.c.changesOf(uid(name)))
			}
		}
	}
	dbNeverDelivered("db-0", "db-1", "db-2", "db-3")

	// Out of the selector and back: Delete, then Add of the same UID.
	relabel(t, cs, ns, "web-0", "db")
	waitFor(t, 10*time.Second, "the delete of web-0 relabelled app=db", func() bool { return rr.c.isDeleted(uid("web-0")) })
	back := relabel(t, cs, ns, "web-0", "web")
	waitFor(t, 10*time.Second, "the add of web-0 relabelled app=web", func() bool { return rr.c.hasVersion(back.UID, back.ResourceVersion) })
	if got := rr.c.changesOf(uid("web-0")); got != "Add Delete Add" {
		t.Errorf("web-0 relabelled to db and back: entries %q, want \"Add Delete Add\"", got)
	}
	in := relabel(t, cs, ns, "db-0", "web")
	waitFor(t, 10*time.Second, "the add of db-0 relabelled app=web", func() bool { return rr.c.hasVersion(in.UID, in.ResourceVersion) })
	if got := rr.c.changesOf(uid("db-0")); got != "Add" {
		t.Errorf("db-0 relabelled to web: entries %q, want \"Add\"", got)
	}
	rr.c.assertConvergedTo(t, mc, sc, 10*time.Second)

	// A gap the resume covers: relabels and a delete while the connection is refused.
	p.Block()
	relabel(t, cs, ns, "web-1", "db")
	relabel(t, cs, ns, "db-1", "web")
	relabel(t, cs, ns, "web-2", "db")
	relabel(t, cs, ns, "web-2", "web") // out and back within the gap
	mustDelete(t, cs, pods["web-3"])
	mustDelete(t, cs, pods["db-3"])
	time.Sleep(500 * time.Millisecond)
	p.Unblock()
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	for _, name := range []string{"web-1", "web-3"} {
		if !rr.c.isDeleted(uid(name)) {
			t.Errorf("%s, out of the selector after the gap, is not deleted: %s", name, rr.c.changesOf(uid(name)))
		}
	}
	dbNeverDelivered("db-2", "db-3")

	// A gap the resume cannot cover (410): only the diff finds what left the selector.
	synthesized := rr.r.stats.synthesizedOf(reader.OTPod)
	p.Block()
	relabel(t, cs, ns, "db-1", "db") // in since the last gap; out now
	relabel(t, cs, ns, "web-1", "web")
	newPod(t, cs, ns, "web-4", "", map[string]string{"app": "web"})
	compact(t)
	p.Unblock()
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	if !rr.c.isDeleted(uid("db-1")) || !rr.c.isLive(uid("web-1")) {
		t.Errorf("after the 410: db-1 %q (want a last Delete), web-1 %q (want a last Add)", rr.c.changesOf(uid("db-1")), rr.c.changesOf(uid("web-1")))
	}
	if rr.r.stats.restartsOf(reader.OTPod, stream.ReasonExpired) == 0 {
		t.Error("the resume did not get 410: the expired path did not run")
	}
	if got := rr.r.stats.synthesizedOf(reader.OTPod) - synthesized; got != 1 {
		t.Errorf("%d deletes found by the diff after the 410, want 1 (db-1 left the selector)", got)
	}

	// Relists: a quiet one delivers nothing; one after relabels converges.
	before := rr.c.total()
	relist(t, rr)
	if got := rr.c.total() - before; got != 0 {
		t.Errorf("a relist with nothing changed delivered %d entries", got)
	}
	relabel(t, cs, ns, "web-2", "db")
	relabel(t, cs, ns, "db-2", "web")
	relist(t, rr)
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	t.Logf("entries: web-0 %q, web-1 %q, web-2 %q, db-1 %q, db-2 %q; %d entries checked", rr.c.changesOf(uid("web-0")),
		rr.c.changesOf(uid("web-1")), rr.c.changesOf(uid("web-2")), rr.c.changesOf(uid("db-1")), rr.c.changesOf(uid("db-2")), rr.c.total())
}

// TestScopeFieldSelector guards WithFieldSelector: with "spec.nodeName=n1" the reader holds only
// n1's pods, the server evaluating the selector, and converges to a LIST with the same selector
// across adds and deletes on both nodes. Broken, n2's pods would arrive (extra in the diff). And
// "a field the server does not support for that resource: Run fails naming the resource": broken,
// Run would retry forever, or fail without naming services.
func TestScopeFieldSelector(t *testing.T) {
	cs := plane(t).Clientset
	ns := newNamespace(t, cs, "scope-field")
	pods := map[string]client.Object{}
	for i := range 3 {
		for _, node := range []string{"n1", "n2"} {
			name := fmt.Sprintf("%s-%d", node, i)
			pods[name] = newPod(t, cs, ns, name, node, nil)
		}
	}
	sc := scope{types: RTPod, fields: []scopeSelector{{RTPod, "spec.nodeName=n1"}}}
	rr := startReaderWith(t, plane(t).Config, sc.types, sc.collectorOptions(), sc.options()...)
	mc := metadataClient(t, plane(t).Config)
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	for _, name := range []string{"n1-0", "n1-1", "n1-2"} {
		if !rr.c.isLive(pods[name].GetUID()) {
			t.Errorf("pod %s of n1 not in the initial state", name)
		}
	}

	pods["n1-3"] = newPod(t, cs, ns, "n1-3", "n1", nil)
	pods["n2-3"] = newPod(t, cs, ns, "n2-3", "n2", nil)
	touched, err := testenv.Touch(context.Background(), cs, pods["n1-1"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.Touch(context.Background(), cs, pods["n2-1"]); err != nil {
		t.Fatal(err)
	}
	mustDelete(t, cs, pods["n1-0"])
	mustDelete(t, cs, pods["n2-0"])
	waitFor(t, 10*time.Second, "the new pod of n1", func() bool { return rr.c.isLive(pods["n1-3"].GetUID()) })
	waitFor(t, 10*time.Second, "the update of n1-1", func() bool { return rr.c.hasVersion(touched.GetUID(), touched.GetResourceVersion()) })
	waitFor(t, 10*time.Second, "the delete of n1-0", func() bool { return rr.c.isDeleted(pods["n1-0"].GetUID()) })
	rr.c.assertConvergedTo(t, mc, sc, 10*time.Second)
	for name, obj := range pods {
		if strings.HasPrefix(name, "n2-") && rr.c.wasDelivered(obj.GetUID()) {
			t.Errorf("pod %s of n2 was delivered: %s", name, rr.c.changesOf(obj.GetUID()))
		}
	}

	t.Run("unsupported field", func(t *testing.T) {
		err, took := runErr(t, plane(t).Config, RTPod|RTService, WithFieldSelector(RTService, "spec.bogus=x"))
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "services") || !strings.Contains(err.Error(), "spec.bogus") {
			t.Fatalf("Run = %v, want BadRequest naming services and spec.bogus", err)
		}
		if took > 5*time.Second {
			t.Errorf("Run took %s to report the unsupported field", took)
		}
		t.Logf("Run failed after %s: %v", took.Round(time.Millisecond), err)
	})
}

// checkMetadataEntry checks that e holds a PartialObjectMetadata of obj (namespace, name, UID) at
// version rv (any when ""), with labels when wantLabels is not nil, and that e.Pod() or
// e.Service() errors.
func checkMetadataEntry(t *testing.T, e reader.Entry, obj client.Object, rv string, wantLabels map[string]string) {
	t.Helper()
	m, ok := e.Object().(*metav1.PartialObjectMetadata)
	if !ok {
		t.Errorf("%s: holds %T, want *metav1.PartialObjectMetadata", e, e.Object())
		return
	}
	if m.Namespace != obj.GetNamespace() || m.Name != obj.GetName() || m.UID != obj.GetUID() || m.ResourceVersion == "" || rv != "" && m.ResourceVersion != rv {
		t.Errorf("%s: metadata %s/%s uid %s rv %q, want %s/%s uid %s rv %q", e, m.Namespace, m.Name, m.UID, m.ResourceVersion,
			obj.GetNamespace(), obj.GetName(), obj.GetUID(), rv)
	}
	if wantLabels != nil && !maps.Equal(m.Labels, wantLabels) {
		t.Errorf("%s: labels %v, want %v", e, m.Labels, wantLabels)
	}
	var err error
	switch e.ObjectType() {
	case reader.OTPod:
		_, err = e.Pod()
	case reader.OTService:
		_, err = e.Service()
	}
	if err == nil {
		t.Errorf("%s: the typed getter of a metadata-only entry returned no error", e)
	}
}

// TestScopeMetadataOnly guards "Metadata only: the server sends only metadata; Object() is a
// *metav1.PartialObjectMetadata and the typed getters of those kinds return an error": for every
// entry of pods and services (the collector checks each), with name, namespace, UID,
// resourceVersion and labels; for updates and deletes; and for deletes synthesized after a 410
// (the tombstone of a metadata-only stream must be a PartialObjectMetadata too, carrying the last
// version delivered). Every pod and service request asks for PartialObjectMetadata, and the
// server answers it as protobuf. Broken, entries would hold whole Pods (the getters succeed), a
// tombstone would be an empty *corev1.Pod, or the requests would ask for whole objects or JSON.
func TestScopeMetadataOnly(t *testing.T) {
	cs := plane(t).Clientset
	ns := newNamespace(t, cs, "scope-meta")
	sc := scope{types: RTPod | RTService, metadata: RTPod | RTService}
	pods := map[string]client.Object{}
	for i := range 5 {
		name := fmt.Sprint("p-", i)
		pods[name] = newPod(t, cs, ns, name, "", map[string]string{"tier": "meta"})
	}
	svc := mustCreate(t, cs, reader.OTService, ns, "s")
	p := newProxy(t)
	var rec requestRecorder
	rr := startReaderWith(t, rec.wrap(p.Config(plane(t).Config)), sc.types, sc.collectorOptions(), sc.options()...)
	mc := metadataClient(t, plane(t).Config)
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	podLabels := map[string]string{testenv.FixtureLabel: "true", "tier": "meta"}
	for _, obj := range pods {
		es := rr.c.entriesOf(obj.GetUID())
		if len(es) != 1 || es[0].ChangeType() != reader.CTAdd {
			t.Errorf("pod %s: entries %q, want one Add", obj.GetName(), rr.c.changesOf(obj.GetUID()))
			continue
		}
		checkMetadataEntry(t, es[0], obj, obj.GetResourceVersion(), podLabels)
	}

	// Changes: an update, and a delete seen as an event.
	touched, err := testenv.Touch(context.Background(), cs, pods["p-0"])
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the update", func() bool { return rr.c.hasVersion(touched.GetUID(), touched.GetResourceVersion()) })
	mustDelete(t, cs, svc)
	waitFor(t, 10*time.Second, "the service's delete", func() bool { return rr.c.isDeleted(svc.GetUID()) })
	if es := rr.c.entriesOf(touched.GetUID()); len(es) == 2 {
		checkMetadataEntry(t, es[1], touched, touched.GetResourceVersion(), touched.GetLabels())
	} else {
		t.Errorf("p-0: entries %q, want Add Update", rr.c.changesOf(touched.GetUID()))
	}
	if es := rr.c.entriesOf(svc.GetUID()); len(es) == 2 {
		checkMetadataEntry(t, es[1], svc, "", nil)
	} else {
		t.Errorf("service: entries %q, want Add Delete", rr.c.changesOf(svc.GetUID()))
	}

	// Deletes synthesized after a 410: tombstones of the metadata-only stream.
	synthesized := rr.r.stats.synthesizedOf(reader.OTPod)
	p.Block()
	for _, name := range []string{"p-1", "p-2"} {
		mustDelete(t, cs, pods[name])
	}
	newPod(t, cs, ns, "late", "", nil)
	compact(t)
	p.Unblock()
	rr.c.assertConvergedTo(t, mc, sc, 30*time.Second)
	if got := rr.r.stats.synthesizedOf(reader.OTPod) - synthesized; got != 2 {
		t.Errorf("%d pod deletes synthesized after the 410, want 2", got)
	}
	for _, name := range []string{"p-1", "p-2"} {
		obj := pods[name]
		es := rr.c.entriesOf(obj.GetUID())
		if len(es) != 2 || es[1].ChangeType() != reader.CTDelete {
			t.Errorf("pod %s deleted in the gap: entries %q, want Add Delete", name, rr.c.changesOf(obj.GetUID()))
			continue
		}
		checkMetadataEntry(t, es[1], obj, obj.GetResourceVersion(), nil) // the last version delivered
	}

	before := rr.c.total()
	relist(t, rr)
	if got := rr.c.total() - before; got != 0 {
		t.Errorf("a relist with nothing changed delivered %d entries", got)
	}

	// Every request of pods and services asked for PartialObjectMetadata and got it as protobuf.
	for _, resource := range []string{"pods", "services"} {
		checkMetadataRequests(t, resource, rec.of(resource))
	}
}

// checkMetadataRequests checks that every request of resource asked for PartialObjectMetadata
// (PartialObjectMetadataList for a LIST) as protobuf first, and that every answer was protobuf
// holding PartialObjectMetadata and no whole object. The server names the type in the objects'
// envelopes, not in the Content-Type ("application/vnd.kubernetes.protobuf", ";stream=watch" for
// a watch), so the bodies are sniffed.
func checkMetadataRequests(t *testing.T, resource string, reqs []seenRequest) {
	t.Helper()
	if len(reqs) == 0 {
		t.Errorf("no request of %s recorded", resource)
		return
	}
	answered, watchMarks := 0, 0
	for _, r := range reqs {
		as := "as=PartialObjectMetadataList;"
		if r.isWatch() {
			as = "as=PartialObjectMetadata;"
		}
		if !strings.HasPrefix(r.accept, "application/vnd.kubernetes.protobuf;"+as) {
			t.Errorf("%s: request asked for %q, want protobuf %s first: %s", resource, r.accept, as, r)
		}
		if r.status != http.StatusOK {
			continue // refused or cut by the proxy, or WatchList refused
		}
		answered++
		if r.mediaType() != "application/vnd.kubernetes.protobuf" {
			t.Errorf("%s: response of %q, want protobuf: %s", resource, r.contentType, r)
		}
		metadata, whole := r.body.counts()
		if whole > 0 {
			t.Errorf("%s: %d whole objects in the response: %s", resource, whole, r)
		}
		if r.isWatch() {
			watchMarks += metadata
		} else if metadata == 0 {
			t.Errorf("%s: LIST response without PartialObjectMetadataList: %s", resource, r)
		}
	}
	if watchMarks == 0 && slices.ContainsFunc(reqs, seenRequest.isWatch) {
		t.Errorf("%s: no PartialObjectMetadata in any watch response", resource)
	}
	t.Logf("%s: %d requests, %d answered, %d PartialObjectMetadata in watch responses; e.g. %s", resource, len(reqs), answered, watchMarks, reqs[0])
}

// TestScopeFallbackKeepsScope guards "every promise above holds within the scope" on the
// fallback: on a server with WatchList off, a reader limited to one namespace, with a label
// selector and metadata only for pods, falls back to LIST + WATCH, and every LIST and WATCH it
// makes keeps the namespace path, the selector and the metadata Accept header; it converges to the
// scoped LIST. Broken (the fallback building its requests without the scope), a LIST would go
// cluster-wide (Forbidden for a namespaced user, or objects outside the scope: extra in the
// diff), or return whole Pods (a collector violation).
func TestScopeFallbackKeepsScope(t *testing.T) {
	old, err := testenv.Start(testenv.Options{APIServerFlags: map[string]string{"feature-gates": "WatchList=false"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Stop() })
	cs := old.Clientset
	a, b := newNamespace(t, cs, "scope-a"), newNamespace(t, cs, "scope-b")
	for _, ns := range []string{a, b} {
		for i, app := range []string{"web", "db", "web"} {
			newPod(t, cs, ns, fmt.Sprint(app, "-", i), "", map[string]string{"app": app})
		}
		mustCreate(t, cs, reader.OTService, ns, "s")
	}
	sc := scope{types: RTPod | RTService, namespaces: []string{a}, labels: []scopeSelector{{RTPod, "app=web"}}, metadata: RTPod}
	var rec requestRecorder
	rr := startReaderWith(t, rec.wrap(old.Config), sc.types, sc.collectorOptions(), sc.options()...)
	mc := metadataClient(t, old.Config)
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)
	if got := rr.r.stats.restartCount(stream.ReasonFallback); got != 2 {
		t.Errorf("%d fallback restarts, want 2 (pods and services in %s)", got, a)
	}

	// Changes in both namespaces, in and out of the selector.
	for _, ns := range []string{a, b} {
		newPod(t, cs, ns, "web-new", "", map[string]string{"app": "web"})
		relabel(t, cs, ns, "web-0", "db")
		relabel(t, cs, ns, "db-1", "web")
		mustCreate(t, cs, reader.OTService, ns, "s-new")
	}
	ch := churn(t, cs, a, 31, 10*time.Millisecond, reader.OTPod, reader.OTService)
	time.Sleep(2 * time.Second)
	writes := ch.stop()
	rr.c.assertConvergedTo(t, mc, sc, 20*time.Second)

	lists, watches := 0, 0
	pods := rec.of("pods")
	for _, r := range pods {
		if r.isWatch() {
			watches++
		} else {
			lists++
		}
		if r.path != resourcePath(kinds.For(RTPod)[0], a) || r.query.Get("labelSelector") != "app=web" {
			t.Errorf("pod request out of scope: %s", r)
		}
	}
	checkMetadataRequests(t, "pods", pods)
	for _, r := range rec.of("services") {
		if r.path != resourcePath(kinds.For(RTService)[0], a) || r.query.Has("labelSelector") || strings.Contains(r.accept, "PartialObjectMetadata") {
			t.Errorf("service request out of scope: %s", r)
		}
		if metadata, whole := r.body.counts(); r.status == http.StatusOK && !r.isWatch() && (metadata > 0 || whole == 0) {
			t.Errorf("service LIST answered with %d PartialObjectMetadata and %d whole Services, want whole ones only: %s", metadata, whole, r)
		}
	}
	if lists == 0 || watches < 2 {
		t.Errorf("pods: %d LISTs and %d WATCHes, want the refused WatchList, a LIST and a WATCH at least", lists, watches)
	}
	t.Logf("%d writes; pods: %d LISTs, %d WATCHes; %d entries checked", writes, lists, watches, rr.c.total())
}
