package watchlist

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/internal/checkpoint"
	"github.com/watchlist-go/watchlist/reader"
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

// TestSnapshotLeavesOutTheEntryInHand: a checkpoint taken while the consumer may still handle the
// entry it took last leaves that entry out (its identity as before it, its stream's resume point
// from before it), so a consumer killed before it made the entry durable gets it again; the last
// checkpoint, when the reader stopped, keeps it.
func TestSnapshotLeavesOutTheEntryInHand(t *testing.T) {
	ctx := context.Background()
	ch := make(chan reader.Entry)
	go func() {
		for range ch {
		}
	}()
	defer close(ch)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	o.checkpoint = true
	set := newTestSet()
	sink := setSink{o: o, set: set}
	token := sink.BeginSync(podID)
	mustAll(t,
		sink.Observe(ctx, podID, watch.Added, pod(uidA, "10"), token),
		sink.EndSync(ctx, podID, token, "20", false),
		sink.Observe(ctx, podID, watch.Added, pod(uidB, "21"), 0),
		sink.Progress(ctx, podID, "21"),
		sink.Observe(ctx, podID, watch.Modified, pod(uidA, "22"), 0),
		sink.Progress(ctx, podID, "22"))
	versions := func(c *checkpoint.Checkpoint) map[string]uint64 {
		m := map[string]uint64{}
		for _, obj := range c.Objects {
			m[string(formatUUID(obj.Key))] = obj.Version
		}
		return m
	}
	c, err := o.snapshot(ctx, set, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := versions(c), map[string]uint64{uidA: 10, uidB: 21}; !maps.Equal(got, want) {
		t.Errorf("checkpoint with the update of A in hand holds %v, want %v", got, want)
	}
	if rv := c.Streams[0].ResourceVersion; rv != "21" {
		t.Errorf("resume point %q, want 21 (before the entry in hand)", rv)
	}
	final, err := o.snapshot(ctx, set, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := versions(final), map[string]uint64{uidA: 22, uidB: 21}; !maps.Equal(got, want) || final.Streams[0].ResourceVersion != "22" {
		t.Errorf("last checkpoint holds %v at %q, want %v at 22", got, final.Streams[0].ResourceVersion, want)
	}
}

// TestRestoreDeliversTheHeldDelete: a checkpoint taken while the consumer held a delete keeps the
// object live, so that a reader restored from it delivers the delete again when its watch replays it.
func TestRestoreDeliversTheHeldDelete(t *testing.T) {
	ctx := context.Background()
	ch := make(chan reader.Entry, 16)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	o.checkpoint = true
	set := newTestSet()
	sink := setSink{o: o, set: set}
	token := sink.BeginSync(podID)
	mustAll(t,
		sink.EndSync(ctx, podID, token, "700", false),
		sink.Observe(ctx, podID, watch.Added, pod(uidA, "710"), 0),
		sink.Progress(ctx, podID, "710"),
		sink.Observe(ctx, podID, watch.Modified, pod(uidA, "747"), 0),
		sink.Progress(ctx, podID, "747"),
		sink.Observe(ctx, podID, watch.Deleted, pod(uidA, "748"), 0),
		sink.Progress(ctx, podID, "748"))
	for len(ch) > 0 {
		<-ch
	}
	c, err := o.snapshot(ctx, set, false)
	if err != nil {
		t.Fatal(err)
	}
	if rv := c.Streams[0].ResourceVersion; rv != "747" {
		t.Errorf("resume point %q, want 747 (before the held delete)", rv)
	}
	restored := newOutput(ch, 0, newStats(), logr.Discard())
	decoded, err := checkpoint.Decode(checkpoint.Encode(c))
	if err != nil {
		t.Fatal(err)
	}
	restored.filter.restore(decoded.Objects)
	rset := newTestSet()
	rsink := setSink{o: restored, set: rset}
	if err := rsink.Observe(ctx, podID, watch.Deleted, pod(uidA, "748"), 0); err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 {
		t.Fatalf("the restored reader delivered %d entries for the replayed delete, want 1", len(ch))
	}
	if e := <-ch; e.ChangeType() != reader.CTDelete {
		t.Errorf("the restored reader delivered %s, want the delete", e)
	}
}

// mustAll fails the test at the first error of calls made in order.
func mustAll(t *testing.T, errs ...error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
