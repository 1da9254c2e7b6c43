package watchlist

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// readerRole loads testdata/rbac.yaml.
func readerRole(t *testing.T) *rbacv1.ClusterRole {
	return loadManifest[rbacv1.ClusterRole](t, "testdata/rbac.yaml")
}

// loadManifest decodes the YAML file path into a T, strictly.
func loadManifest[T any](t *testing.T, path string) *T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj T
	if err := yaml.UnmarshalStrict(data, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &obj
}

// TestRBACManifestMatchesKinds: the manifest grants exactly list and watch on exactly the resources
// of the kinds table.
func TestRBACManifestMatchesKinds(t *testing.T) {
	checkRules(t, "testdata/rbac.yaml", readerRole(t).Rules, func(kinds.Kind) bool { return true })
}

// checkRules fails t unless the rules of the manifest path grant exactly list and watch on exactly
// the resources of the kinds for which need holds.
func checkRules(t *testing.T, path string, rules []rbacv1.PolicyRule, need func(kinds.Kind) bool) {
	t.Helper()
	granted := map[string]bool{}
	for _, rule := range rules {
		if verbs := slices.Sorted(slices.Values(rule.Verbs)); !slices.Equal(verbs, []string{"list", "watch"}) {
			t.Errorf("%s: rule %v grants %v, want exactly list and watch", path, rule.Resources, rule.Verbs)
		}
		for _, g := range rule.APIGroups {
			for _, r := range rule.Resources {
				granted[r+"."+g] = true
			}
		}
	}
	want := map[string]bool{}
	for _, k := range kinds.For(RTAll) {
		if need(k) {
			want[k.Resource.Resource+"."+k.Resource.Group] = true
		}
	}
	for r := range want {
		if !granted[r] {
			t.Errorf("%s lacks %s", path, r)
		}
	}
	for r := range granted {
		if !want[r] {
			t.Errorf("%s grants %s, which no kind it is for needs", path, r)
		}
	}
}

// userWithRole returns the config of a new envtest user bound to role (created under a fresh name).
func userWithRole(t *testing.T, name string, role *rbacv1.ClusterRole) *rest.Config {
	t.Helper()
	ctx := context.Background()
	role = role.DeepCopy()
	role.Name = name
	if _, err := plane(t).Clientset.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
	}
	if _, err := plane(t).Clientset.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = plane(t).Clientset.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = plane(t).Clientset.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	user, err := plane(t).Env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return user.Config()
}

// TestLeastPrivilege: a user bound to exactly testdata/rbac.yaml reads every kind; a user lacking
// one resource gets Run's Forbidden error naming it, at once.
func TestLeastPrivilege(t *testing.T) {
	role := readerRole(t)
	t.Run("exactly the role", func(t *testing.T) {
		rr := startReader(t, userWithRole(t, "watchlist-least", role), RTAll)
		rr.c.assertConverged(t, plane(t).Clientset, RTAll, 20*time.Second)
	})
	t.Run("lacking ingresses", func(t *testing.T) {
		less := role.DeepCopy()
		for i := range less.Rules {
			less.Rules[i].Resources = slices.DeleteFunc(less.Rules[i].Resources, func(r string) bool { return r == "ingresses" })
		}
		less.Rules = slices.DeleteFunc(less.Rules, func(r rbacv1.PolicyRule) bool { return len(r.Resources) == 0 })
		err, took := runErr(t, userWithRole(t, "watchlist-no-ingress", less), RTAll)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ingresses") {
			t.Fatalf("Run = %v, want Forbidden naming ingresses", err)
		}
		if took > 5*time.Second {
			t.Errorf("Run took %s to report Forbidden", took)
		}
		t.Logf("Run failed after %s: %v", took.Round(time.Millisecond), err)
	})
}
