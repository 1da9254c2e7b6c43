package reader

import "fmt"

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
)

var objectTypeNames = [...]string{
	OTUnknown: "Unknown", OTNode: "Node", OTPod: "Pod", OTNamespace: "Namespace",
	OTPersistentVolume: "PersistentVolume", OTClusterRole: "ClusterRole",
	OTClusterRoleBinding: "ClusterRoleBinding", OTRole: "Role", OTRoleBinding: "RoleBinding",
	OTService: "Service", OTDeployment: "Deployment", OTIngressController: "IngressController",
	OTEndpoint: "Endpoint", OTEndpointSlice: "EndpointSlice",
}

// String returns the kind's name, e.g. "Pod" or "ClusterRole".
func (o ObjectType) String() string {
	if int(o) < len(objectTypeNames) {
		return objectTypeNames[o]
	}
	return fmt.Sprintf("ObjectType(%d)", uint8(o))
}
