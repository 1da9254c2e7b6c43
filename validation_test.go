package watchlist

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// offlineClientset is a real clientset for a server that does not exist: enough to test what New,
// SetOut and Close do before any request.
func offlineClientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestNewRejectsBadInput(t *testing.T) {
	cs := offlineClientset(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		cs      *kubernetes.Clientset
		types   RetrieveType
		opts    []Option
		wantErr string
	}{
		{"nil clientset", context.Background(), nil, RTPod, nil, "nil clientset"},
		{"zero clientset", context.Background(), &kubernetes.Clientset{}, RTPod, nil, "no REST client"},
		{"no bit", context.Background(), cs, 0, nil, "no RetrieveType"},
		{"unknown bit", context.Background(), cs, RTPod | 1<<20, nil, "unknown RetrieveType bits 0x100000"},
		{"negative filter size", context.Background(), cs, RTPod, []Option{WithFilterSize(-1)}, "WithFilterSize(-1)"},
		{"filter size above the bound", context.Background(), cs, RTPod, []Option{WithFilterSize(MaxFilterSize + 1)}, "must lie between 0 and"},
		{"relist too short", context.Background(), cs, RTPod, []Option{WithRelist(time.Minute)}, "WithRelist(1m0s)"},
		{"relist too long", context.Background(), cs, RTPod, []Option{WithRelist(8 * 24 * time.Hour)}, "must be between"},
		{"nil option", context.Background(), cs, RTPod, []Option{nil}, "option 0 is nil"},
		{"cancelled context", cancelled, cs, RTPod, nil, "context canceled"},
		{"no resource", context.Background(), cs, 0, []Option{WithResources()}, "WithResources: no resource"},
		{"resource without a name", context.Background(), cs, 0, []Option{WithResources(schema.GroupVersionResource{Version: "v1"})}, "no resource name"},
		{"resource without a version", context.Background(), cs, 0, []Option{WithResources(schema.GroupVersionResource{Group: "apps", Resource: "statefulsets"})}, "statefulsets.apps (apps/): no version"},
		{"subresource", context.Background(), cs, 0, []Option{WithResources(schema.GroupVersionResource{Version: "v1", Resource: "pods/status"})}, `resource "pods/status"`},
		{"bad group", context.Background(), cs, 0, []Option{WithResources(schema.GroupVersionResource{Group: "Bad_Group", Version: "v1", Resource: "things"})}, `group "Bad_Group"`},
		{"duplicate resource", context.Background(), cs, 0, []Option{WithResources(widgets), WithResources(widgets)}, "given twice"},
		{"resource of an enabled bit", context.Background(), cs, RTPod, []Option{WithResources(schema.GroupVersionResource{Version: "v1", Resource: "pods"})}, "pods (v1) is read by Pod already"},
		{"too many resources", context.Background(), cs, 0, []Option{WithResources(manyResources(kinds.MaxResources + 1)...)}, fmt.Sprint("at most ", kinds.MaxResources)},
		{"nil checkpoint store", context.Background(), cs, RTPod, []Option{WithCheckpoint(nil, time.Minute)}, "WithCheckpoint: nil store"},
		{"checkpoint period too short", context.Background(), cs, RTPod, []Option{WithCheckpoint(FileCheckpoint("x"), time.Millisecond)}, "WithCheckpoint(1ms)"},
		{"checkpoint twice", context.Background(), cs, RTPod, []Option{WithCheckpoint(FileCheckpoint("x"), time.Minute), WithCheckpoint(FileCheckpoint("y"), time.Minute)}, "given twice"},
		{"resources and a zero clientset", context.Background(), &kubernetes.Clientset{}, 0, []Option{WithResources(widgets)}, "no REST client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.ctx, tc.cs, tc.types, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New() = %v, %v; want an error containing %q", r, err, tc.wantErr)
			}
			if r != nil {
				t.Errorf("New returned a reader with its error")
			}
		})
	}
}

// manyResources returns n distinct resources.
func manyResources(n int) []schema.GroupVersionResource {
	out := make([]schema.GroupVersionResource, n)
	for i := range out {
		out[i] = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: fmt.Sprint("r", i)}
	}
	return out
}

func TestNewAcceptsGoodInput(t *testing.T) {
	cs := offlineClientset(t)
	if _, err := New(context.Background(), cs, 0, WithResources(manyResources(kinds.MaxResources)...)); err != nil {
		t.Errorf("New with kinds.MaxResources resources: %v", err)
	}
	if _, err := New(context.Background(), cs, RTPod, WithResources(widgets, configMaps), WithNamespaces("a")); err != nil {
		t.Errorf("New with a bit and resources: %v", err)
	}
	for _, opts := range [][]Option{
		nil,
		{WithFilterSize(0), WithFilterSize(1 << 16)},
		{WithRelist(MinRelist)}, {WithRelist(MaxRelist)},
		{WithLogger(logr.Discard())}, {WithLogger(logr.Logger{})},
	} {
		if _, err := New(context.Background(), cs, RTAll, opts...); err != nil {
			t.Errorf("New with %d options: %v", len(opts), err)
		}
	}
}

func TestCallsInTheWrongOrder(t *testing.T) {
	ctx := context.Background()
	newReader := func(t *testing.T) *Reader {
		r, err := New(ctx, offlineClientset(t), RTPod)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("Run before SetOut", func(t *testing.T) {
		if err := newReader(t).Run(ctx); !errors.Is(err, ErrNoOut) {
			t.Fatalf("Run = %v, want ErrNoOut", err)
		}
	})
	t.Run("SetOut nil", func(t *testing.T) {
		if err := newReader(t).SetOut(ctx, nil); err == nil || !strings.Contains(err.Error(), "nil channel") {
			t.Fatalf("SetOut(nil) = %v", err)
		}
	})
	t.Run("SetOut twice", func(t *testing.T) {
		r := newReader(t)
		if err := r.SetOut(ctx, make(chan Entry)); err != nil {
			t.Fatal(err)
		}
		if err := r.SetOut(ctx, make(chan Entry)); err == nil {
			t.Fatal("second SetOut returned nil")
		}
	})
	t.Run("WaitForSync before Run", func(t *testing.T) {
		if err := newReader(t).WaitForSync(ctx); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("WaitForSync = %v, want ErrNotRunning", err)
		}
	})
	t.Run("Close before SetOut, then SetOut and Run", func(t *testing.T) {
		r := newReader(t)
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.SetOut(ctx, make(chan Entry)); !errors.Is(err, ErrClosed) {
			t.Fatalf("SetOut after Close = %v, want ErrClosed", err)
		}
		if err := r.Run(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Run after Close = %v, want ErrClosed", err)
		}
		if err := r.WaitForSync(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitForSync after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("Close closes out once without Run, from many goroutines", func(t *testing.T) {
		r := newReader(t)
		out := make(chan Entry)
		if err := r.SetOut(ctx, out); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if err := r.Close(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if _, open := <-out; open {
			t.Fatal("out is still open after Close")
		}
	})
	t.Run("Close with a cancelled context still closes out", func(t *testing.T) {
		r := newReader(t)
		out := make(chan Entry)
		if err := r.SetOut(ctx, out); err != nil {
			t.Fatal(err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_ = r.Close(cancelled) // may report the cancelled wait; out must close all the same
		select {
		case _, open := <-out:
			if open {
				t.Fatal("entry on out after Close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("out not closed 5 s after Close")
		}
	})
}
