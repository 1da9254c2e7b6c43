package kinds

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/reader"
)

// Resource returns the kind that reads gvr, the i-th resource named with WithResources, as the
// server's discovery describes it (served is its entry in the group version's resource list).
// Entries hold *unstructured.Unstructured. A built-in resource (one client-go has Go types for) is
// read as protobuf and converted when delivered; any other is read as JSON, which is all the server
// has for custom resources.
func Resource(i int, gvr schema.GroupVersionResource, served metav1.APIResource) (Kind, error) {
	if i < 0 || i >= MaxResources {
		return Kind{}, fmt.Errorf("%s: at most %d resources", gvr.GroupResource(), MaxResources)
	}
	gvk := gvr.GroupVersion().WithKind(served.Kind)
	k := Kind{
		ID:         firstResourceID + ID(i),
		Object:     reader.OTResource,
		Resource:   gvr,
		Namespaced: served.Namespaced,
		empty: func() metaObject {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			return u
		},
	}
	if scheme.Scheme.Recognizes(gvk) {
		k.readProtobuf(gvk, nil)
		k.toEntry = func(obj runtime.Object) (runtime.Object, error) { return toUnstructured(obj, gvk) }
		return k, nil
	}
	k.client = func(cs *kubernetes.Clientset) rest.Interface {
		return clientFor(cs, gvr.GroupVersion(), "application/json", dynamic.ConfigFor(&rest.Config{}).NegotiatedSerializer)
	}
	return k, nil
}

// protobufAccept is what requests for a built-in kind accept: protobuf, or JSON from a server that
// has no protobuf for it.
const protobufAccept = "application/vnd.kubernetes.protobuf,application/json"

// toUnstructured converts a typed object to the unstructured one an entry of WithResources holds.
func toUnstructured(obj runtime.Object, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u, nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// clientFor returns a REST client for gv that asks for accept and decodes with serializers,
// sharing the clientset's HTTP client (and so its transport, credentials and connections) and rate
// limiter; nil when the clientset has no core REST client to share them with.
func clientFor(cs *kubernetes.Clientset, gv schema.GroupVersion, accept string, serializers runtime.NegotiatedSerializer) rest.Interface {
	if cs == nil {
		return nil
	}
	rc, ok := cs.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil {
		return nil
	}
	// The core client's base URL is the server's plus /api/v1: keep what comes before it (a
	// proxy's path prefix, for one).
	full := rc.Get().URL()
	if !strings.HasSuffix(full.Path, "/api/v1") {
		return nil // not the core client NewForConfig makes: its base cannot be told apart
	}
	base := &url.URL{Scheme: full.Scheme, Host: full.Host, User: full.User, Path: strings.TrimSuffix(full.Path, "/api/v1")}
	c, err := rest.NewRESTClient(base, apiPath(gv), rest.ClientContentConfig{
		AcceptContentTypes: accept,
		ContentType:        strings.Split(accept, ",")[0],
		GroupVersion:       gv,
		Negotiator:         runtime.NewClientNegotiator(serializers, gv),
	}, rc.GetRateLimiter(), rc.Client)
	if err != nil {
		return nil
	}
	return c
}

// apiPath is where gv is served: /api/v1 for the core group, /apis/<group>/<version> otherwise.
func apiPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return path.Join("/api", gv.Version)
	}
	return path.Join("/apis", gv.Group, gv.Version)
}
