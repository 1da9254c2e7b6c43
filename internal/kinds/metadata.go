package kinds

import (
	"fmt"

	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Media types a metadata-only stream asks for: the server sends PartialObjectMetadata (or its
// List) instead of whole objects, as protobuf where it can.
const (
	MetadataAccept     = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
	MetadataListAccept = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
)

// MetadataClient returns a REST client for this kind's group and version that decodes
// PartialObjectMetadata, sharing the clientset's HTTP client (and so its transport, credentials
// and connections) and rate limiter. Its requests must set MetadataAccept or MetadataListAccept.
func (k Kind) MetadataClient(cs *kubernetes.Clientset) (rest.Interface, error) {
	serializers := lazySerializer{
		NegotiatedSerializer: metainternalversionscheme.Codecs.WithoutConversion(),
		gvk:                  metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata"),
	}
	c := clientFor(cs, k.Resource.GroupVersion(), protobufAccept, serializers)
	if c == nil {
		return nil, fmt.Errorf("%s: the clientset has no REST client to read metadata through (build it with kubernetes.NewForConfig)", k)
	}
	return c, nil
}

// MetadataTombstone is Tombstone for a metadata-only stream: a PartialObjectMetadata.
func (k Kind) MetadataTombstone(namespace, name string, uid types.UID, resourceVersion string) runtime.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, UID: uid, ResourceVersion: resourceVersion,
		},
	}
}
