package reader

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ChangeType says what happened to an object.
type ChangeType uint8

const (
	// CTUnknown is the zero value; a reader never delivers it.
	CTUnknown ChangeType = iota
	// CTAdd: the object is new to the reader (at start, or created since).
	CTAdd
	// CTUpdate: a newer version of an object delivered before.
	CTUpdate
	// CTDelete: the object is gone. A delete the reader synthesized after a gap carries the last
	// version it delivered, with at least namespace, name, UID and resourceVersion set.
	CTDelete
)

var changeTypeNames = [...]string{CTUnknown: "Unknown", CTAdd: "Add", CTUpdate: "Update", CTDelete: "Delete"}

// String returns "Add", "Update", "Delete" or "Unknown".
func (c ChangeType) String() string {
	if int(c) < len(changeTypeNames) {
		return changeTypeNames[c]
	}
	return fmt.Sprintf("ChangeType(%d)", uint8(c))
}

// ObjectType is the kind of object an Entry holds.
type ObjectType uint8

const (
	// OTUnknown is the zero value; a reader never delivers it.
	OTUnknown ObjectType = iota
	// OTNode is a core/v1 Node.
	OTNode
	// OTPod is a core/v1 Pod.
	OTPod
	// OTNamespace is a core/v1 Namespace.
	OTNamespace
	// OTPersistentVolume is a core/v1 PersistentVolume.
	OTPersistentVolume
	// OTClusterRole is an rbac/v1 ClusterRole.
	OTClusterRole
	// OTClusterRoleBinding is an rbac/v1 ClusterRoleBinding.
	OTClusterRoleBinding
	// OTRole is an rbac/v1 Role.
	OTRole
	// OTRoleBinding is an rbac/v1 RoleBinding.
	OTRoleBinding
	// OTService is a core/v1 Service.
	OTService
	// OTDeployment is an apps/v1 Deployment.
	OTDeployment
	// OTIngressController is a networking.k8s.io/v1 Ingress.
	OTIngressController
	// OTEndpoint is a core/v1 Endpoints.
	OTEndpoint
	// OTEndpointSlice is a discovery.k8s.io/v1 EndpointSlice.
	OTEndpointSlice
	// OTResource is an object of a resource named with the watchlist option WithResources: an
	// *unstructured.Unstructured, whose resource Entry.Resource names.
	OTResource
)

var objectTypeNames = [...]string{
	OTUnknown: "Unknown", OTNode: "Node", OTPod: "Pod", OTNamespace: "Namespace",
	OTPersistentVolume: "PersistentVolume", OTClusterRole: "ClusterRole",
	OTClusterRoleBinding: "ClusterRoleBinding", OTRole: "Role", OTRoleBinding: "RoleBinding",
	OTService: "Service", OTDeployment: "Deployment", OTIngressController: "IngressController",
	OTEndpoint: "Endpoint", OTEndpointSlice: "EndpointSlice", OTResource: "Resource",
}

// objectTypeResources is where each built-in ObjectType is served.
var objectTypeResources = [...]schema.GroupVersionResource{
	OTNode:               {Version: "v1", Resource: "nodes"},
	OTPod:                {Version: "v1", Resource: "pods"},
	OTNamespace:          {Version: "v1", Resource: "namespaces"},
	OTPersistentVolume:   {Version: "v1", Resource: "persistentvolumes"},
	OTClusterRole:        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	OTClusterRoleBinding: {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	OTRole:               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	OTRoleBinding:        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	OTService:            {Version: "v1", Resource: "services"},
	OTDeployment:         {Group: "apps", Version: "v1", Resource: "deployments"},
	OTIngressController:  {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	OTEndpoint:           {Version: "v1", Resource: "endpoints"},
	OTEndpointSlice:      {Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
}

// Resource returns the group, version and resource that serve objects of type o, e.g. core/v1
// "pods" for OTPod; the zero value for OTUnknown and OTResource (whose entries name their own).
func (o ObjectType) Resource() schema.GroupVersionResource {
	if int(o) < len(objectTypeResources) {
		return objectTypeResources[o]
	}
	return schema.GroupVersionResource{}
}

// String returns the kind's name, e.g. "Pod" or "ClusterRole".
func (o ObjectType) String() string {
	if int(o) < len(objectTypeNames) {
		return objectTypeNames[o]
	}
	return fmt.Sprintf("ObjectType(%d)", uint8(o))
}
