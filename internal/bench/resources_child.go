package bench

import (
	"context"
	"fmt"
	"path"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/watchlist-go/watchlist"
)

// newResourcesSubject builds the subject of resources variant v on restCfg.
func newResourcesSubject(v string, restCfg *rest.Config) (syncSubject, error) {
	switch v {
	case VariantResourcesDynamic:
		return newResourceInformer(restCfg, widgetsGVR, dynamic.NewForConfig, func(c *dynamic.DynamicClient) resourceInformerFactory {
			return dynamicinformer.NewDynamicSharedInformerFactory(c, 0)
		})
	case VariantResourcesMetadata:
		return newMetadataInformer(restCfg, widgetsGVR)
	case VariantResourcesReader, VariantResourcesFloor:
		cs, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return nil, fmt.Errorf("build clientset: %w", err)
		}
		if v == VariantResourcesReader {
			return &readerSubject{cs: cs, lags: &lagRecorder{}, opts: []watchlist.Option{watchlist.WithResources(widgetsGVR)}}, nil
		}
		// The reader's request for a custom resource (internal/kinds.Resource): JSON, all the server
		// has for one, through the clientset's HTTP client.
		req := cs.CoreV1().RESTClient().Get().AbsPath(resourcePath(widgetsGVR)).SetHeader("Accept", jsonContentType)
		return &floorSubject{what: widgetsGVR.GroupResource().String(), req: req, read: readInitialEventsJSON}, nil
	}
	return nil, fmt.Errorf("unknown resources variant %q", v)
}

// resourcePath is where the objects of gvr are served, in every namespace.
func resourcePath(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return path.Join("/api", gvr.Version, gvr.Resource)
	}
	return path.Join("/apis", gvr.Group, gvr.Version, gvr.Resource)
}

// newMetadataInformer returns a subject that is client-go's metadata informer for gvr.
func newMetadataInformer(restCfg *rest.Config, gvr schema.GroupVersionResource) (syncSubject, error) {
	return newResourceInformer(restCfg, gvr, metadata.NewForConfig, func(c metadata.Interface) resourceInformerFactory {
		return metadatainformer.NewSharedInformerFactory(c, 0)
	})
}

// newResourceInformer returns a subject that is the informer of gvr from the factory newFactory
// makes of the client newClient builds on restCfg: client-go's dynamic or metadata informer.
func newResourceInformer[C any](restCfg *rest.Config, gvr schema.GroupVersionResource,
	newClient func(*rest.Config) (C, error), newFactory func(C) resourceInformerFactory,
) (syncSubject, error) {
	c, err := newClient(restCfg)
	if err != nil {
		return nil, fmt.Errorf("build the client of the informer of %s: %w", gvr.GroupResource(), err)
	}
	return &resourceInformerSubject{gvr: gvr, newFactory: func() resourceInformerFactory { return newFactory(c) }}, nil
}

// resourceInformerFactory is what client-go's dynamic and metadata informer factories have in
// common.
type resourceInformerFactory interface {
	ForResource(gvr schema.GroupVersionResource) informers.GenericInformer
	Start(stopCh <-chan struct{})
	Shutdown()
}

// resourceInformerSubject is the informer of one resource from a dynamic or a metadata informer
// factory, with a handler that does nothing. Its sync is awaited as the typed factory's
// WaitForCacheSyncWithContext does (cache.WaitFor on HasSyncedChecker), not with these factories'
// WaitForCacheSync, which polls every 100 ms.
type resourceInformerSubject struct {
	gvr        schema.GroupVersionResource
	newFactory func() resourceInformerFactory

	startedInformer
}

func (s *resourceInformerSubject) start(ctx context.Context) error {
	s.stopCh = make(chan struct{})
	f := s.newFactory()
	s.inf, s.shutdown = f.ForResource(s.gvr).Informer(), f.Shutdown
	if err := s.addHandler(); err != nil {
		return err
	}
	f.Start(s.stopCh)
	if !cache.WaitFor(ctx, "", s.inf.HasSyncedChecker()) {
		return fmt.Errorf("informer of %s not synced: %w", s.gvr.GroupResource(), context.Cause(ctx))
	}
	return nil
}
