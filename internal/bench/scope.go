package bench

// The scope suite (-suite scope): what WithFieldSelector and WithMetadataOnly save, and what the
// server and the network cost on their own. Every variant watches pods only; each runs in its own
// child process, as the default suite's variants do, and reports only its initial sync: time, CPU,
// bytes read from the network and heap.

import (
	"context"
	"fmt"
	"io"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Suites, the values of -suite.
const (
	SuiteDefault   = "default"   // reader against informer for 7 kinds: sync, churn, relist
	SuiteScope     = "scope"     // per-node pods, metadata only, the floor: initial sync only
	SuiteResources = "resources" // Widgets (a CRD) through WithResources, dynamic and metadata informers: initial sync only
	SuiteRestart   = "restart"   // pods: a reader restarted from a checkpoint against a cold reader and a fresh informer
)

// Variants of the scope suite: each is also the value of the child's hidden -child flag.
const (
	VariantReaderNode       = "reader-node"       // reader of one node's pods (field selector)
	VariantInformerNode     = "informer-node"     // typed pod informer with the same field selector
	VariantReaderPods       = "reader-pods"       // reader of every pod
	VariantReaderMetadata   = "reader-metadata"   // reader of every pod, WithMetadataOnly
	VariantInformerMetadata = "informer-metadata" // client-go metadata informer for pods
	VariantInformerPods     = "informer-pods"     // typed pod informer
	VariantFloor            = "floor"             // the reader's WatchList request, envelopes decoded only
)

// scopeVariants is the order the scope suite's variants alternate in within a run.
var scopeVariants = []string{
	VariantReaderNode, VariantInformerNode, VariantReaderPods, VariantReaderMetadata,
	VariantInformerMetadata, VariantInformerPods, VariantFloor,
}

// isScopeVariant reports whether name is a variant of the scope suite.
func isScopeVariant(name string) bool { return slices.Contains(scopeVariants, name) }

// Node names: the scope suite's pods are spread round-robin over scopeNodes node names set in
// spec.nodeName at create (the nodes do not exist; envtest runs no scheduler and no kubelet, so the
// pods stay Pending). The per-node variants read the pods of scopeNode.
const (
	scopeNodes     = 100
	scopeNodeIndex = 7
)

// scopeNode is the node whose pods the per-node variants read.
var scopeNode = nodeName(scopeNodeIndex)

// scopeFieldSelector selects scopeNode's pods.
var scopeFieldSelector = "spec.nodeName=" + scopeNode

// nodeName is the node of pod i.
func nodeName(i int) string { return fmt.Sprintf("bench-node-%02d", i%scopeNodes) }

// podsOnNode is how many of the pods 0..n-1 are on node k (0 <= k < scopeNodes).
func podsOnNode(n, k int) int {
	if n <= k {
		return 0
	}
	return (n-1-k)/scopeNodes + 1
}

// newScopePod is newBenchPod(i) bound to nodeName(i).
func newScopePod(i int) *corev1.Pod {
	p := newBenchPod(i)
	p.Spec.NodeName = nodeName(i)
	return p
}

// scopeSuite is the scope suite: pods spread over scopeNodes nodes.
var scopeSuite = syncSuite{
	name:     SuiteScope,
	counted:  fmt.Sprintf("pods on %d nodes", scopeNodes),
	variants: scopeVariants,
	runsFile: scopeRunsFile, markdownFile: scopeMarkdownFile, csvFile: scopeCSVFile,
	populate:  populatePlanePods,
	describe:  describePods(func(n int) string { return fmt.Sprintf("%d pods on %s", podsOnNode(n, scopeNodeIndex), scopeNode) }),
	expected:  expectedObjects,
	summarize: SummarizeScope,
	targets:   ScopeTable.Targets,
}

// RunScope starts a control plane, creates pods spread over scopeNodes nodes, measures every
// variant of the scope suite at every N and writes the report: the tables and targets on stdout, and
// scope.md, scope.csv and scope-runs.jsonl into cfg.Out.
func RunScope(ctx context.Context, cfg ScopeConfig, stdout, stderr io.Writer) error {
	return runSyncSuite(ctx, cfg, &scopeSuite, stdout, stderr)
}

// describePods returns a syncSuite's describe for pods: describePod of the newest pod, then what
// more says of n pods.
func describePods(more func(n int) string) func(ctx context.Context, bp *benchPlane, n int) (string, error) {
	return func(ctx context.Context, bp *benchPlane, n int) (string, error) {
		d, err := describePod(ctx, bp.cs, n-1)
		if err != nil {
			return "", err
		}
		return d + "; " + more(n), nil
	}
}

// populatePlanePods is populatePods on bp, a syncSuite's populate.
func populatePlanePods(ctx context.Context, bp *benchPlane, have, n, workers int, log io.Writer) (int, error) {
	return populatePods(ctx, bp.cs, have, n, workers, log)
}

// populatePods creates the pods have..n-1 (newScopePod) with workers in parallel, and the
// namespaces first when have is 0. It returns the new pod count.
func populatePods(ctx context.Context, cs kubernetes.Interface, have, n, workers int, log io.Writer) (int, error) {
	if have == 0 {
		if err := createNamespaces(ctx, cs); err != nil {
			return have, err
		}
	}
	if n <= have {
		return have, nil
	}
	err := parallel(ctx, have, n, workers, "pods", log, func(ctx context.Context, i int) error {
		p := newScopePod(i)
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return have, fmt.Errorf("create pods: %w", err)
	}
	return n, nil
}

// expectedObjects is how many objects variant v should hold once synced with n pods.
func expectedObjects(v string, n int) int {
	if v == VariantReaderNode || v == VariantInformerNode {
		return podsOnNode(n, scopeNodeIndex)
	}
	return n
}

// Files of the scope suite in -out, beside the default suite's.
const (
	scopeMarkdownFile = "scope.md"
	scopeCSVFile      = "scope.csv"
	scopeRunsFile     = "scope-runs.jsonl"
)
