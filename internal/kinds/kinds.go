// Package kinds is the table of the kinds a reader can watch: for each one, which RetrieveType bit
// enables it, where it is served, and how to make an empty object of it.
package kinds

import (
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
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/reader"
)

// Kind describes one resource a stream watches.
type Kind struct {
	// Bit is the RetrieveType bit that enables this kind.
	Bit reader.RetrieveType
	// Object is the ObjectType of the entries this kind produces.
	Object reader.ObjectType
	// Resource is the group, version and plural resource name, e.g. core/v1 "pods".
	Resource schema.GroupVersionResource
	// Namespaced says whether objects live in namespaces (WithNamespaces then reads them per namespace).
	Namespaced bool

	client func(*kubernetes.Clientset) rest.Interface
	empty  func() metaObject
}

// metaObject is what every kind's Go type is: a runtime.Object with ObjectMeta.
type metaObject interface {
	runtime.Object
	metav1.Object
}

// Client returns the REST client that serves this kind's group and version, or nil when the
// clientset was not built with one (for example a zero kubernetes.Clientset).
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

func core(cs *kubernetes.Clientset) rest.Interface       { return cs.CoreV1().RESTClient() }
func apps(cs *kubernetes.Clientset) rest.Interface       { return cs.AppsV1().RESTClient() }
func rbac(cs *kubernetes.Clientset) rest.Interface       { return cs.RbacV1().RESTClient() }
func networking(cs *kubernetes.Clientset) rest.Interface { return cs.NetworkingV1().RESTClient() }
func discovery(cs *kubernetes.Clientset) rest.Interface  { return cs.DiscoveryV1().RESTClient() }

// table lists every kind, in the order streams are started.
var table = [...]Kind{
	{reader.RTNode, reader.OTNode, corev1.SchemeGroupVersion.WithResource("nodes"), false, core, func() metaObject { return &corev1.Node{} }},
	{reader.RTPod, reader.OTPod, corev1.SchemeGroupVersion.WithResource("pods"), true, core, func() metaObject { return &corev1.Pod{} }},
	{reader.RTNamespace, reader.OTNamespace, corev1.SchemeGroupVersion.WithResource("namespaces"), false, core, func() metaObject { return &corev1.Namespace{} }},
	{reader.RTPersistentVolume, reader.OTPersistentVolume, corev1.SchemeGroupVersion.WithResource("persistentvolumes"), false, core, func() metaObject { return &corev1.PersistentVolume{} }},
	{reader.RTRBAC, reader.OTRole, rbacv1.SchemeGroupVersion.WithResource("roles"), true, rbac, func() metaObject { return &rbacv1.Role{} }},
	{reader.RTRBAC, reader.OTRoleBinding, rbacv1.SchemeGroupVersion.WithResource("rolebindings"), true, rbac, func() metaObject { return &rbacv1.RoleBinding{} }},
	{reader.RTRBAC, reader.OTClusterRole, rbacv1.SchemeGroupVersion.WithResource("clusterroles"), false, rbac, func() metaObject { return &rbacv1.ClusterRole{} }},
	{reader.RTRBAC, reader.OTClusterRoleBinding, rbacv1.SchemeGroupVersion.WithResource("clusterrolebindings"), false, rbac, func() metaObject { return &rbacv1.ClusterRoleBinding{} }},
	{reader.RTService, reader.OTService, corev1.SchemeGroupVersion.WithResource("services"), true, core, func() metaObject { return &corev1.Service{} }},
	{reader.RTDeployment, reader.OTDeployment, appsv1.SchemeGroupVersion.WithResource("deployments"), true, apps, func() metaObject { return &appsv1.Deployment{} }},
	{reader.RTIngressController, reader.OTIngressController, networkingv1.SchemeGroupVersion.WithResource("ingresses"), true, networking, func() metaObject { return &networkingv1.Ingress{} }},
	{reader.RTEndpoint, reader.OTEndpoint, corev1.SchemeGroupVersion.WithResource("endpoints"), true, core, func() metaObject { return &corev1.Endpoints{} }},
	{reader.RTEndpointSlice, reader.OTEndpointSlice, discoveryv1.SchemeGroupVersion.WithResource("endpointslices"), true, discovery, func() metaObject { return &discoveryv1.EndpointSlice{} }},
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

// ByObject returns the kind whose entries have ObjectType o.
func ByObject(o reader.ObjectType) (Kind, bool) {
	for _, k := range table {
		if k.Object == o {
			return k, true
		}
	}
	return Kind{}, false
}
