package bench

import "fmt"

// resourcesLabels are the column names of the resources variants.
var resourcesLabels = map[string]string{
	VariantResourcesReader:   "reader",
	VariantResourcesDynamic:  "dynamic informer",
	VariantResourcesMetadata: "metadata informer",
	VariantResourcesFloor:    "floor",
}

// resourcesLayout is the resources suite's report: one table of every variant, with the ratios
// that say what the reader costs against the dynamic informer, what metadata only would save, and
// what decoding costs above the floor.
var resourcesLayout = syncLayout{
	intro: "Resources suite: medians of %s per variant and N, each run in its own process, Widgets only " +
		"(a custom resource: the server sends it as JSON). " + bytesNote,
	counted:  "widgets",
	variants: resourcesVariants,
	labels:   resourcesLabels,
	sections: []scopeSection{{
		Title: "Custom resources: `WithResources(" + widgetsGVR.Resource + "." + widgetsGVR.Group + ")`",
		Note: fmt.Sprintf("*reader*: `watchlist.New(ctx, cs, 0, WithResources(%s))`, every Widget consumed, none kept. "+
			"*dynamic informer*: client-go's dynamicinformer for %[1]s, whole objects as unstructured, managedFields kept, "+
			"a handler that does nothing. *metadata informer*: client-go's metadatainformer for %[1]s, PartialObjectMetadata "+
			"(the reader has no metadata only for WithResources). Both informers are awaited with cache.WaitFor on HasSyncedChecker. "+
			"*floor*: the reader's WatchList request for %[1]s (JSON), the body split into its event lines and counted, no object parsed "+
			"(bookmarks decoded to find k8s.io/initial-events-end).", widgetsGVR.GroupResource()),
		Variants: resourcesVariants,
		Ratios: []scopeRatio{
			{VariantResourcesReader, VariantResourcesDynamic},
			{VariantResourcesMetadata, VariantResourcesDynamic},
			{VariantResourcesReader, VariantResourcesFloor},
			{VariantResourcesDynamic, VariantResourcesFloor},
		},
	}},
}

// SummarizeResources takes the median of every metric over the runs of each variant of the
// resources suite at each N.
func SummarizeResources(results []ScopeResult) ScopeTable {
	return summarizeSync(results, &resourcesLayout)
}
