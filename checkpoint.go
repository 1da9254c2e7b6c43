package watchlist

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/watchlist-go/watchlist/internal/checkpoint"
)

// CheckpointStore keeps a reader's checkpoint: an opaque, versioned and checksummed blob. Load
// returns ErrNoCheckpoint when nothing was saved yet; Save replaces what was saved, atomically: a
// Save that fails leaves the previous checkpoint as it was.
type CheckpointStore interface {
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, checkpoint []byte) error
}

// ErrNoCheckpoint is what a CheckpointStore's Load returns when nothing was saved yet.
var ErrNoCheckpoint = errors.New("watchlist: no checkpoint saved")

// FileCheckpoint returns a CheckpointStore that keeps the checkpoint in the file at path. Save
// writes a temporary file in the same folder, syncs it, renames it over path and syncs the folder,
// so that a process killed at any moment leaves either the old checkpoint or the new one, never a
// mix; a failed Save removes its temporary file. Load of a missing file returns ErrNoCheckpoint.
func FileCheckpoint(path string) CheckpointStore { return fileCheckpoint{path: path} }

type fileCheckpoint struct{ path string }

func (f fileCheckpoint) Load(ctx context.Context) ([]byte, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("watchlist: load checkpoint: %w", err)
	}
	return data, nil
}

func (f fileCheckpoint) Save(ctx context.Context, checkpoint []byte) (err error) {
	if err := f.check(ctx); err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("watchlist: save checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
			err = fmt.Errorf("watchlist: save checkpoint to %s: %w", f.path, err)
		}
	}()
	if _, err := tmp.Write(checkpoint); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	return syncDir(dir)
}

// check refuses an empty path and an ended context.
func (f fileCheckpoint) check(ctx context.Context) error {
	if f.path == "" {
		return errors.New("watchlist: FileCheckpoint: empty path")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("watchlist: checkpoint: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Bounds of WithCheckpoint's period.
const (
	MinCheckpoint = time.Second
	MaxCheckpoint = 24 * time.Hour
)

// WithCheckpoint makes the reader save a checkpoint to store every `every` (and when it stops, and
// on Reader.Checkpoint), and start from the checkpoint of an earlier run: it then delivers only
// what changed since, deletes included. A checkpoint covers the entries the consumer took from out:
// one still in out's buffer comes again after a restart, and so does the one it holds when the
// checkpoint is taken (or that object's delete). The last checkpoint, when the reader stops, covers
// every entry taken: the consumer is expected to finish the one it holds. With periodic saves, an
// object the consumer took after the last save and that was deleted during a downtime longer than
// the server's watch window gets no delete after the restart (the reader cannot know the consumer
// saw it): a consumer that needs that exact calls Checkpoint itself, as Checkpoint says.
//
// At Run, a missing checkpoint (ErrNoCheckpoint) starts cold; one that cannot be read, or that was
// written by a reader of other kinds or another scope, makes Run fail and is left as it is. Each
// stream resumes from its saved point with a plain watch while the server still has it, and
// otherwise (410) gets a complete state that is diffed against the checkpoint. A save that fails is
// logged and tried again at the next period. A nil store, a second WithCheckpoint, or every outside
// [MinCheckpoint, MaxCheckpoint] makes New fail.
func WithCheckpoint(store CheckpointStore, every time.Duration) Option {
	return func(r *Reader) error {
		switch {
		case store == nil:
			return errors.New("WithCheckpoint: nil store")
		case every < MinCheckpoint || every > MaxCheckpoint:
			return fmt.Errorf("WithCheckpoint(%s): the period must lie between %s and %s", every, MinCheckpoint, MaxCheckpoint)
		case r.store != nil:
			return errors.New("WithCheckpoint: given twice")
		}
		r.store, r.saveEvery = store, every
		return nil
	}
}

// Checkpoint saves a checkpoint now, covering every entry the consumer took but the last, which the
// checkpoint knows as one the consumer may or may not have finished (after a restart it comes
// again, or the object's delete if it is gone). It waits, bounded by ctx, until out's buffer is
// empty. It may be called from the goroutine that reads out: called there before the consumer makes
// the entry it holds durable, the checkpoint and the consumer's own state never disagree, also
// across a downtime longer than the server's watch window. It fails without WithCheckpoint, before
// Run returned, and after the reader stopped (which saved its last one).
func (r *Reader) Checkpoint(ctx context.Context) error {
	r.mu.Lock()
	store, opened, closed := r.store, r.opened, r.closed
	r.mu.Unlock()
	switch {
	case store == nil:
		return errors.New("watchlist: Checkpoint: the reader has no WithCheckpoint")
	case closed:
		return ErrClosed
	case !opened:
		return ErrNotRunning
	}
	return r.save(ctx, false)
}

// save takes a checkpoint of the current set and writes it; one save at a time, so a later
// checkpoint is never overwritten by an earlier one. Only the copy holds up delivery; the write
// happens outside the output's lock.
func (r *Reader) save(ctx context.Context, final bool) error {
	if err := r.saveMu.lock(ctx); err != nil {
		return fmt.Errorf("watchlist: checkpoint: %w", err)
	}
	defer r.saveMu.unlock()
	r.mu.Lock()
	set := r.current
	r.mu.Unlock()
	c, err := r.output.snapshot(ctx, set, final)
	if err != nil {
		return fmt.Errorf("watchlist: checkpoint: %w", err)
	}
	c.Scope = r.fingerprint()
	return r.store.Save(ctx, checkpoint.Encode(c))
}

// saveLoop saves a checkpoint every saveEvery until ctx ends; a failed save is logged and tried
// again at the next period.
func (r *Reader) saveLoop(ctx context.Context) {
	t := time.NewTicker(r.saveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		saveCtx, cancel := context.WithTimeout(ctx, r.saveEvery)
		if err := r.save(saveCtx, false); err != nil && ctx.Err() == nil {
			r.log.Error(err, "checkpoint not saved; trying again at the next period", "every", r.saveEvery.String())
		}
		cancel()
	}
}

// finalSaveWait bounds the wait for out's buffer to drain before the last checkpoint, when the
// reader stops; past it the previous checkpoint stays.
const finalSaveWait = 2 * time.Second

// saveFinal saves the last checkpoint once the streams stopped, if Run opened them.
func (r *Reader) saveFinal() {
	r.mu.Lock()
	save := r.store != nil && r.opened
	r.mu.Unlock()
	if !save {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalSaveWait)
	defer cancel()
	if err := r.save(ctx, true); err != nil {
		r.log.Error(err, "last checkpoint not saved (entries not taken from out, or the store failed); the previous one stays")
	}
}

// restore loads the checkpoint of an earlier run, if there is one, into the filter, and sets each
// stream's resume point. Run calls it before any stream starts.
func (r *Reader) restore(ctx context.Context) error {
	if r.store == nil {
		return nil
	}
	data, err := r.store.Load(ctx)
	if errors.Is(err, ErrNoCheckpoint) {
		r.log.Info("no checkpoint: starting from the complete state")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load checkpoint: %w", err)
	}
	c, err := checkpoint.Decode(data)
	if err != nil {
		return fmt.Errorf("checkpoint unreadable, left as it is: %w", err)
	}
	if c.Scope != r.fingerprint() || len(c.Streams) != len(r.streams) {
		return errors.New("the checkpoint was written by a reader of other kinds or another scope; left as it is")
	}
	r.resumeAt = make([]string, len(r.streams))
	for i, s := range c.Streams {
		r.resumeAt[i] = s.ResourceVersion
	}
	r.output.filter.restore(c.Objects)
	r.log.Info("resuming from a checkpoint", "objects", len(c.Objects), "bytes", len(data))
	return nil
}

// fingerprint identifies what the reader reads: its streams' kinds, resources, namespaces,
// selectors and media. A checkpoint of another fingerprint is refused.
func (r *Reader) fingerprint() [32]byte {
	h := sha256.New()
	for _, s := range r.streams {
		fmt.Fprintf(h, "%d %s %q %q %q %t\n", s.kind.ID, s.kind.Resource, s.scope.Namespace,
			s.scope.LabelSelector, s.scope.FieldSelector, s.scope.MetadataOnly)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
