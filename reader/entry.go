package reader

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Entry is one change to one object. It is small and passed by value; the object it holds belongs to
// the receiver (the reader keeps no reference to it).
type Entry struct {
	change   ChangeType
	kind     ObjectType
	obj      runtime.Object
	resource *schema.GroupVersionResource // OTResource's; nil for the built-in kinds
}

// NewEntry returns an Entry of a built-in kind. Readers build entries; consumers may use it to
// build entries in their own tests.
func NewEntry(change ChangeType, kind ObjectType, obj runtime.Object) Entry {
	return Entry{change: change, kind: kind, obj: obj}
}

// NewResourceEntry returns an Entry of kind OTResource: an object of resource, as the option
// WithResources delivers them.
func NewResourceEntry(change ChangeType, resource schema.GroupVersionResource, obj runtime.Object) Entry {
	return Entry{change: change, kind: OTResource, obj: obj, resource: &resource}
}

// ChangeType says whether the object was added, updated or deleted.
func (e Entry) ChangeType() ChangeType { return e.change }

// ObjectType says which kind of object Object holds.
func (e Entry) ObjectType() ObjectType { return e.kind }

// Object is the object itself: its concrete type is given by ObjectType (e.g. *corev1.Pod), and is
// *unstructured.Unstructured for OTResource.
func (e Entry) Object() runtime.Object { return e.obj }

// Resource is the group, version and resource the object was read from, for every entry: e.g.
// core/v1 "pods" for a Pod, or the one given to WithResources.
func (e Entry) Resource() schema.GroupVersionResource {
	if e.resource != nil {
		return *e.resource
	}
	return e.kind.Resource()
}

// UID is the object's UID, or "" when the entry holds no object.
func (e Entry) UID() types.UID {
	m, err := meta.Accessor(e.obj)
	if err != nil {
		return ""
	}
	return m.GetUID()
}

// String describes the entry in one line: change, kind (for OTResource, the resource, e.g.
// "widgets.stable.example.com"), namespace/name and resourceVersion.
func (e Entry) String() string {
	kind := e.kind.String()
	if e.resource != nil {
		kind = e.resource.GroupResource().String()
	}
	m, err := meta.Accessor(e.obj)
	if err != nil {
		return fmt.Sprintf("%s %s <no object>", e.change, kind)
	}
	name := m.GetName()
	if ns := m.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return fmt.Sprintf("%s %s %s rv=%s", e.change, kind, name, m.GetResourceVersion())
}

// Node returns the object as a Node, or an error when the entry holds another kind.
func (e Entry) Node() (*corev1.Node, error) { return as[corev1.Node](e, OTNode) }

// Pod returns the object as a Pod, or an error when the entry holds another kind.
func (e Entry) Pod() (*corev1.Pod, error) { return as[corev1.Pod](e, OTPod) }

// Namespace returns the object as a Namespace, or an error when the entry holds another kind.
func (e Entry) Namespace() (*corev1.Namespace, error) { return as[corev1.Namespace](e, OTNamespace) }

// PersistentVolume returns the object as a PersistentVolume, or an error when the entry holds
// another kind.
func (e Entry) PersistentVolume() (*corev1.PersistentVolume, error) {
	return as[corev1.PersistentVolume](e, OTPersistentVolume)
}

// ClusterRole returns the object as a ClusterRole, or an error when the entry holds another kind.
func (e Entry) ClusterRole() (*rbacv1.ClusterRole, error) {
	return as[rbacv1.ClusterRole](e, OTClusterRole)
}

// ClusterRoleBinding returns the object as a ClusterRoleBinding, or an error when the entry holds
// another kind.
func (e Entry) ClusterRoleBinding() (*rbacv1.ClusterRoleBinding, error) {
	return as[rbacv1.ClusterRoleBinding](e, OTClusterRoleBinding)
}

// Role returns the object as a Role, or an error when the entry holds another kind.
func (e Entry) Role() (*rbacv1.Role, error) { return as[rbacv1.Role](e, OTRole) }

// RoleBinding returns the object as a RoleBinding, or an error when the entry holds another kind.
func (e Entry) RoleBinding() (*rbacv1.RoleBinding, error) {
	return as[rbacv1.RoleBinding](e, OTRoleBinding)
}

// Service returns the object as a Service, or an error when the entry holds another kind.
func (e Entry) Service() (*corev1.Service, error) { return as[corev1.Service](e, OTService) }

// Deployment returns the object as a Deployment, or an error when the entry holds another kind.
func (e Entry) Deployment() (*appsv1.Deployment, error) {
	return as[appsv1.Deployment](e, OTDeployment)
}

// IngressController returns the object as an Ingress, or an error when the entry holds another kind.
func (e Entry) IngressController() (*networkingv1.Ingress, error) {
	return as[networkingv1.Ingress](e, OTIngressController)
}

// Endpoint returns the object as an Endpoints, or an error when the entry holds another kind.
func (e Entry) Endpoint() (*corev1.Endpoints, error) { return as[corev1.Endpoints](e, OTEndpoint) }

// EndpointSlice returns the object as an EndpointSlice, or an error when the entry holds another
// kind.
func (e Entry) EndpointSlice() (*discoveryv1.EndpointSlice, error) {
	return as[discoveryv1.EndpointSlice](e, OTEndpointSlice)
}

// as returns e's object as *T when e holds kind want.
func as[T any](e Entry, want ObjectType) (*T, error) {
	if e.kind != want {
		return nil, fmt.Errorf("entry holds a %s, not a %s", e.kind, want)
	}
	obj, ok := any(e.obj).(*T)
	if !ok || obj == nil {
		return nil, fmt.Errorf("entry of kind %s holds %T, not %T", e.kind, e.obj, obj)
	}
	return obj, nil
}
