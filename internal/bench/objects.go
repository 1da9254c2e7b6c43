package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const (
	// writtenAtAnnotation carries the time a churn change was written, in unix nanoseconds.
	writtenAtAnnotation = "bench.watchlist/written-at"
	// churnLabel is the label every churn change sets, to the change's sequence number.
	churnLabel = "bench.watchlist/churn"
	// payloadAnnotation makes every pod carry about payloadSize bytes of annotation.
	payloadAnnotation = "bench.watchlist/payload"
	payloadSize       = 1024

	// namespaces spreads the objects over this many namespaces.
	namespaces = 10
	// otherPer: for every otherPer pods there is one service, one deployment and one role.
	otherPer = 100
)

// population says how many objects of each kind the benchmark created.
type population struct {
	pods, services, deployments, roles int
}

// want returns the population for n pods.
func want(n int) population {
	o := max(n/otherPer, 10)
	return population{pods: n, services: o, deployments: o, roles: o}
}

func namespaceName(i int) string { return fmt.Sprintf("bench-%d", i%namespaces) }

func podName(i int) string { return fmt.Sprintf("pod-%06d", i) }

// payload is the pod annotation: payloadSize bytes of text that differs from pod to pod.
func payload(i int) string {
	var b strings.Builder
	b.Grow(payloadSize)
	x := uint32(i)*2654435761 + 1
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for b.Len() < payloadSize {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteByte(alphabet[x%uint32(len(alphabet))])
	}
	return b.String()
}

// newBenchPod returns pod i: a few labels, a ~1 KB annotation, one container. envtest runs no
// scheduler, so it stays Pending.
func newBenchPod(i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespaceName(i),
			Name:      podName(i),
			Labels: map[string]string{
				"app":      fmt.Sprintf("app-%d", i%50),
				"tier":     [...]string{"web", "api", "db", "cache"}[i%4],
				"shard":    strconv.Itoa(i % 16),
				churnLabel: "0",
			},
			Annotations: map[string]string{payloadAnnotation: payload(i)},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "main",
			Image: "registry.example/bench:1.0",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

// newBenchService returns a headless service (no cluster IP: envtest's service range is small).
func newBenchService(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespaceName(i), Name: fmt.Sprintf("svc-%05d", i)},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": fmt.Sprintf("app-%d", i%50)},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
}

// newBenchDeployment returns a deployment; no controller runs, so it never gets pods.
func newBenchDeployment(i int) *appsv1.Deployment {
	labels := map[string]string{"app": fmt.Sprintf("deploy-%d", i)}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespaceName(i), Name: fmt.Sprintf("deploy-%05d", i)},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/bench:1.0"}}},
			},
		},
	}
}

func newBenchRole(i int) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespaceName(i), Name: fmt.Sprintf("role-%05d", i)},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}
}

// populate creates what is missing between have and want(n) with workers in parallel, reporting
// progress on log, and returns the new population.
func populate(ctx context.Context, cs kubernetes.Interface, have population, n, workers int, log io.Writer) (population, error) {
	target := want(n)
	if have.pods == 0 {
		if err := createNamespaces(ctx, cs); err != nil {
			return have, err
		}
	}
	steps := []struct {
		kind       string
		from, to   int
		createItem func(ctx context.Context, i int) error
	}{
		{"services", have.services, target.services, func(ctx context.Context, i int) error {
			s := newBenchService(i)
			_, err := cs.CoreV1().Services(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
			return err
		}},
		{"deployments", have.deployments, target.deployments, func(ctx context.Context, i int) error {
			d := newBenchDeployment(i)
			_, err := cs.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{})
			return err
		}},
		{"roles", have.roles, target.roles, func(ctx context.Context, i int) error {
			r := newBenchRole(i)
			_, err := cs.RbacV1().Roles(r.Namespace).Create(ctx, r, metav1.CreateOptions{})
			return err
		}},
		{"pods", have.pods, target.pods, func(ctx context.Context, i int) error {
			p := newBenchPod(i)
			_, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
			return err
		}},
	}
	for _, s := range steps {
		if s.to <= s.from {
			continue
		}
		err := parallel(ctx, s.from, s.to, workers, s.kind, log, func(ctx context.Context, i int) error {
			if err := s.createItem(ctx, i); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			return nil
		})
		if err != nil {
			return have, fmt.Errorf("create %s: %w", s.kind, err)
		}
	}
	return target, nil
}

// createNamespaces creates the namespaces the objects are spread over (namespaceName), those that
// do not exist yet.
func createNamespaces(ctx context.Context, cs kubernetes.Interface) error {
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceName(i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns.Name, err)
		}
	}
	return nil
}

// parallel runs do(i), which creates object i, for every i in [from, to) on workers goroutines, as
// parallelDo does.
func parallel(ctx context.Context, from, to, workers int, what string, log io.Writer, do func(ctx context.Context, i int) error) error {
	return parallelDo(ctx, from, to, workers, "created", what, log, do)
}

// parallelDo runs do(i) for every i in [from, to) on workers goroutines, reporting progress on log
// every 5 s ("<verb> 300/1000 <what>"). It stops at the first error and returns it once every
// worker ended.
func parallelDo(ctx context.Context, from, to, workers int, verb, what string, log io.Writer, do func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := do(ctx, i); err != nil {
					cancel(fmt.Errorf("%s %d: %w", what, i, err))
					return
				}
				done.Add(1)
			}
		})
	}
	start := time.Now()
	stopProgress := make(chan struct{})
	var pw sync.WaitGroup
	pw.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(log, "bench: %s %d/%d %s (%.0f/s)\n", verb, int64(from)+d, to, what, float64(d)/time.Since(start).Seconds())
			}
		}
	})
	wg.Wait()
	close(stopProgress)
	pw.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(log, "bench: %s %d %s in %.1f s (%.0f/s)\n", verb, to-from, what, time.Since(start).Seconds(),
		float64(to-from)/time.Since(start).Seconds())
	return nil
}

// describePod says how large pod i is as the server returns it: JSON, protobuf (the object's own
// encoding, without the envelope) and its managedFields in JSON.
func describePod(ctx context.Context, cs kubernetes.Interface, i int) (string, error) {
	pod, err := cs.CoreV1().Pods(namespaceName(i)).Get(ctx, podName(i), metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get pod %s/%s: %w", namespaceName(i), podName(i), err)
	}
	js, err := json.Marshal(pod)
	if err != nil {
		return "", fmt.Errorf("encode pod: %w", err)
	}
	pb, err := pod.Marshal()
	if err != nil {
		return "", fmt.Errorf("encode pod as protobuf: %w", err)
	}
	mf, err := json.Marshal(pod.ManagedFields)
	if err != nil {
		return "", fmt.Errorf("encode managedFields: %w", err)
	}
	return fmt.Sprintf("pod %s/%s is %d bytes of JSON (managedFields: %d, %d entries), %d bytes of protobuf",
		pod.Namespace, pod.Name, len(js), len(mf), len(pod.ManagedFields), len(pb)), nil
}

// churner writes changes to existing pods at a fixed rate: each one a merge patch of churnLabel and
// writtenAtAnnotation (the time of the write). It walks the pods round-robin across runs.
type churner struct {
	cs      kubernetes.Interface
	pods    int
	workers int
	cursor  int
}

// churnStats says what one churn wrote.
type churnStats struct {
	written, failed int
	elapsed         time.Duration
	firstErr        error
}

// run writes rate changes per second for d, or until ctx ends.
func (c *churner) run(ctx context.Context, rate float64, d time.Duration) churnStats {
	total := int(rate * d.Seconds())
	jobs := make(chan int, c.workers)
	var written, failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for i := range jobs {
				if err := c.touch(ctx, i); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				written.Add(1)
			}
		})
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
send:
	for k := range total {
		if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break send
			case <-timer.C:
			}
		}
		select {
		case jobs <- c.cursor:
			c.cursor++
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()
	return churnStats{written: int(written.Load()), failed: int(failed.Load()), elapsed: time.Since(start), firstErr: firstErr}
}

// touch writes change seq to pod seq mod pods.
func (c *churner) touch(ctx context.Context, seq int) error {
	i := seq % c.pods
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q},"annotations":{%q:%q}}}`,
		churnLabel, strconv.Itoa(seq+1), writtenAtAnnotation, strconv.FormatInt(time.Now().UnixNano(), 10))
	_, err := c.cs.CoreV1().Pods(namespaceName(i)).Patch(ctx, podName(i), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("patch pod %s/%s: %w", namespaceName(i), podName(i), err)
	}
	return nil
}

// parseWrittenAt reads writtenAtAnnotation.
func parseWrittenAt(annotations map[string]string) (int64, bool) {
	s, ok := annotations[writtenAtAnnotation]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
