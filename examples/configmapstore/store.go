// Package configmapstore is an example watchlist.CheckpointStore that keeps a reader's checkpoint
// in a ConfigMap, for small clusters: a ConfigMap holds at most 1 MiB (MaxBytes), which at about 22
// bytes per object plus its namespace/name is some 20 000 to 30 000 objects. Past that, Save fails
// with ErrTooLarge and the reader keeps its previous checkpoint; use a file (watchlist.FileCheckpoint
// on a persistent volume) or an object store instead.
//
// The reader needs get, create and update on that one ConfigMap:
//
//   - apiGroups: [""]
//     resources: ["configmaps"]
//     resourceNames: ["my-reader-checkpoint"]
//     verbs: ["get", "update"]
//   - apiGroups: [""]
//     resources: ["configmaps"]
//     verbs: ["create"]
package configmapstore

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/watchlist-go/watchlist"
)

// MaxBytes is the most a ConfigMap holds (the API server refuses a larger one).
const MaxBytes = 1 << 20

// key is the ConfigMap's binaryData key of the checkpoint.
const key = "checkpoint"

// ErrTooLarge: the checkpoint does not fit in a ConfigMap.
var ErrTooLarge = errors.New("configmapstore: checkpoint larger than a ConfigMap holds")

// Store keeps a checkpoint in the ConfigMap namespace/name. Make one with New.
type Store struct {
	cs              kubernetes.Interface
	namespace, name string
}

// New returns a Store of the ConfigMap namespace/name, through cs.
func New(cs kubernetes.Interface, namespace, name string) (*Store, error) {
	if cs == nil || namespace == "" || name == "" {
		return nil, errors.New("configmapstore: a clientset, a namespace and a name are needed")
	}
	return &Store{cs: cs, namespace: namespace, name: name}, nil
}

var _ watchlist.CheckpointStore = (*Store)(nil)

// Load returns the checkpoint, or watchlist.ErrNoCheckpoint when the ConfigMap or its key does not
// exist.
func (s *Store) Load(ctx context.Context) ([]byte, error) {
	cm, err := s.cs.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, watchlist.ErrNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("configmapstore: load %s/%s: %w", s.namespace, s.name, err)
	}
	data, ok := cm.BinaryData[key]
	if !ok {
		return nil, watchlist.ErrNoCheckpoint
	}
	return data, nil
}

// Save replaces the checkpoint: an update of the ConfigMap (one write, atomic), or its creation.
func (s *Store) Save(ctx context.Context, checkpoint []byte) error {
	if len(checkpoint) > MaxBytes-1024 { // room for the ConfigMap's own fields
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(checkpoint))
	}
	cms := s.cs.CoreV1().ConfigMaps(s.namespace)
	cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name},
			BinaryData: map[string][]byte{key: checkpoint}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		cm.BinaryData = map[string][]byte{key: checkpoint}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{}) // fails on a conflict: nothing half written
	}
	if err != nil {
		return fmt.Errorf("configmapstore: save %s/%s: %w", s.namespace, s.name, err)
	}
	return nil
}
