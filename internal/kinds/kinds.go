// Package kinds is the table of the kinds a reader can watch: for each one, which RetrieveType bit
// enables it, where it is served, and how to make an empty object of it.
package kinds

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/reader"
)

// ID tells apart the kinds of one reader; the filter, stats and metrics are keyed by it. A built-in
// kind's ID is its ObjectType; a resource named with WithResources gets one above them.
type ID uint8

const (
	// IDs bounds ID values: an array indexed by ID has this length.
	IDs = 256
	// firstResourceID is the ID of the first resource named with WithResources.
	firstResourceID = ID(reader.OTResource) + 1
	// MaxResources is how many resources one reader may read besides the built-in kinds.
	MaxResources = IDs - int(firstResourceID)
)

// Kind describes one resource a stream watches.
type Kind struct {
	// ID tells this kind apart from the others of the reader.
	ID ID
	// Bit is the RetrieveType bit that enables this kind; 0 for a resource of WithResources.
	Bit reader.RetrieveType
	// Object is the ObjectType of the entries this kind produces.
	Object reader.ObjectType
	// Resource is the group, version and plural resource name, e.g. core/v1 "pods".
	Resource schema.GroupVersionResource
	// Namespaced says whether objects live in namespaces (WithNamespaces then reads them per namespace).
	Namespaced bool

	client func(*kubernetes.Clientset) rest.Interface
	lazy   *lazySerializer // what client decodes protobuf with; nil for a kind read as JSON
	empty  func() metaObject
	// toEntry turns a decoded object into what an entry holds; nil: the object as decoded.
	toEntry func(runtime.Object) (runtime.Object, error)
}

// metaObject is what every kind's Go type is: a runtime.Object with ObjectMeta.
type metaObject interface {
	runtime.Object
	metav1.Object
}

// Client returns a REST client for this kind's group and version, or nil when the clientset was not
// built with one (for example a zero kubernetes.Clientset). It shares the clientset's HTTP client
// (transport, credentials, connections) and rate limiter, but not its content type: a built-in kind
// is asked for as protobuf whatever the rest.Config says, because its objects are then decoded only
// when delivered (Lazy); a custom resource is JSON.
func (k Kind) Client(cs *kubernetes.Clientset) rest.Interface {
	c := k.client(cs)
	if c == nil {
		return nil
	}
	// A nil *rest.RESTClient inside a non-nil interface is as unusable as nil.
	if rc, ok := c.(*rest.RESTClient); ok && rc == nil {
		return nil
	}
	return c
}

// Tombstone returns an empty object of this kind carrying only the identity a synthesized delete
// promises: namespace, name, UID and resourceVersion.
func (k Kind) Tombstone(namespace, name string, uid types.UID, resourceVersion string) runtime.Object {
	obj := k.empty()
	obj.SetNamespace(namespace)
	obj.SetName(name)
	obj.SetUID(uid)
	obj.SetResourceVersion(resourceVersion)
	return obj
}

// String names the resource, e.g. "pods" or "clusterroles.rbac.authorization.k8s.io".
func (k Kind) String() string { return k.Resource.GroupResource().String() }

// Label names the kind in logs and metrics: its ObjectType (e.g. "Pod"), or for a resource of
// WithResources the resource (e.g. "widgets.stable.example.com").
func (k Kind) Label() string {
	if k.Object == reader.OTResource {
		return k.String()
	}
	return k.Object.String()
}

// Entry returns the entry that delivers obj, an object this kind's client decoded (a *Lazy is
// decoded now).
func (k Kind) Entry(change reader.ChangeType, obj runtime.Object) (reader.Entry, error) {
	obj, err := Decoded(obj)
	if err != nil {
		return reader.Entry{}, fmt.Errorf("%s: %w", k, err)
	}
	if k.Object != reader.OTResource {
		return reader.NewEntry(change, k.Object, obj), nil
	}
	if k.toEntry != nil {
		if obj, err = k.toEntry(obj); err != nil {
			return reader.Entry{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	return reader.NewResourceEntry(change, k.Resource, obj), nil
}

func core(cs *kubernetes.Clientset) rest.Interface       { return cs.CoreV1().RESTClient() }
func apps(cs *kubernetes.Clientset) rest.Interface       { return cs.AppsV1().RESTClient() }
func rbac(cs *kubernetes.Clientset) rest.Interface       { return cs.RbacV1().RESTClient() }
func networking(cs *kubernetes.Clientset) rest.Interface { return cs.NetworkingV1().RESTClient() }
func discovery(cs *kubernetes.Clientset) rest.Interface  { return cs.DiscoveryV1().RESTClient() }

// builtin is one row of table; group returns the clientset's client of the kind's group version.
func builtin(bit reader.RetrieveType, o reader.ObjectType, namespaced bool, group func(*kubernetes.Clientset) rest.Interface, empty func() metaObject) Kind {
	gvr := o.Resource()
	k := Kind{ID: ID(o), Bit: bit, Object: o, Resource: gvr, Namespaced: namespaced, empty: empty}
	k.readProtobuf(gvr.GroupVersion().WithKind(kindOf(empty())), group)
	return k
}

// readProtobuf makes k's client ask for protobuf (JSON accepted) and decode objects of gvk, k's
// kind, lazily (Lazy): k is a built-in resource. When the clientset's clients are not REST clients
// of client-go's own (kubernetes.New around another rest.Interface), the reader cannot make one
// like them: group, if not nil, then gives the clientset's client for k, which decodes every object.
func (k *Kind) readProtobuf(gvk schema.GroupVersionKind, group func(*kubernetes.Clientset) rest.Interface) {
	lazy := &lazySerializer{NegotiatedSerializer: scheme.Codecs.WithoutConversion(), gvk: gvk}
	k.lazy = lazy
	k.client = func(cs *kubernetes.Clientset) rest.Interface {
		if c := clientFor(cs, gvk.GroupVersion(), protobufAccept, lazy); c != nil || group == nil || cs == nil {
			return c
		}
		return group(cs)
	}
}

// ProtobufDecoder returns the decoder k's client reads protobuf with, which decodes an object of
// k's kind into a *Lazy; ok is false for a kind read as JSON.
func (k Kind) ProtobufDecoder() (d runtime.Decoder, ok bool) {
	if k.lazy == nil {
		return nil, false
	}
	info, ok := runtime.SerializerInfoForMediaType(k.lazy.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		return nil, false
	}
	return k.lazy.DecoderToVersion(info.Serializer, nil), true
}

// kindOf names the kind of a built-in object, as client-go's scheme registers its Go type.
func kindOf(obj runtime.Object) string {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		panic(fmt.Sprintf("kinds: %T is not in client-go's scheme: %v", obj, err)) // the table is wrong
	}
	return gvks[0].Kind
}

// table lists every kind, in the order streams are started.
var table = [...]Kind{
	builtin(reader.RTNode, reader.OTNode, false, core, func() metaObject { return &corev1.Node{} }),
	builtin(reader.RTPod, reader.OTPod, true, core, func() metaObject { return &corev1.Pod{} }),
	builtin(reader.RTNamespace, reader.OTNamespace, false, core, func() metaObject { return &corev1.Namespace{} }),
	builtin(reader.RTPersistentVolume, reader.OTPersistentVolume, false, core, func() metaObject { return &corev1.PersistentVolume{} }),
	builtin(reader.RTRBAC, reader.OTRole, true, rbac, func() metaObject { return &rbacv1.Role{} }),
	builtin(reader.RTRBAC, reader.OTRoleBinding, true, rbac, func() metaObject { return &rbacv1.RoleBinding{} }),
	builtin(reader.RTRBAC, reader.OTClusterRole, false, rbac, func() metaObject { return &rbacv1.ClusterRole{} }),
	builtin(reader.RTRBAC, reader.OTClusterRoleBinding, false, rbac, func() metaObject { return &rbacv1.ClusterRoleBinding{} }),
	builtin(reader.RTService, reader.OTService, true, core, func() metaObject { return &corev1.Service{} }),
	builtin(reader.RTDeployment, reader.OTDeployment, true, apps, func() metaObject { return &appsv1.Deployment{} }),
	builtin(reader.RTIngressController, reader.OTIngressController, true, networking, func() metaObject { return &networkingv1.Ingress{} }),
	builtin(reader.RTEndpoint, reader.OTEndpoint, true, core, func() metaObject { return &corev1.Endpoints{} }),
	builtin(reader.RTEndpointSlice, reader.OTEndpointSlice, true, discovery, func() metaObject { return &discoveryv1.EndpointSlice{} }),
}

// For returns the kinds enabled by t, in table order.
func For(t reader.RetrieveType) []Kind {
	var out []Kind
	for _, k := range table {
		if t&k.Bit != 0 {
			out = append(out, k)
		}
	}
	return out
}

// ByObject returns the built-in kind whose entries have ObjectType o.
func ByObject(o reader.ObjectType) (Kind, bool) {
	for _, k := range table {
		if k.Object == o {
			return k, true
		}
	}
	return Kind{}, false
}

// ByResource returns the built-in kind served at gvr.
func ByResource(gvr schema.GroupVersionResource) (Kind, bool) {
	for _, k := range table {
		if k.Resource == gvr {
			return k, true
		}
	}
	return Kind{}, false
}
