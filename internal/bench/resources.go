package bench

// The resources suite (-suite resources): what WithResources costs for a custom resource, which the
// server sends only as JSON, against client-go's dynamic informer (whole objects, unstructured),
// its metadata informer (what metadata-only would save; WithMetadataOnly does not apply to
// WithResources) and the floor (the reader's request, no object decoded). Every variant reads
// Widgets only (testdata/crds/widgets.yaml); each runs in its own child and reports its initial sync.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Variants of the resources suite: each is also the value of the child's hidden -child flag.
const (
	VariantResourcesReader   = "resources-reader"   // watchlist.New(ctx, cs, 0, WithResources(widgets))
	VariantResourcesDynamic  = "resources-dynamic"  // client-go dynamic informer for widgets
	VariantResourcesMetadata = "resources-metadata" // client-go metadata informer for widgets
	VariantResourcesFloor    = "resources-floor"    // the reader's WatchList request, JSON lines split only
)

// resourcesVariants is the order the resources suite's variants alternate in within a run.
var resourcesVariants = []string{
	VariantResourcesReader, VariantResourcesDynamic, VariantResourcesMetadata, VariantResourcesFloor,
}

// isResourcesVariant reports whether name is a variant of the resources suite.
func isResourcesVariant(name string) bool { return slices.Contains(resourcesVariants, name) }

// widgetsGVR is the custom resource the suite reads: testdata/crds/widgets.yaml.
var widgetsGVR = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "widgets"}

// widgetKind is the kind of widgetsGVR's objects.
const widgetKind = "Widget"

// A Widget's spec: a size of 3 digits, a color of 5 letters and widgetNotes notes that hold the
// pods' payload (payloadSize bytes, different for every widget), so that every spec has the same
// size, widgetSpecBytes of JSON.
const (
	widgetNotes     = 8
	widgetNoteSize  = payloadSize / widgetNotes
	widgetSpecBytes = 1086
)

// widgetColors are the colors of the widgets, round-robin, all of the same length.
var widgetColors = [...]string{"amber", "azure", "coral", "ivory"}

func widgetName(i int) string { return fmt.Sprintf("widget-%06d", i) }

// newWidget returns Widget i, in namespaceName(i), with a spec of widgetSpecBytes of JSON.
func newWidget(i int) *unstructured.Unstructured {
	p := payload(i)
	notes := make([]any, widgetNotes)
	for k := range notes {
		notes[k] = p[k*widgetNoteSize : (k+1)*widgetNoteSize]
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"size":  int64(100 + i%900),
			"color": widgetColors[i%len(widgetColors)],
			"notes": notes,
		},
	}}
	u.SetGroupVersionKind(widgetsGVR.GroupVersion().WithKind(widgetKind))
	u.SetNamespace(namespaceName(i))
	u.SetName(widgetName(i))
	return u
}

// resourcesSuite is the resources suite: Widgets in every namespace of namespaceName.
var resourcesSuite = syncSuite{
	name:     SuiteResources,
	counted:  "widgets",
	variants: resourcesVariants,
	runsFile: resourcesRunsFile, markdownFile: resourcesMarkdownFile, csvFile: resourcesCSVFile,
	populate: populateWidgets,
	describe: func(ctx context.Context, bp *benchPlane, n int) (string, error) {
		return describeWidget(ctx, bp, n-1)
	},
	expected:  func(_ string, n int) int { return n }, // every variant reads every Widget
	exact:     true,
	summarize: SummarizeResources,
}

// RunResources starts a control plane, installs the Widget CRD, creates Widgets, measures every
// variant of the resources suite at every N and writes the report: the table on stdout, and
// resources.md, resources.csv and resources-runs.jsonl into cfg.Out.
func RunResources(ctx context.Context, cfg ScopeConfig, stdout, stderr io.Writer) error {
	return runSyncSuite(ctx, cfg, &resourcesSuite, stdout, stderr)
}

// populateWidgets creates the Widgets have..n-1 (newWidget) with workers in parallel; when have is
// 0, it first creates the namespaces and installs the Widget CRD. It returns the new count.
func populateWidgets(ctx context.Context, bp *benchPlane, have, n, workers int, log io.Writer) (int, error) {
	if have == 0 {
		if err := createNamespaces(ctx, bp.cs); err != nil {
			return have, err
		}
		if err := installWidgetsCRD(bp, log); err != nil {
			return have, err
		}
	}
	if n <= have {
		return have, nil
	}
	dc, err := dynamic.NewForConfig(bp.writer)
	if err != nil {
		return have, fmt.Errorf("build dynamic client: %w", err)
	}
	err = parallel(ctx, have, n, workers, "widgets", log, func(ctx context.Context, i int) error {
		w := newWidget(i)
		if _, err := dc.Resource(widgetsGVR).Namespace(w.GetNamespace()).Create(ctx, w, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return have, fmt.Errorf("create widgets: %w", err)
	}
	return n, nil
}

// describeWidget says how large Widget i is as the server returns it, in JSON: whole, its spec and
// its managedFields.
func describeWidget(ctx context.Context, bp *benchPlane, i int) (string, error) {
	dc, err := dynamic.NewForConfig(bp.writer)
	if err != nil {
		return "", fmt.Errorf("build dynamic client: %w", err)
	}
	u, err := dc.Resource(widgetsGVR).Namespace(namespaceName(i)).Get(ctx, widgetName(i), metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get widget %s/%s: %w", namespaceName(i), widgetName(i), err)
	}
	var sizes [3]int
	for k, v := range []any{u.Object, u.Object["spec"], u.GetManagedFields()} {
		js, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("encode widget: %w", err)
		}
		sizes[k] = len(js)
	}
	return fmt.Sprintf("widget %s/%s is %d bytes of JSON (spec: %d, managedFields: %d)",
		u.GetNamespace(), u.GetName(), sizes[0], sizes[1], sizes[2]), nil
}

// widgetsCRDFile is the Widget CRD, a path from the repository's root.
const widgetsCRDFile = "testdata/crds/widgets.yaml"

// findWidgetsCRD returns the path of widgetsCRDFile: under the working directory or one of its
// parents (make bench runs from the repository's root), or else under the directory of the
// executable or one of its parents (bin/bench).
func findWidgetsCRD() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			path := filepath.Join(dir, widgetsCRDFile)
			if _, err := os.Stat(path); err == nil {
				return path, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("%s: not found under %s or their parents (run the benchmark from the repository)",
		widgetsCRDFile, strings.Join(starts, ", "))
}

// installWidgetsCRD installs the Widget CRD on bp and waits until the server serves it.
func installWidgetsCRD(bp *benchPlane, log io.Writer) error {
	path, err := findWidgetsCRD()
	if err != nil {
		return err
	}
	ctrllog.SetLogger(logr.Discard()) // envtest logs through it, and complains on stderr when unset
	crds, err := envtest.InstallCRDs(bp.writer, envtest.CRDInstallOptions{Paths: []string{path}, ErrorIfPathMissing: true})
	if err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	if err := checkWidgetsCRD(crds); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(log, "bench: installed the CRD of %s from %s\n", widgetsGVR.GroupResource(), path)
	return nil
}

// checkWidgetsCRD reports whether crds define widgetsGVR as the suite creates its objects: kind
// Widget, namespaced, version served, with spec.size, spec.color and spec.notes in its schema.
func checkWidgetsCRD(crds []*apiextensionsv1.CustomResourceDefinition) error {
	for _, crd := range crds {
		if crd.Spec.Group != widgetsGVR.Group || crd.Spec.Names.Plural != widgetsGVR.Resource {
			continue
		}
		if crd.Spec.Names.Kind != widgetKind || crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
			return fmt.Errorf("%s: kind %q, scope %s; want %s, %s", crd.Name, crd.Spec.Names.Kind, crd.Spec.Scope,
				widgetKind, apiextensionsv1.NamespaceScoped)
		}
		for _, v := range crd.Spec.Versions {
			if v.Name != widgetsGVR.Version {
				continue
			}
			if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				return fmt.Errorf("%s: version %s not served or without a schema", crd.Name, v.Name)
			}
			spec := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties
			for field, typ := range map[string]string{"size": "integer", "color": "string", "notes": "array"} {
				if spec[field].Type != typ {
					return fmt.Errorf("%s: spec.%s is %q, want %q", crd.Name, field, spec[field].Type, typ)
				}
			}
			return nil
		}
		return fmt.Errorf("%s: no version %s", crd.Name, widgetsGVR.Version)
	}
	return fmt.Errorf("no CRD of %s", widgetsGVR.GroupResource())
}

// Files of the resources suite in -out, beside the other suites'.
const (
	resourcesMarkdownFile = "resources.md"
	resourcesCSVFile      = "resources.csv"
	resourcesRunsFile     = "resources-runs.jsonl"
)
