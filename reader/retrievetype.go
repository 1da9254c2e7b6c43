package reader

import (
	"fmt"
	"math/bits"
	"strings"
)

// RetrieveType is a set of bits, one per kind of object a reader watches. Combine bits with |.
type RetrieveType uint32

const (
	// RTNode watches core/v1 Nodes.
	RTNode RetrieveType = 1 << iota
	// RTPod watches core/v1 Pods in every namespace.
	RTPod
	// RTNamespace watches core/v1 Namespaces.
	RTNamespace
	// RTPersistentVolume watches core/v1 PersistentVolumes.
	RTPersistentVolume
	// RTRBAC watches rbac.authorization.k8s.io/v1 Roles, RoleBindings, ClusterRoles and
	// ClusterRoleBindings: four streams.
	RTRBAC
	// RTService watches core/v1 Services in every namespace.
	RTService
	// RTDeployment watches apps/v1 Deployments in every namespace.
	RTDeployment
	// RTIngressController watches networking.k8s.io/v1 Ingresses in every namespace.
	RTIngressController
	// RTEndpoint watches core/v1 Endpoints in every namespace. Endpoints are deprecated since
	// Kubernetes 1.33 (every request draws a warning); prefer RTEndpointSlice.
	RTEndpoint
	// RTEndpointSlice watches discovery.k8s.io/v1 EndpointSlices in every namespace: what
	// kube-proxy reads, several per Service when it has many endpoints.
	RTEndpointSlice

	// RTAll is every bit above.
	RTAll = RTNode | RTPod | RTNamespace | RTPersistentVolume | RTRBAC | RTService | RTDeployment |
		RTIngressController | RTEndpoint | RTEndpointSlice
)

// retrieveTypeNames names each bit, in bit order; String and ParseRetrieveType use it.
var retrieveTypeNames = [...]string{
	"Node", "Pod", "Namespace", "PersistentVolume", "RBAC", "Service", "Deployment",
	"IngressController", "Endpoint", "EndpointSlice",
}

// String names each bit set in t, joined by "|", e.g. "Pod|RBAC". Unknown bits are printed in hex.
func (t RetrieveType) String() string {
	if t == 0 {
		return "None"
	}
	var names []string
	for rest := t; rest != 0; rest &= rest - 1 {
		bit := bits.TrailingZeros32(uint32(rest))
		if bit < len(retrieveTypeNames) {
			names = append(names, retrieveTypeNames[bit])
		}
	}
	if unknown := t &^ RTAll; unknown != 0 {
		names = append(names, fmt.Sprintf("RetrieveType(%#x)", uint32(unknown)))
	}
	return strings.Join(names, "|")
}

// Has reports whether every bit of other is set in t.
func (t RetrieveType) Has(other RetrieveType) bool { return t&other == other }

// ParseRetrieveType parses a comma- or |-separated list of bit names, case-insensitively, e.g.
// "pod,node,rbac" or "Pod|RBAC"; "all" stands for RTAll. It errors on an empty list or an unknown
// name, listing the names it knows.
func ParseRetrieveType(s string) (RetrieveType, error) {
	var t RetrieveType
	for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' }) {
		name := strings.TrimSpace(field)
		if name == "" {
			continue
		}
		bit, err := parseOne(name)
		if err != nil {
			return 0, err
		}
		t |= bit
	}
	if t == 0 {
		return 0, fmt.Errorf("no retrieve type in %q; known: all, %s", s, strings.Join(retrieveTypeNames[:], ", "))
	}
	return t, nil
}

func parseOne(name string) (RetrieveType, error) {
	if strings.EqualFold(name, "all") {
		return RTAll, nil
	}
	for i, known := range retrieveTypeNames {
		if strings.EqualFold(name, known) {
			return 1 << i, nil
		}
	}
	return 0, fmt.Errorf("unknown retrieve type %q; known: all, %s", name, strings.Join(retrieveTypeNames[:], ", "))
}
