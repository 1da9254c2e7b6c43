package testenv

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// TouchLabel is the label Touch sets; its value counts the touches ("1", "2", ...).
	TouchLabel = "testenv.watchlist-go.io/touch"

	// pvProtectionFinalizer is added to every PersistentVolume by the apiserver's
	// StorageObjectInUseProtection admission plugin and normally removed by the pv-protection
	// controller, which envtest does not run.
	pvProtectionFinalizer = "kubernetes.io/pv-protection"
)

// NewObject returns a minimal valid object of kind (see Kinds) named name, labelled
// FixtureLabel=true. namespace is ignored for cluster-scoped kinds. The object is not created.
func NewObject(kind, namespace, name string) (client.Object, error) {
	k, err := kindNamed(kind)
	if err != nil {
		return nil, err
	}
	if !k.namespaced {
		namespace = ""
	}
	return k.newObject(namespace, name), nil
}

// Create creates obj (of one of the Kinds) and returns the server's copy.
func Create(ctx context.Context, cs kubernetes.Interface, obj client.Object) (client.Object, error) {
	return withOps(cs, obj, "create", func(ops kindOps) (client.Object, error) { return ops.create(ctx, obj) })
}

// Update writes obj as it is (its resourceVersion, if set, must be current) and returns the
// server's copy.
func Update(ctx context.Context, cs kubernetes.Interface, obj client.Object) (client.Object, error) {
	return withOps(cs, obj, "update", func(ops kindOps) (client.Object, error) { return ops.update(ctx, obj) })
}

// Get reads the object of kind named namespace/name (namespace "" for cluster-scoped kinds).
func Get(ctx context.Context, cs kubernetes.Interface, kind, namespace, name string) (client.Object, error) {
	k, err := kindNamed(kind)
	if err != nil {
		return nil, err
	}
	out, err := k.ops(cs, namespace).get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("testenv: get %s %s/%s: %w", kind, namespace, name, err)
	}
	return out, nil
}

// Touch changes the object named like obj by one update: it reads the current copy, bumps
// TouchLabel and writes it back (retrying on conflict). It returns the server's copy.
func Touch(ctx context.Context, cs kubernetes.Interface, obj client.Object) (client.Object, error) {
	return withOps(cs, obj, "touch", func(ops kindOps) (client.Object, error) {
		var out client.Object
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := ops.get(ctx, obj.GetName())
			if err != nil {
				return err
			}
			labels := cur.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			n, _ := strconv.Atoi(labels[TouchLabel]) // absent or foreign value: start from 0
			labels[TouchLabel] = strconv.Itoa(n + 1)
			cur.SetLabels(labels)
			out, err = ops.update(ctx, cur)
			return err
		})
		return out, err
	})
}

// Delete deletes the object named like obj with GracePeriodSeconds 0, so a Pod goes at once
// (ADDED, MODIFIED with deletionTimestamp, DELETED). A PersistentVolume gets the pv-protection
// finalizer from the apiserver and envtest runs no controller to remove it, so Delete removes
// it as that controller would (MODIFIED with deletionTimestamp, then DELETED). A deleted
// Namespace stays Terminating: envtest has no namespace controller. A missing object is not
// an error.
func Delete(ctx context.Context, cs kubernetes.Interface, obj client.Object) error {
	_, err := withOps(cs, obj, "delete", func(ops kindOps) (client.Object, error) {
		err := ops.delete(ctx, obj.GetName(), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
		if _, isPV := obj.(*corev1.PersistentVolume); isPV {
			return nil, removeFinalizer(ctx, ops, obj.GetName(), pvProtectionFinalizer)
		}
		return nil, nil
	})
	return err
}

// withOps runs op with the typed operations for obj's kind in obj's namespace and wraps its
// error with verb, kind and obj's key.
func withOps(cs kubernetes.Interface, obj client.Object, verb string, op func(ops kindOps) (client.Object, error)) (client.Object, error) {
	k, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	out, err := op(k.ops(cs, obj.GetNamespace()))
	if err != nil {
		return nil, fmt.Errorf("testenv: %s %s %s: %w", verb, k.name, client.ObjectKeyFromObject(obj), err)
	}
	return out, nil
}

// removeFinalizer drops finalizer from the object named name, if it still exists.
func removeFinalizer(ctx context.Context, ops kindOps, name, finalizer string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := ops.get(ctx, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		finalizers := cur.GetFinalizers()
		if !slices.Contains(finalizers, finalizer) {
			return nil
		}
		cur.SetFinalizers(slices.DeleteFunc(slices.Clone(finalizers), func(f string) bool { return f == finalizer }))
		_, err = ops.update(ctx, cur)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}
