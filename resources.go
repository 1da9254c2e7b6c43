package watchlist

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// WithResources reads every object of each resource too, built-in or custom (for example
// {Version: "v1", Resource: "configmaps"} or {Group: "stable.example.com", Version: "v1",
// Resource: "widgets"}), one stream per resource, with every promise of the built-in kinds. Its
// entries have ObjectType OTResource, name their resource in Entry.Resource, and hold an
// *unstructured.Unstructured. Built-in resources are read as protobuf, custom ones as JSON.
// WithNamespaces applies to the namespaced ones; selectors and WithMetadataOnly, which name kinds by
// RetrieveType bit, do not. retrieveTypes may then be 0.
//
// Run asks the server's discovery for each resource: one it does not serve (or that cannot be
// listed and watched) makes Run fail naming it. A resource is read as long as the reader runs: a
// CRD deleted meanwhile ends in deletes of all its objects, logged once; the reader goes on with
// the rest and reads the resource again if it comes back. A CRD created later is not read unless
// named here. An empty list, a resource without a version or a name, a resource given twice (in
// any versions: they are the same objects), a resource an enabled RetrieveType bit already reads,
// or more than 241 resources makes New fail. Two resources that serve the same objects under two
// names (core/v1 events and events.k8s.io events) cannot be told apart: do not read both.
func WithResources(resources ...schema.GroupVersionResource) Option {
	return func(r *Reader) error {
		if len(resources) == 0 {
			return errors.New("WithResources: no resource")
		}
		for _, gvr := range resources {
			if err := checkResource(gvr); err != nil {
				return fmt.Errorf("WithResources: %w", err)
			}
			for _, other := range r.resources {
				if other.GroupResource() == gvr.GroupResource() {
					// Two versions of one resource are the same objects (the same UIDs): their
					// streams would take each other's objects for gone.
					return fmt.Errorf("WithResources: %s given twice (as %s and %s)", gvr.GroupResource(), other.Version, gvr.Version)
				}
			}
			for _, k := range r.kinds {
				if k.Resource.GroupResource() == gvr.GroupResource() {
					return fmt.Errorf("WithResources: %s is read by %s already", describe(gvr), k.Bit)
				}
			}
			r.resources = append(r.resources, gvr)
		}
		if len(r.resources) > kinds.MaxResources {
			return fmt.Errorf("WithResources: %d resources, at most %d", len(r.resources), kinds.MaxResources)
		}
		return nil
	}
}

// checkResource says what is wrong with a resource's name, if anything.
func checkResource(gvr schema.GroupVersionResource) error {
	switch {
	case gvr.Resource == "":
		return fmt.Errorf("%s: no resource name", describe(gvr))
	case gvr.Version == "":
		return fmt.Errorf("%s: no version", describe(gvr))
	}
	if msgs := validation.IsDNS1123Label(gvr.Resource); len(msgs) > 0 {
		return fmt.Errorf("%s: resource %q: %s", describe(gvr), gvr.Resource, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Label(gvr.Version); len(msgs) > 0 {
		return fmt.Errorf("%s: version %q: %s", describe(gvr), gvr.Version, strings.Join(msgs, "; "))
	}
	if gvr.Group != "" {
		if msgs := validation.IsDNS1123Subdomain(gvr.Group); len(msgs) > 0 {
			return fmt.Errorf("%s: group %q: %s", describe(gvr), gvr.Group, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// describe names a resource as users write it: "configmaps (v1)", "widgets.stable.example.com (v1)".
func describe(gvr schema.GroupVersionResource) string {
	return fmt.Sprintf("%s (%s)", gvr.GroupResource(), gvr.GroupVersion())
}

// discoverResources asks the server how each resource of WithResources is served, and returns
// their kinds. It fails, naming the resource, on one the server does not serve or that cannot be
// listed and watched.
func (r *Reader) discoverResources(ctx context.Context) ([]kinds.Kind, error) {
	served := make(map[schema.GroupVersion]*metav1.APIResourceList)
	var out []kinds.Kind
	for i, gvr := range r.resources {
		gv := gvr.GroupVersion()
		list, ok := served[gv]
		if !ok {
			var err error
			if list, err = r.discoverGroupVersion(ctx, gv); err != nil {
				return nil, fmt.Errorf("resource %s: %w", describe(gvr), err)
			}
			served[gv] = list
		}
		res, err := findResource(list, gvr)
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", describe(gvr), err)
		}
		k, err := kinds.Resource(i, gvr, res)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// discoverGroupVersion fetches the resources the server serves in gv. What retrying may fix (a
// connection error, 429, 5xx) is retried with the streams' backoff until ctx ends; not served,
// Forbidden and Unauthorized are not.
func (r *Reader) discoverGroupVersion(ctx context.Context, gv schema.GroupVersion) (*metav1.APIResourceList, error) {
	d := r.clientset.Discovery()
	if d == nil || d.RESTClient() == nil {
		return nil, errors.New("the clientset has no discovery client (build it with kubernetes.NewForConfig)")
	}
	path := "/apis/" + gv.String()
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	delay := r.timing.Backoff.DelayFunc()
	for {
		list := &metav1.APIResourceList{}
		err := d.RESTClient().Get().AbsPath(path).Do(ctx).Into(list)
		switch {
		case err == nil:
			return list, nil
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("the server does not serve %s: %w", gv, err)
		case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err), apierrors.IsBadRequest(err), ctx.Err() != nil:
			return nil, err
		}
		pause := delay()
		r.log.Error(err, "discovery failed; retrying", "groupVersion", gv.String(), "after", pause.String())
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// findResource returns the entry of gvr in its group version's list, if it can be listed and watched.
func findResource(list *metav1.APIResourceList, gvr schema.GroupVersionResource) (metav1.APIResource, error) {
	var names []string
	for _, res := range list.APIResources {
		if res.Name != gvr.Resource {
			if !strings.Contains(res.Name, "/") {
				names = append(names, res.Name)
			}
			continue
		}
		if res.Kind == "" {
			return metav1.APIResource{}, errors.New("the server's discovery gives it no kind")
		}
		for _, verb := range []string{"list", "watch"} {
			if !slices.Contains(res.Verbs, verb) {
				return metav1.APIResource{}, fmt.Errorf("the server does not %s it (verbs: %s)", verb, strings.Join(res.Verbs, ", "))
			}
		}
		return res, nil
	}
	return metav1.APIResource{}, fmt.Errorf("not served: %s has %s", gvr.GroupVersion(), strings.Join(names, ", "))
}

// addResources asks the server about the resources of WithResources, and adds their kinds and
// streams. Run calls it before any set starts.
func (r *Reader) addResources(ctx context.Context) error {
	if len(r.resources) == 0 {
		return nil
	}
	ks, err := r.discoverResources(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, ks...)
	return r.planStreams(ks)
}
