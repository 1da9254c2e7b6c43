package bench

// The restart suite (-suite restart): what a warm restart (WithCheckpoint) saves against a cold
// start and against an informer restart. Pods only, as the scope suite creates them. Each run of
// each N is, in order: re-create the pods the previous run deleted; a child syncs a reader with
// WithCheckpoint, times Reader.Checkpoint and closes it, which saves the checkpoint (the
// checkpoint-save variant); the parent updates 1% of the pods and deletes 1%; then a reader started
// from that checkpoint (reader-warm), a reader without one (reader-cold) and a client-go pod
// informer started fresh (informer-restart), each in its own child, as every sync suite measures
// its variants. Every warm run thus sees exactly its own run's change set, relative to a checkpoint
// taken just before it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Variants of the restart suite, in the order they run within a run: each is also the value of the
// child's hidden -child flag.
const (
	// VariantCheckpointSave syncs a reader with WithCheckpoint (cold: the parent removed the file),
	// times Reader.Checkpoint and closes the reader, which saves the checkpoint reader-warm and
	// reader-expired start from.
	VariantCheckpointSave  = "checkpoint-save"
	VariantReaderWarm      = "reader-warm"      // a reader started from the checkpoint, after the change set
	VariantReaderCold      = "reader-cold"      // a reader without a checkpoint, after the change set
	VariantInformerRestart = "informer-restart" // a typed pod informer started fresh, after the change set
	// VariantRestartFloor is the reader's WatchList for pods read without decoding any object:
	// what reading the complete state costs at least.
	VariantRestartFloor = "restart-floor"
	// VariantReaderRelist is reader-cold that, once synced, relists the quiet cluster (Reader.Relist)
	// and reports what that cost.
	VariantReaderRelist = "reader-relist"
	// VariantReaderExpired is reader-warm after the parent restarted the apiserver: the
	// checkpoint's resume point is gone (410), so the reader takes a complete state and diffs it
	// against the checkpoint.
	VariantReaderExpired = "reader-expired"
)

// restartVariants is the order the restart suite's children run in within a run: the checkpoint
// first, then (once the parent changed the pods) the restarts, the floor and the relist, and last
// (once the parent restarted the apiserver) the restart whose resume point expired.
var restartVariants = []string{
	VariantCheckpointSave, VariantReaderWarm, VariantReaderCold, VariantInformerRestart,
	VariantRestartFloor, VariantReaderRelist, VariantReaderExpired,
}

// isRestartVariant reports whether name is a variant of the restart suite.
func isRestartVariant(name string) bool { return slices.Contains(restartVariants, name) }

// restartShare: between the checkpoint and the restarts, 1/restartShare of the pods is updated and
// as many are deleted; none is created. The suite needs at least restartShare pods.
const restartShare = 100

// eventsPerDelete is how many entries a resumed watch delivers for a pod deleted while the reader
// was down: the apiserver deletes a pod (GracePeriodSeconds 0) in two writes, one that sets its
// deletionTimestamp (MODIFIED, an update entry) and one that removes it (DELETED, a delete entry).
const eventsPerDelete = 2

// restartLabel is the label a change set's update sets, to a value of its own (changeSet.value), so
// that every update writes a new version.
const restartLabel = "bench.watchlist/restart"

// changeSet is what the parent changes between the checkpoint of run run at n pods and the
// restarts: size() pods updated, then the next size() pods deleted. Runs move on to the next block
// of 2*size() pods, round-robin, so that each run changes other pods.
type changeSet struct{ n, run int }

// size is how many pods the change set updates, and how many it deletes.
func (c changeSet) size() int { return c.n / restartShare }

// start is the first pod of the run's block.
func (c changeSet) start() int {
	block := 2 * c.size()
	return (c.run - 1) % (c.n / block) * block
}

// updated is the range [from, to) of the pods the change set updates.
func (c changeSet) updated() (from, to int) { return c.start(), c.start() + c.size() }

// deleted is the range [from, to) of the pods the change set deletes.
func (c changeSet) deleted() (from, to int) { return c.start() + c.size(), c.start() + 2*c.size() }

// value is what the change set's updates set restartLabel to: different for every N and run.
func (c changeSet) value() string { return "n" + strconv.Itoa(c.n) + "-r" + strconv.Itoa(c.run) }

// restartExpected is how many entries variant v delivers at n pods (the informer: objects in its
// store; the floor: objects in the state): the checkpoint-save reader every pod; the warm reader its
// change set, each update one entry and each delete eventsPerDelete; the reader whose resume point
// expired each update and each delete once (the diff sees the last state only); the others the pods
// left.
func restartExpected(v string, n int) int {
	c := changeSet{n: n}.size()
	switch v {
	case VariantCheckpointSave:
		return n
	case VariantReaderWarm:
		return c + eventsPerDelete*c
	case VariantReaderExpired:
		return 2 * c
	}
	return n - c
}

// restartExpectedDeletes is how many of restartExpected's entries are deletes: the warm readers'
// deleted pods, none for the others (an informer's deletes are not counted).
func restartExpectedDeletes(v string, n int) int {
	if v == VariantReaderWarm || v == VariantReaderExpired {
		return changeSet{n: n}.size()
	}
	return 0
}

// Checkpoints of the restart children, in the plane's temporary folder: restartCheckpointFile is
// the one checkpoint-save writes and reader-warm starts from (and saves again at Close);
// expiredCheckpointFile is the parent's copy of it from before the change set, which
// reader-expired starts from.
const (
	restartCheckpointFile = "restart.ckpt"
	expiredCheckpointFile = "restart-expired.ckpt"
)

// restartChildArgs gives the children that read or write a checkpoint its file.
func restartChildArgs(bp *benchPlane, v string) []string {
	switch v {
	case VariantCheckpointSave, VariantReaderWarm:
		return []string{"-checkpoint", filepath.Join(bp.tmp, restartCheckpointFile)}
	case VariantReaderExpired:
		return []string{"-checkpoint", filepath.Join(bp.tmp, expiredCheckpointFile)}
	}
	return nil
}

// restartParent is what the restart suite remembers in the parent between children: the pods the
// last change set deleted, which the next run re-creates before its checkpoint.
type restartParent struct {
	deleted *changeSet // nil: every pod exists
}

// before prepares the cluster for step's child: before the checkpoint, every pod exists again and
// no checkpoint file; before the warm restart, the run's change set is written.
func (p *restartParent) before(ctx context.Context, step suiteStep) error {
	switch step.variant {
	case VariantCheckpointSave:
		if p.deleted != nil {
			from, to := p.deleted.deleted()
			if _, err := populatePods(ctx, step.bp.cs, from, to, step.workers, step.log); err != nil {
				return fmt.Errorf("re-create the pods deleted by run %d at %d pods: %w", p.deleted.run, p.deleted.n, err)
			}
			p.deleted = nil
		}
		path := filepath.Join(step.bp.tmp, restartCheckpointFile)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the previous checkpoint: %w", err)
		}
	case VariantReaderWarm:
		// reader-expired starts from this checkpoint too, but reader-warm saves its own at Close.
		tmp := step.bp.tmp
		if err := copyFile(filepath.Join(tmp, restartCheckpointFile), filepath.Join(tmp, expiredCheckpointFile)); err != nil {
			return err
		}
		c := changeSet{n: step.n, run: step.run}
		if err := p.change(ctx, step, c); err != nil {
			return err
		}
	case VariantReaderExpired:
		// A restarted apiserver's watch cache begins at etcd's current revision: the checkpoint's
		// resume point, from before the change set's writes, is too old for it (410).
		fmt.Fprintf(step.log, "bench: N=%d run %d: restarting kube-apiserver\n", step.n, step.run)
		if err := step.bp.plane.RestartAPIServer(); err != nil {
			return fmt.Errorf("restart the apiserver: %w", err)
		}
	}
	return nil
}

// copyFile copies the file from to to, which it creates or truncates.
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read the checkpoint: %w", err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		return fmt.Errorf("copy the checkpoint: %w", err)
	}
	return nil
}

// change writes change set c: updates first, then deletes, each with step.workers writers.
func (p *restartParent) change(ctx context.Context, step suiteStep, c changeSet) error {
	pods := step.bp.cs.CoreV1()
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, restartLabel, c.value())
	from, to := c.updated()
	err := parallelDo(ctx, from, to, step.workers, "updated", "pods", step.log, func(ctx context.Context, i int) error {
		_, err := pods.Pods(namespaceName(i)).Patch(ctx, podName(i), types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update pods: %w", err)
	}
	from, to = c.deleted()
	p.deleted = &c // from now on, whatever got deleted is re-created before the next checkpoint
	err = parallelDo(ctx, from, to, step.workers, "deleted", "pods", step.log, func(ctx context.Context, i int) error {
		return pods.Pods(namespaceName(i)).Delete(ctx, podName(i), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	if err != nil {
		return fmt.Errorf("delete pods: %w", err)
	}
	return nil
}

// newRestartSuite returns the restart suite, with a parent state of its own.
func newRestartSuite() *syncSuite {
	p := &restartParent{}
	return &syncSuite{
		name: SuiteRestart, counted: "pods", variants: restartVariants,
		defaultNs: "30000", minN: restartShare,
		populate: populatePlanePods,
		describe: describePods(func(n int) string {
			c := changeSet{n: n}.size()
			return fmt.Sprintf("each run updates %d pods and deletes %d between the checkpoint and the restarts", c, c)
		}),
		before:          p.before,
		childArgs:       restartChildArgs,
		expected:        restartExpected,
		expectedDeletes: restartExpectedDeletes,
		exact:           true,
		restartable:     true,
		summarize:       SummarizeRestart,
		targets:         ScopeTable.RestartTargets,
		runsFile:        restartRunsFile, markdownFile: restartMarkdownFile, csvFile: restartCSVFile,
	}
}

// Files of the restart suite in -out, beside the other suites'.
const (
	restartMarkdownFile = "restart.md"
	restartCSVFile      = "restart.csv"
	restartRunsFile     = "restart-runs.jsonl"
)
