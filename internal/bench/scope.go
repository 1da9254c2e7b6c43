package bench

// The scope suite (-suite scope): what WithFieldSelector and WithMetadataOnly save, and what the
// server and the network cost on their own. Every variant watches pods only; each runs in its own
// child process, as the default suite's variants do, and reports only its initial sync: time, CPU,
// bytes read from the network and heap.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Suites, the values of -suite.
const (
	SuiteDefault = "default" // reader against informer for 7 kinds: sync, churn, relist
	SuiteScope   = "scope"   // per-node pods, metadata only, the floor: initial sync only
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

// ScopeConfig is what the scope suite runs.
type ScopeConfig struct {
	Ns         []int  // pod counts, increasing
	Runs       []int  // runs of each variant at each N (one, or one per N)
	Out        string // folder for scope.md, scope.csv and scope-runs.jsonl
	CPUProfile string // children write CPU profiles named after this
	MemProfile string // children write heap profiles (once synced) named after this
	Workers    int    // parallel writers when creating pods
}

// validate reports a ScopeConfig that RunScope cannot measure.
func (c ScopeConfig) validate() error {
	switch {
	case len(c.Ns) == 0:
		return errors.New("-n: no pod count")
	case !slices.IsSorted(c.Ns):
		return errors.New("-n must be increasing: objects are only ever added")
	case len(c.Runs) != 1 && len(c.Runs) != len(c.Ns):
		return fmt.Errorf("-runs: want one count or one per N, got %d for %d N", len(c.Runs), len(c.Ns))
	case slices.ContainsFunc(c.Runs, func(r int) bool { return r < 1 }):
		return errors.New("-runs: counts must be positive")
	case c.Workers < 1:
		return errors.New("-workers must be at least 1")
	}
	return nil
}

// defaultOnlyFlags are the flags of the default suite (churn, relist and its extra variants), which
// the scope suite does not use.
var defaultOnlyFlags = []string{"rate", "churn", "reader-json", "informer-json", "informer-strip", "resync"}

// scopeFlags are the parsed flags the scope suite uses.
type scopeFlags struct {
	ns, runs, out, cpuProfile, memProfile, report string
	workers                                       int
}

// mainScope runs the scope suite for Main once the flags are parsed, and returns the exit code.
func mainScope(ctx context.Context, fs *flag.FlagSet, f scopeFlags, stdout, stderr io.Writer) int {
	var misplaced []string
	fs.Visit(func(fl *flag.Flag) {
		if slices.Contains(defaultOnlyFlags, fl.Name) {
			misplaced = append(misplaced, "-"+fl.Name)
		}
	})
	if len(misplaced) > 0 {
		fmt.Fprintf(stderr, "bench: %s: only for -suite %s (the scope suite measures the initial sync only)\n",
			strings.Join(misplaced, ", "), SuiteDefault)
		return 2
	}
	if f.report != "" {
		if err := rerenderScope(f.report, f.out, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	cfg := ScopeConfig{Out: f.out, CPUProfile: f.cpuProfile, MemProfile: f.memProfile, Workers: f.workers}
	return runSuite(stderr, f.ns, f.runs, func(ns, runs []int) error {
		cfg.Ns, cfg.Runs = ns, runs
		return cfg.validate()
	}, func() error { return RunScope(ctx, cfg, stdout, stderr) })
}

// RunScope starts a control plane, creates pods spread over scopeNodes nodes, measures every
// variant of the scope suite at every N and writes the report: the tables and targets on stdout, and
// scope.md, scope.csv and scope-runs.jsonl into cfg.Out.
func RunScope(ctx context.Context, cfg ScopeConfig, stdout, stderr io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	ns, runs := cfg.Ns, cfg.Runs
	if len(runs) == 1 {
		runs = slices.Repeat(runs, len(ns))
	}
	bp, err := startSuite(cfg.Out, cfg.CPUProfile, cfg.MemProfile, scopeRunsFile, "scope suite", stderr)
	if err != nil {
		return err
	}
	defer func() {
		if serr := bp.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	kubeconfig, cs := bp.kubeconfig, bp.cs

	started := time.Now()
	var results []ScopeResult
	have := 0
	enc := json.NewEncoder(bp.runs)
	for i, n := range ns {
		fmt.Fprintf(stderr, "bench: N=%d: creating pods on %d nodes (%d workers)\n", n, scopeNodes, cfg.Workers)
		if have, err = populatePods(ctx, cs, have, n, cfg.Workers, stderr); err != nil {
			return err
		}
		if d, err := describePod(ctx, cs, n-1); err == nil {
			fmt.Fprintf(stderr, "bench: %s; %d pods on %s\n", d, podsOnNode(n, scopeNodeIndex), scopeNode)
		} else {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		for run := 1; run <= runs[i]; run++ {
			for _, v := range scopeVariants {
				res, err := measureScopeOne(ctx, cfg, v, n, run, kubeconfig, stderr)
				if err != nil {
					return fmt.Errorf("N=%d run %d %s: %w", n, run, v, err)
				}
				results = append(results, res)
				if err := enc.Encode(res); err != nil {
					return fmt.Errorf("write %s: %w", scopeRunsFile, err)
				}
			}
		}
	}
	fmt.Fprintf(stderr, "bench: measured in %s\n", time.Since(started).Round(time.Second))
	return writeScopeReport(SummarizeScope(results), cfg.Out, stdout)
}

// populatePods creates the pods have..n-1 (newScopePod) with workers in parallel, and the
// namespaces first when have is 0. It returns the new pod count.
func populatePods(ctx context.Context, cs kubernetes.Interface, have, n, workers int, log io.Writer) (int, error) {
	if have == 0 {
		for i := range namespaces {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaceName(i)}}
			if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return have, fmt.Errorf("create namespace %s: %w", ns.Name, err)
			}
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

// measureScopeOne runs one child of scope variant v and waits for its result.
func measureScopeOne(ctx context.Context, cfg ScopeConfig, v string, n, run int, kubeconfig string, stderr io.Writer) (res ScopeResult, err error) {
	args := []string{"-child", v, "-kubeconfig", kubeconfig}
	if cfg.CPUProfile != "" {
		args = append(args, "-cpuprofile", profilePath(cfg.CPUProfile, v, n, run))
	}
	if cfg.MemProfile != "" {
		args = append(args, "-memprofile", profilePath(cfg.MemProfile, v, n, run))
	}
	// Let the apiserver settle after the previous child or the pod creation.
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	c, err := startChild(args, stderr)
	if err != nil {
		return res, err
	}
	defer func() {
		if ferr := c.finish(err != nil, 30*time.Second); ferr != nil && err == nil {
			err = ferr
		}
	}()
	m, err := c.await(ctx, phaseDone, syncTimeout+time.Minute)
	if err != nil {
		return res, err
	}
	if m.Scope == nil {
		return res, fmt.Errorf("child reported %q without a result", phaseDone)
	}
	res = *m.Scope
	res.Variant, res.N, res.Run = v, n, run
	tag := fmt.Sprintf("bench: N=%d run %d %-17s", n, run, v)
	fmt.Fprintf(stderr, "%s: %d objects synced in %.3f s, CPU %.3f s, %.1f KiB received (%.1f KiB of bodies after gzip), heap %.1f MiB (peak %.1f)\n",
		tag, res.Objects, res.SyncSeconds, res.SyncCPU, float64(res.BytesReceived)/kib, float64(res.BodyBytes)/kib,
		float64(res.HeapSynced)/mib, float64(res.HeapPeakSync)/mib)
	if want := expectedObjects(v, n); res.Objects != want {
		fmt.Fprintf(stderr, "%s: WARNING: %d objects, want %d\n", tag, res.Objects, want)
	}
	return res, nil
}

// checkScopeVariant refuses a result of a variant the scope suite does not have.
func checkScopeVariant(res ScopeResult) error {
	if !isScopeVariant(res.Variant) {
		return fmt.Errorf("%q is not a variant of the scope suite", res.Variant)
	}
	return nil
}

// rerenderScope reads the results of an earlier scope run from runsFile and writes the report into
// out. A runs file of the default suite is refused (its fields are not a ScopeResult's).
func rerenderScope(runsFile, out string, stdout io.Writer) error {
	results, err := loadRuns(runsFile, out, true, checkScopeVariant)
	if err != nil {
		return err
	}
	return writeScopeReport(SummarizeScope(results), out, stdout)
}

// writeScopeReport prints the tables and targets and writes them, and the CSV, to out.
func writeScopeReport(t ScopeTable, out string, stdout io.Writer) error {
	var md strings.Builder
	if err := t.Markdown(&md); err != nil {
		return err
	}
	md.WriteString("\nTargets:\n\n")
	if err := WriteTargets(&md, t.Targets()); err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, md.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if err := writeFile(filepath.Join(out, scopeMarkdownFile), func(w io.Writer) error {
		_, err := io.WriteString(w, md.String())
		return err
	}); err != nil {
		return err
	}
	return writeFile(filepath.Join(out, scopeCSVFile), t.CSV)
}

// Files of the scope suite in -out, beside the default suite's.
const (
	scopeMarkdownFile = "scope.md"
	scopeCSVFile      = "scope.csv"
	scopeRunsFile     = "scope-runs.jsonl"
)
