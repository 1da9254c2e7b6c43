package testenv

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// FixtureLabel is set to "true" on every object NewObject builds.
const FixtureLabel = "testenv.watchlist-go.io/fixture"

// fixtureImage is the image of every container in the fixtures; nothing ever pulls it.
const fixtureImage = "busybox"

// The constructors below build minimal valid objects, one per kind. Cluster-scoped kinds get
// an empty namespace from NewObject.

func fixtureMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{FixtureLabel: "true"}}
}

func fixturePodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: fixtureImage}}}
}

// newNode builds a Node; no kubelet is needed for it to exist.
func newNode(_, name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: fixtureMeta("", name)}
}

func newPod(namespace, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: fixtureMeta(namespace, name), Spec: fixturePodSpec()}
}

func newNamespace(_, name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: fixtureMeta("", name)}
}

func newPersistentVolume(_, name string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: fixtureMeta("", name),
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(1<<30, resource.BinarySI)},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
}

func fixtureRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}
}

func fixtureSubjects() []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "testenv-user"}}
}

func newRole(namespace, name string) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: fixtureMeta(namespace, name), Rules: fixtureRules()}
}

// newRoleBinding binds the Role of the same name (which need not exist).
func newRoleBinding(namespace, name string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: fixtureMeta(namespace, name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   fixtureSubjects(),
	}
}

func newClusterRole(_, name string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: fixtureMeta("", name), Rules: fixtureRules()}
}

// newClusterRoleBinding binds the ClusterRole of the same name (which need not exist).
func newClusterRoleBinding(_, name string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: fixtureMeta("", name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   fixtureSubjects(),
	}
}

// newService builds a ClusterIP Service; envtest's service range 10.0.0.0/24 holds about 250.
func newService(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: fixtureMeta(namespace, name),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
}

// newDeployment builds a Deployment; no controller runs, so it never gets pods.
func newDeployment(namespace, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: fixtureMeta(namespace, name),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: fixturePodSpec()},
		},
	}
}

func newIngress(namespace, name string) *networkingv1.Ingress {
	backend := &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: 80}}
	return &networkingv1.Ingress{
		ObjectMeta: fixtureMeta(namespace, name),
		Spec:       networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: backend}},
	}
}

func newEndpointSlice(namespace, name string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  fixtureMeta(namespace, name),
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](80)}},
	}
}

func newEndpoints(namespace, name string) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: fixtureMeta(namespace, name),
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.1.2.3"}},
			Ports:     []corev1.EndpointPort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		}},
	}
}
