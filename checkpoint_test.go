package watchlist

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFileCheckpoint: a missing file is ErrNoCheckpoint; a save replaces the file whole; a save that
// fails leaves the previous checkpoint and no temporary file; bad input is an error.
func TestFileCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "reader.ckpt")
	store := FileCheckpoint(path)
	if _, err := store.Load(ctx); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("Load of a missing file = %v, want ErrNoCheckpoint", err)
	}
	for _, data := range [][]byte{[]byte("first"), bytes.Repeat([]byte("x"), 1<<20), {}} {
		if err := store.Save(ctx, data); err != nil {
			t.Fatal(err)
		}
		got, err := store.Load(ctx)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Load after Save of %d bytes = %d bytes, %v", len(data), len(got), err)
		}
	}
	if err := store.Save(ctx, []byte("kept")); err != nil {
		t.Fatal(err)
	}

	// A save that cannot rename (path is now a non-empty folder's place: make the target a folder).
	blocked := FileCheckpoint(filepath.Join(dir, "sub"))
	if err := os.MkdirAll(filepath.Join(dir, "sub", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := blocked.Save(ctx, []byte("never")); err == nil {
		t.Fatal("Save over a folder succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "reader.ckpt" && e.Name() != "sub" {
			t.Errorf("a failed save left %s behind", e.Name())
		}
	}
	if got, _ := store.Load(ctx); string(got) != "kept" {
		t.Errorf("checkpoint after a failed save elsewhere = %q, want %q", got, "kept")
	}

	// A folder that does not exist, an empty path, an ended context.
	if err := FileCheckpoint(filepath.Join(dir, "missing", "c")).Save(ctx, []byte("x")); err == nil {
		t.Error("Save into a missing folder succeeded")
	}
	if _, err := FileCheckpoint("").Load(ctx); err == nil {
		t.Error("Load with an empty path succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := store.Save(cancelled, []byte("late")); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with an ended context = %v, want context.Canceled", err)
	}
	if got, _ := store.Load(ctx); string(got) != "kept" {
		t.Errorf("checkpoint after a cancelled save = %q, want %q", got, "kept")
	}
}
