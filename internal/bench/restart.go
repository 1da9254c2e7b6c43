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
	// times Reader.Checkpoint and closes the reader, which saves the checkpoint reader-warm starts
	// from.
	VariantCheckpointSave  = "checkpoint-save"
	VariantReaderWarm      = "reader-warm"      // a reader started from the checkpoint, after the change set
	VariantReaderCold      = "reader-cold"      // a reader without a checkpoint, after the change set
	VariantInformerRestart = "informer-restart" // a typed pod informer started fresh, after the change set
)

// restartVariants is the order the restart suite's children run in within a run: the checkpoint
// first, then (once the parent changed the pods) the three restarts.
var restartVariants = []string{VariantCheckpointSave, VariantReaderWarm, VariantReaderCold, VariantInformerRestart}

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
// store): the checkpoint-save reader every pod; the warm reader its change set, each update one
// entry and each delete eventsPerDelete; the cold reader and the informer the pods left.
func restartExpected(v string, n int) int {
	c := changeSet{n: n}.size()
	switch v {
	case VariantCheckpointSave:
		return n
	case VariantReaderWarm:
		return c + eventsPerDelete*c
	}
	return n - c
}

// restartExpectedDeletes is how many of restartExpected's entries are deletes: the warm reader's
// deleted pods, none for the others (an informer's deletes are not counted).
func restartExpectedDeletes(v string, n int) int {
	if v == VariantReaderWarm {
		return changeSet{n: n}.size()
	}
	return 0
}

// restartCheckpointFile is the checkpoint of the checkpoint-save and reader-warm children, in the
// plane's temporary folder.
const restartCheckpointFile = "restart.ckpt"

// restartChildArgs gives the checkpoint-save and reader-warm children the checkpoint file.
func restartChildArgs(bp *benchPlane, v string) []string {
	if v != VariantCheckpointSave && v != VariantReaderWarm {
		return nil
	}
	return []string{"-checkpoint", filepath.Join(bp.tmp, restartCheckpointFile)}
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
		c := changeSet{n: step.n, run: step.run}
		if err := p.change(ctx, step, c); err != nil {
			return err
		}
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
		summarize:       SummarizeRestart,
		runsFile:        restartRunsFile, markdownFile: restartMarkdownFile, csvFile: restartCSVFile,
	}
}

// Files of the restart suite in -out, beside the other suites'.
const (
	restartMarkdownFile = "restart.md"
	restartCSVFile      = "restart.csv"
	restartRunsFile     = "restart-runs.jsonl"
)
