package watchlist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
