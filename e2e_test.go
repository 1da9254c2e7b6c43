package watchlist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, cs *kubernetes.Clientset, prefix string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// deleteNamespace deletes an empty namespace for good: envtest has no namespace controller, so the
// test finalizes it as that controller would.
func deleteNamespace(ctx context.Context, cs *kubernetes.Clientset, name string) error {
	if err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	ns.Spec.Finalizers = nil
	_, err = cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
	return err
}

// hasVersion reports whether the view holds uid at version rv or later.
func (c *collector) hasVersion(uid types.UID, rv string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.view[uid]
	if !ok {
		return false
	}
	cmp, err := resourceversion.CompareResourceVersion(v.rv, rv)
	return err == nil && cmp >= 0
}

func (c *collector) isDeleted(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleted[uid]
}

func (c *collector) kindCount(kind reader.ObjectType, ct reader.ChangeType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKind[kind][ct]
}

// TestEveryKind: for every kind, an object that exists at start arrives in the initial state, and
// an add, an update and a delete each arrive as the right entry with a working typed getter.
func TestEveryKind(t *testing.T) {
	ctx := context.Background()
	cs := plane(t).Clientset
	ns := newNamespace(t, cs, "every-kind")
	kindsAll := kindsOf(RTAll)

	pre := map[reader.ObjectType]client.Object{}
	for _, ot := range kindsAll {
		if ot == reader.OTNamespace {
			continue // the test's namespace is the one that exists at start
		}
		obj := mustCreate(t, cs, ot, ns, "pre-"+strings.ToLower(ot.String()))
		pre[ot] = obj
	}
	rr := startReader(t, plane(t).Config, RTAll)
	for ot, obj := range pre {
		if !rr.c.hasVersion(obj.GetUID(), obj.GetResourceVersion()) {
			t.Errorf("%s %s: not in the initial state", ot, obj.GetName())
		}
	}
	if rr.c.count(reader.CTAdd) < len(pre) {
		t.Errorf("initial state: %d adds, want at least %d", rr.c.count(reader.CTAdd), len(pre))
	}

	for _, ot := range kindsAll {
		t.Run(ot.String(), func(t *testing.T) {
			addsBefore := rr.c.kindCount(ot, reader.CTAdd)
			name := "life-" + strings.ToLower(ot.String())
			if ot == reader.OTNamespace {
				name = ns + "-life"
			}
			obj := mustCreate(t, cs, ot, ns, name)
			waitFor(t, 10*time.Second, "the add", func() bool { return rr.c.hasVersion(obj.GetUID(), obj.GetResourceVersion()) })
			if got := rr.c.kindCount(ot, reader.CTAdd); got != addsBefore+1 {
				t.Errorf("%d adds of %s, want %d", got, ot, addsBefore+1)
			}

			updatesBefore := rr.c.kindCount(ot, reader.CTUpdate)
			touched, err := testenv.Touch(ctx, cs, obj)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the update", func() bool { return rr.c.hasVersion(obj.GetUID(), touched.GetResourceVersion()) })
			if rr.c.kindCount(ot, reader.CTUpdate) <= updatesBefore {
				t.Errorf("no update entry of %s", ot)
			}

			if ot == reader.OTNamespace {
				err = deleteNamespace(ctx, cs, obj.GetName())
			} else {
				err = testenv.Delete(ctx, cs, obj)
			}
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the delete", func() bool { return rr.c.isDeleted(obj.GetUID()) })
		})
	}
	rr.c.assertConverged(t, cs, RTAll, 10*time.Second)
}

// mustCreate creates an object of kind ot named name (in ns when the kind is namespaced).
func mustCreate(t *testing.T, cs *kubernetes.Clientset, ot reader.ObjectType, ns, name string) client.Object {
	t.Helper()
	obj, err := testenv.NewObject(testenvKind[ot], ns, name)
	if err != nil {
		t.Fatal(err)
	}
	created, err := testenv.Create(context.Background(), cs, obj)
	if err != nil {
		t.Fatalf("create %s %s: %v", ot, name, err)
	}
	return created
}

// TestEntryGetterRejectsOtherKind: a typed getter of the wrong kind errors rather than panics.
func TestEntryGetterRejectsOtherKind(t *testing.T) {
	e := reader.NewEntry(reader.CTAdd, reader.OTPod, &corev1.Pod{})
	if _, err := e.Node(); err == nil {
		t.Fatal("Node() of a pod entry returned no error")
	}
	if _, err := (reader.Entry{}).Pod(); err == nil {
		t.Fatal("Pod() of a zero entry returned no error")
	}
	if got := fmt.Sprint(e.ChangeType(), " ", e.ObjectType()); got != "Add Pod" {
		t.Fatalf("names: %q", got)
	}
}
