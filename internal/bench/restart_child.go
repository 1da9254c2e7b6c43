package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist"
)

// restartSavePeriod is WithCheckpoint's period in the restart children: longer than a child lives,
// so that the only checkpoints are the timed Reader.Checkpoint and the last one, at Close.
const restartSavePeriod = time.Hour

// checkpointTimeout bounds the timed Reader.Checkpoint.
const checkpointTimeout = time.Minute

// newRestartSubject builds the subject of restart variant v on restCfg. checkpoint is the
// checkpoint file of the checkpoint-save and reader-warm variants. Every reader reads pods into an
// unbuffered channel (WithCheckpoint covers what the consumer took) and keeps nothing.
func newRestartSubject(v, checkpoint string, restCfg *rest.Config) (syncSubject, error) {
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("build clientset: %w", err)
	}
	pods := func(opts ...watchlist.Option) *readerSubject {
		return &readerSubject{cs: cs, lags: &lagRecorder{}, types: watchlist.RTPod, opts: opts, unbuffered: true}
	}
	withCheckpoint := func() (watchlist.Option, error) {
		if checkpoint == "" {
			return nil, fmt.Errorf("%s: no -checkpoint file", v)
		}
		return watchlist.WithCheckpoint(watchlist.FileCheckpoint(checkpoint), restartSavePeriod), nil
	}
	switch v {
	case VariantReaderCold:
		return pods(), nil
	case VariantRestartFloor:
		return podsFloor(cs), nil
	case VariantReaderRelist:
		return &relistSubject{readerSubject: pods()}, nil
	case VariantInformerRestart:
		return &podInformerSubject{cs: cs}, nil
	case VariantReaderWarm, VariantReaderExpired, VariantCheckpointSave:
		opt, err := withCheckpoint()
		if err != nil {
			return nil, err
		}
		if v != VariantCheckpointSave {
			return pods(opt), nil
		}
		return &checkpointSaveSubject{readerSubject: pods(opt), path: checkpoint}, nil
	}
	return nil, fmt.Errorf("unknown restart variant %q", v)
}

// afterSync adds the deletes among the entries counted once synced.
func (s *readerSubject) afterSync(_ context.Context, res *ScopeResult) error {
	res.Deletes = int(s.deletes.Load())
	return nil
}

// checkpointSaveSubject is a reader with WithCheckpoint that, once synced, saves a checkpoint with
// Reader.Checkpoint and reports how long that took and how large the file is. Its Close saves the
// last checkpoint, which the warm reader starts from.
type checkpointSaveSubject struct {
	*readerSubject
	path string // the file of the reader's FileCheckpoint
}

func (s *checkpointSaveSubject) afterSync(ctx context.Context, res *ScopeResult) error {
	if err := s.readerSubject.afterSync(ctx, res); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	start := time.Now()
	// Not from the consumer's goroutine, as Checkpoint requires.
	if err := s.r.Checkpoint(ctx); err != nil {
		return fmt.Errorf("Reader.Checkpoint: %w", err)
	}
	res.CheckpointSeconds = time.Since(start).Seconds()
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("the saved checkpoint: %w", err)
	}
	if fi.Size() == 0 {
		return errors.New("the saved checkpoint is empty")
	}
	res.CheckpointBytes = fi.Size()
	return nil
}

// relistSubject is a reader that, once synced, relists the quiet cluster and reports what that
// cost: a complete state of every pod, diffed against what was delivered.
type relistSubject struct {
	*readerSubject
}

func (s *relistSubject) afterSync(ctx context.Context, res *ScopeResult) error {
	if err := s.readerSubject.afterSync(ctx, res); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, relistTimeout)
	defer cancel()
	rs, err := s.relist(ctx)
	if err != nil {
		return err
	}
	res.RelistEntries, res.RelistSeconds, res.RelistCPU = rs.entries, rs.took.Seconds(), rs.cpu.Seconds()
	if rs.entries != 0 {
		return fmt.Errorf("a relist of the quiet cluster delivered %d entries, want 0", rs.entries)
	}
	return nil
}
