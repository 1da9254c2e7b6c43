package testenv

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Item is what Snapshot records about one object.
type Item struct {
	Kind            string
	Namespace       string
	Name            string
	ResourceVersion string
}

// String formats the item as Kind namespace/name@rv.
func (i Item) String() string {
	return fmt.Sprintf("%s %s/%s@%s", i.Kind, i.Namespace, i.Name, i.ResourceVersion)
}

// Snapshot lists every object of kinds (all Kinds when none are given) cluster-wide and returns
// them by UID. Compare it with a reader's view using Diff. The apiserver's own objects
// (namespaces default and kube-*, bootstrap RBAC, the kubernetes Service and Endpoints) are
// included.
func Snapshot(ctx context.Context, cs kubernetes.Interface, kinds ...string) (map[types.UID]Item, error) {
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	out := map[types.UID]Item{}
	for _, name := range kinds {
		k, err := kindNamed(name)
		if err != nil {
			return nil, err
		}
		objs, err := k.ops(cs, "").list(ctx)
		if err != nil {
			return nil, fmt.Errorf("testenv: list %s: %w", name, err)
		}
		for _, obj := range objs {
			out[obj.GetUID()] = Item{
				Kind:            name,
				Namespace:       obj.GetNamespace(),
				Name:            obj.GetName(),
				ResourceVersion: obj.GetResourceVersion(),
			}
		}
	}
	return out, nil
}

// ByKind splits a snapshot by kind.
func ByKind(items map[types.UID]Item) map[string]map[types.UID]Item {
	out := map[string]map[types.UID]Item{}
	for uid, item := range items {
		if out[item.Kind] == nil {
			out[item.Kind] = map[types.UID]Item{}
		}
		out[item.Kind][uid] = item
	}
	return out
}

// Diff lists, sorted, how view differs from want (e.g. a reader's view from the server's
// Snapshot): objects missing from view, objects view has in excess, and objects at another
// resourceVersion. It returns nil when they are equal.
func Diff(want, view map[types.UID]Item) []string {
	var diffs []string
	for uid, w := range want {
		v, ok := view[uid]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s (uid %s)", w, uid))
		case v != w:
			diffs = append(diffs, fmt.Sprintf("stale %s, want %s (uid %s)", v, w, uid))
		}
	}
	for uid, v := range view {
		if _, ok := want[uid]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s (uid %s)", v, uid))
		}
	}
	sort.Strings(diffs)
	return diffs
}
