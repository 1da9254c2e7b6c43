package testenv

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	apps "k8s.io/client-go/kubernetes/typed/apps/v1"
	core "k8s.io/client-go/kubernetes/typed/core/v1"
	discovery "k8s.io/client-go/kubernetes/typed/discovery/v1"
	networking "k8s.io/client-go/kubernetes/typed/networking/v1"
	rbac "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The kinds a reader watches, as accepted by NewObject, Get and Snapshot.
const (
	KindNode               = "Node"
	KindPod                = "Pod"
	KindNamespace          = "Namespace"
	KindPersistentVolume   = "PersistentVolume"
	KindRole               = "Role"
	KindRoleBinding        = "RoleBinding"
	KindClusterRole        = "ClusterRole"
	KindClusterRoleBinding = "ClusterRoleBinding"
	KindService            = "Service"
	KindDeployment         = "Deployment"    // apps/v1
	KindIngress            = "Ingress"       // networking.k8s.io/v1
	KindEndpoints          = "Endpoints"     // core/v1
	KindEndpointSlice      = "EndpointSlice" // discovery.k8s.io/v1
)

// kube shortens the rows of kindTable.
type kube = kubernetes.Interface

// kindTable is the one table of kinds: each row ties a kind's name, scope, fixture constructor
// and typed client together.
func kindTable() []kind {
	return []kind{
		clusterScoped(KindNode, newNode, func(cs kube) core.NodeInterface { return cs.CoreV1().Nodes() }),
		namespaced(KindPod, newPod, func(cs kube, ns string) core.PodInterface { return cs.CoreV1().Pods(ns) }),
		clusterScoped(KindNamespace, newNamespace, func(cs kube) core.NamespaceInterface { return cs.CoreV1().Namespaces() }),
		clusterScoped(KindPersistentVolume, newPersistentVolume, func(cs kube) core.PersistentVolumeInterface { return cs.CoreV1().PersistentVolumes() }),
		namespaced(KindRole, newRole, func(cs kube, ns string) rbac.RoleInterface { return cs.RbacV1().Roles(ns) }),
		namespaced(KindRoleBinding, newRoleBinding, func(cs kube, ns string) rbac.RoleBindingInterface { return cs.RbacV1().RoleBindings(ns) }),
		clusterScoped(KindClusterRole, newClusterRole, func(cs kube) rbac.ClusterRoleInterface { return cs.RbacV1().ClusterRoles() }),
		clusterScoped(KindClusterRoleBinding, newClusterRoleBinding, func(cs kube) rbac.ClusterRoleBindingInterface { return cs.RbacV1().ClusterRoleBindings() }),
		namespaced(KindService, newService, func(cs kube, ns string) core.ServiceInterface { return cs.CoreV1().Services(ns) }),
		namespaced(KindDeployment, newDeployment, func(cs kube, ns string) apps.DeploymentInterface { return cs.AppsV1().Deployments(ns) }),
		namespaced(KindIngress, newIngress, func(cs kube, ns string) networking.IngressInterface { return cs.NetworkingV1().Ingresses(ns) }),
		namespaced(KindEndpoints, newEndpoints, func(cs kube, ns string) core.EndpointsInterface { return cs.CoreV1().Endpoints(ns) }),
		namespaced(KindEndpointSlice, newEndpointSlice, func(cs kube, ns string) discovery.EndpointSliceInterface { return cs.DiscoveryV1().EndpointSlices(ns) }),
	}
}

// Kinds returns every kind the package knows, in a fixed order.
func Kinds() []string {
	table := kindTable()
	names := make([]string, len(table))
	for i, k := range table {
		names[i] = k.name
	}
	return names
}

// Namespaced reports whether kind lives in namespaces.
func Namespaced(kind string) (bool, error) {
	k, err := kindNamed(kind)
	if err != nil {
		return false, err
	}
	return k.namespaced, nil
}

// typedClient is the part of a client-go typed client (e.g. PodInterface) the helpers use.
type typedClient[T client.Object, L runtime.Object] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
}

// kind is one row of the table with the Go types erased.
type kind struct {
	name       string
	namespaced bool
	newObject  func(namespace, name string) client.Object
	// isKind reports whether obj is of this kind's Go type.
	isKind func(obj client.Object) bool
	// ops returns the operations on this kind in namespace ("" for all namespaces or for
	// cluster-scoped kinds).
	ops func(cs kubernetes.Interface, namespace string) kindOps
}

// kindOps are a typed client's operations on client.Object.
type kindOps interface {
	create(ctx context.Context, obj client.Object) (client.Object, error)
	update(ctx context.Context, obj client.Object) (client.Object, error)
	delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	get(ctx context.Context, name string) (client.Object, error)
	list(ctx context.Context) ([]client.Object, error)
}

// namespaced builds the table row of a namespaced kind from its fixture constructor and its
// typed-client getter.
func namespaced[T client.Object, L runtime.Object, C typedClient[T, L]](
	name string, newObj func(namespace, name string) T, getClient func(cs kubernetes.Interface, namespace string) C,
) kind {
	return row[T, L](name, true, newObj, getClient)
}

// clusterScoped builds the table row of a cluster-scoped kind from its fixture constructor and
// its typed-client getter.
func clusterScoped[T client.Object, L runtime.Object, C typedClient[T, L]](
	name string, newObj func(namespace, name string) T, getClient func(cs kubernetes.Interface) C,
) kind {
	return row[T, L](name, false, newObj, func(cs kubernetes.Interface, _ string) C { return getClient(cs) })
}

// row builds a table row with the Go types erased.
func row[T client.Object, L runtime.Object, C typedClient[T, L]](
	name string, namespaced bool, newObj func(namespace, name string) T, getClient func(cs kubernetes.Interface, namespace string) C,
) kind {
	return kind{
		name:       name,
		namespaced: namespaced,
		newObject:  func(namespace, name string) client.Object { return newObj(namespace, name) },
		isKind: func(obj client.Object) bool {
			_, ok := obj.(T)
			return ok
		},
		ops: func(cs kubernetes.Interface, namespace string) kindOps {
			return typedOps[T, L]{kind: name, c: getClient(cs, namespace)}
		},
	}
}

// kindNamed returns the row of kind.
func kindNamed(name string) (kind, error) {
	for _, k := range kindTable() {
		if k.name == name {
			return k, nil
		}
	}
	return kind{}, fmt.Errorf("testenv: unknown kind %q (known: %v)", name, Kinds())
}

// kindOf returns the row whose Go type obj has.
func kindOf(obj client.Object) (kind, error) {
	for _, k := range kindTable() {
		if k.isKind(obj) {
			return k, nil
		}
	}
	return kind{}, fmt.Errorf("testenv: no kind for %T (known: %v)", obj, Kinds())
}

// typedOps adapts a typedClient to kindOps.
type typedOps[T client.Object, L runtime.Object] struct {
	kind string
	c    typedClient[T, L]
}

func (o typedOps[T, L]) typed(obj client.Object) (T, error) {
	t, ok := obj.(T)
	if !ok {
		return t, fmt.Errorf("testenv: %T is not a %s", obj, o.kind)
	}
	return t, nil
}

// erase turns a typed result into a client.Object, keeping a nil interface on error.
func erase[T client.Object](obj T, err error) (client.Object, error) {
	if err != nil {
		return nil, err
	}
	return obj, nil
}

func (o typedOps[T, L]) create(ctx context.Context, obj client.Object) (client.Object, error) {
	t, err := o.typed(obj)
	if err != nil {
		return nil, err
	}
	return erase(o.c.Create(ctx, t, metav1.CreateOptions{}))
}

func (o typedOps[T, L]) update(ctx context.Context, obj client.Object) (client.Object, error) {
	t, err := o.typed(obj)
	if err != nil {
		return nil, err
	}
	return erase(o.c.Update(ctx, t, metav1.UpdateOptions{}))
}

func (o typedOps[T, L]) delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return o.c.Delete(ctx, name, opts)
}

func (o typedOps[T, L]) get(ctx context.Context, name string) (client.Object, error) {
	return erase(o.c.Get(ctx, name, metav1.GetOptions{}))
}

func (o typedOps[T, L]) list(ctx context.Context) ([]client.Object, error) {
	list, err := o.c.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("testenv: items of %s list: %w", o.kind, err)
	}
	objs := make([]client.Object, 0, len(items))
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok {
			return nil, fmt.Errorf("testenv: %s list item %T is not a client.Object", o.kind, item)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}
