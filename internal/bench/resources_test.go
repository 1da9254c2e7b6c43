package bench

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func TestResourcesVariants(t *testing.T) {
	checkLayout(t, &resourcesLayout, isResourcesVariant)
	if !isResourcesVariant(VariantResourcesFloor) || isResourcesVariant(VariantFloor) {
		t.Error("isResourcesVariant")
	}
	for name, want := range map[string]*syncSuite{SuiteScope: &scopeSuite, SuiteResources: &resourcesSuite, SuiteDefault: nil, "nope": nil} {
		if got, ok := syncSuiteNamed(name); got != want || ok != (want != nil) {
			t.Errorf("syncSuiteNamed(%q) = %p, %v", name, got, ok)
		}
	}
	if got := resourcePath(widgetsGVR); got != "/apis/stable.example.com/v1/widgets" {
		t.Errorf("resourcePath = %q", got)
	}
	if got := resourcePath(podsGVR); got != "/api/v1/pods" {
		t.Errorf("resourcePath = %q", got)
	}
}

// Every Widget's spec is widgetSpecBytes of JSON, and they differ.
func TestWidget(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 7, 899, 900, 9999, 29999} {
		w := newWidget(i)
		if w.GetName() != widgetName(i) || w.GetNamespace() != namespaceName(i) || w.GetKind() != widgetKind ||
			w.GetAPIVersion() != "stable.example.com/v1" {
			t.Errorf("widget %d: %s %s/%s", i, w.GetAPIVersion()+"/"+w.GetKind(), w.GetNamespace(), w.GetName())
		}
		spec, err := json.Marshal(w.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		if len(spec) != widgetSpecBytes {
			t.Errorf("widget %d: spec of %d bytes, want %d: %s", i, len(spec), widgetSpecBytes, spec)
		}
		if seen[string(spec)] {
			t.Errorf("widget %d: the same spec as another", i)
		}
		seen[string(spec)] = true
		if w.DeepCopy() == nil { // panics on a value unstructured cannot hold
			t.Error("no copy")
		}
	}
}

// The CRD of testdata is found from the package's folder and defines what the suite creates.
func TestWidgetsCRD(t *testing.T) {
	path, err := findWidgetsCRD()
	if err != nil {
		t.Fatal(err)
	}
	opts := envtest.CRDInstallOptions{Paths: []string{path}, ErrorIfPathMissing: true}
	if err := envtest.ReadCRDFiles(&opts); err != nil {
		t.Fatal(err)
	}
	if err := checkWidgetsCRD(opts.CRDs); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		change func(*apiextensionsv1.CustomResourceDefinition)
		want   string
	}{
		"other group":    {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Group = "example.org" }, "no CRD of widgets.stable.example.com"},
		"cluster scope":  {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = apiextensionsv1.ClusterScoped }, "scope Cluster"},
		"other version":  {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Name = "v2" }, "no version v1"},
		"not served":     {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Served = false }, "not served"},
		"notes a string": {func(c *apiextensionsv1.CustomResourceDefinition) { setSpecType(c, "notes", "string") }, `spec.notes is "string"`},
	} {
		crd := opts.CRDs[0].DeepCopy()
		tc.change(crd)
		if err := checkWidgetsCRD([]*apiextensionsv1.CustomResourceDefinition{crd}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// setSpecType sets the type of field in the spec of crd's first version.
func setSpecType(crd *apiextensionsv1.CustomResourceDefinition, field, typ string) {
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	p := spec.Properties[field]
	p.Type = typ
	spec.Properties[field] = p
	crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = spec
}

// A variant of the resources suite that holds another count than every Widget fails the run; the
// scope suite only warns.
func TestCheckObjects(t *testing.T) {
	res := ScopeResult{Variant: VariantResourcesMetadata, N: 1000, Objects: 1000}
	if w, err := resourcesSuite.checkObjects(res); w != "" || err != nil {
		t.Errorf("all there: %q, %v", w, err)
	}
	res.Objects = 999
	if w, err := resourcesSuite.checkObjects(res); w != "" || err == nil || !strings.Contains(err.Error(), "999 objects once synced, want 1000") {
		t.Errorf("one missing: %q, %v", w, err)
	}
	pods := ScopeResult{Variant: VariantReaderNode, N: 1000, Objects: 11}
	if w, err := scopeSuite.checkObjects(pods); w != "11 objects once synced, want 10" || err != nil {
		t.Errorf("scope: %q, %v", w, err)
	}
}

// fakeResourcesResults makes runs of every resources variant at each n (fakeSyncResults).
func fakeResourcesResults(ns []int, runs int) []ScopeResult {
	scale := map[string]float64{ // seconds per 10,000 widgets
		VariantResourcesReader: 1.2, VariantResourcesDynamic: 1.6, VariantResourcesMetadata: 0.4, VariantResourcesFloor: 0.3,
	}
	return fakeSyncResults(&resourcesSuite, scale, ns, runs)
}

func TestResourcesMarkdown(t *testing.T) {
	md := checkMarkdown(t, SummarizeResources(fakeResourcesResults([]int{1000, 10000}, 3)),
		"Resources suite: medians of 3 runs per variant and N",
		"### Custom resources: `WithResources(widgets.stable.example.com)`",
		"| N widgets | metric | reader | dynamic informer | metadata informer | floor | reader / dynamic informer | "+
			"metadata informer / dynamic informer | reader / floor | dynamic informer / floor |",
		"| 10,000 | objects in the initial state | 10,000 | 10,000 | 10,000 | 10,000 | 1.00 | 1.00 | 1.00 | 1.00 |",
		"| 10,000 | time to initial sync (s) | 1.202 | 1.602 | 0.402 | 0.302 | 0.75 | 0.25 | 3.98 | 5.30 |",
		"| 1,000 | CPU during initial sync (s) | 0.060 | 0.080 | 0.020 | 0.015 | 0.75 | 0.25 | 4.00 | 5.33 |",
		"| 10,000 | heap once synced (after GC) (MiB) |",
		"| 10,000 | peak heap during sync (MiB) |",
	)
	if got := strings.Count(md, "\n| 1"); got != 2*len(ScopeMetrics) {
		t.Errorf("%d rows, want %d", got, 2*len(ScopeMetrics))
	}
}

func TestResourcesCSV(t *testing.T) {
	records := csvRecords(t, SummarizeResources(fakeResourcesResults([]int{10000}, 1)))
	want := "n,metric,unit,resources-reader,resources-dynamic,resources-metadata,resources-floor," +
		"resources-reader/resources-dynamic,resources-metadata/resources-dynamic,resources-reader/resources-floor,resources-dynamic/resources-floor"
	if len(records) != 1+len(ScopeMetrics) || strings.Join(records[0], ",") != want {
		t.Fatalf("%d records, header %v", len(records), records[0])
	}
	row := records[2]
	if strings.Join(row[:3], ",") != "10000,sync_s,s" {
		t.Fatalf("row 2: %v", row)
	}
	for k, want := range []float64{1.201, 1.601, 0.401, 0.301, 1.201 / 1.601} {
		if got, err := strconv.ParseFloat(row[3+k], 64); err != nil || !near(got, want) {
			t.Errorf("sync_s column %s = %s, want %v", records[0][3+k], row[3+k], want)
		}
	}
}

// jsonWatchStream encodes events as a kube-apiserver sends a JSON watch of a custom resource: an
// event per line, each object embedded as unstructured JSON (see encodeWatch).
func jsonWatchStream(t *testing.T, events ...watch.Event) []byte {
	t.Helper()
	return encodeWatch(t, runtime.ContentTypeJSON, func(runtime.SerializerInfo) runtime.Encoder {
		return unstructured.UnstructuredJSONScheme
	}, events...)
}

// widgetBookmark is a bookmark of a JSON watch of widgets; end marks the end of the initial events.
func widgetBookmark(rv string, end bool) watch.Event {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind(widgetKind))
	u.SetResourceVersion(rv)
	if end {
		u.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return watch.Event{Type: watch.Bookmark, Object: u}
}

func TestReadInitialEventsJSON(t *testing.T) {
	var events []watch.Event
	for i := range 5 {
		events = append(events, watch.Event{Type: watch.Added, Object: newWidget(i)})
	}
	events = append(events, widgetBookmark("41", false))
	for i := 5; i < 8; i++ {
		events = append(events, watch.Event{Type: watch.Added, Object: newWidget(i)})
	}
	events = append(events, widgetBookmark("42", true), watch.Event{Type: watch.Modified, Object: newWidget(0)})
	stream := jsonWatchStream(t, events...)
	if !bytes.HasPrefix(stream, addedPrefix) {
		t.Fatalf("an ADDED event does not begin with %s: %.40s", addedPrefix, stream)
	}
	// An ADDED event written in another order is decoded, and counted all the same.
	other := []byte(`{"object":{"kind":"Widget","apiVersion":"stable.example.com/v1","metadata":{"name":"x"}}, "type": "ADDED"}` + "\n")
	stream = append(other, stream...)
	st, err := readInitialEventsJSON(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if st.added != 9 || st.bookmarks != 2 || st.frames != 11 || st.resourceVersion != "42" {
		t.Errorf("stats %+v, want 9 added, 2 bookmarks, 11 frames, resourceVersion 42", st)
	}

	cut := jsonWatchStream(t, events[:3]...)
	gone := apierrors.NewResourceExpired("too old resource version")
	status := gone.ErrStatus
	status.Kind, status.APIVersion = "Status", "v1"
	for name, tc := range map[string]struct {
		stream []byte
		want   string
	}{
		"ends early":   {cut, "ended after 3 events, before the initial-events-end bookmark"},
		"cut in frame": {cut[:len(cut)-10], "ended after 3 events"},
		"protobuf":     {[]byte{0, 0, 0, 3, 0xff, 0xff, 0xff, '\n'}, "decode the envelope of frame 1"},
		"modified":     {jsonWatchStream(t, events[0], watch.Event{Type: watch.Modified, Object: newWidget(0)}), `a "MODIFIED" event in frame 2`},
		"bad bookmark": {[]byte(`{"type":"BOOKMARK","object":{"metadata":{}}}` + "\n"), "decode the bookmark of frame 1"},
		"too long":     {append(append([]byte(`{"type":"ADDED","object":"`), bytes.Repeat([]byte("x"), maxFrame)...), '"', '\n'), "read frame 1"},
	} {
		if _, err := readInitialEventsJSON(bytes.NewReader(tc.stream)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	_, err = readInitialEventsJSON(bytes.NewReader(jsonWatchStream(t, events[0], watch.Event{Type: watch.Error, Object: &status})))
	if !apierrors.IsResourceExpired(err) {
		t.Errorf("ERROR event: %v, want the server's 410", err)
	}
}

func TestResourcesFlags(t *testing.T) {
	checkExits(t, []exitCase{
		{[]string{"-suite", "resources", "-churn", "5"}, 2, "-churn: only for -suite default (the resources suite"},
		{[]string{"-suite", "resources", "-n", "10000,1000"}, 2, "increasing"},
		{[]string{"-suite", "nope"}, 2, "want default, scope, resources or restart"},
	})
	// A scope suite's runs are not the resources suite's.
	if _, err := decodeRuns(strings.NewReader(`{"variant":"floor","n":1}`), true, resourcesSuite.check); err == nil ||
		!strings.Contains(err.Error(), `"floor" is not a variant of the resources suite`) {
		t.Errorf("a scope variant: %v", err)
	}
}
