package watchlist

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// runErr makes a reader through cfg (with opts) and returns Run's error and how long Run took.
func runErr(t *testing.T, cfg *rest.Config, typ RetrieveType, opts ...Option) (error, time.Duration) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(context.Background(), cs, typ, append([]Option{withTiming(fastTiming())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Entry)
	if err := r.SetOut(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = r.Run(ctx)
	took := time.Since(start)
	// Streams that opened before another failed may have sent entries; out must close all the same.
	drained := time.After(10 * time.Second)
drain:
	for {
		select {
		case _, open := <-out:
			if !open {
				break drain
			}
		case <-drained:
			t.Fatal("out not closed 10 s after Run failed")
		}
	}
	if werr := r.WaitForSync(ctx); err != nil && (werr == nil || werr.Error() != err.Error()) {
		t.Errorf("WaitForSync after a failed Run = %v, want Run's error %v", werr, err)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close after a failed Run: %v", err)
	}
	return err, took
}

// TestRunFailsForbidden: a user without rights gets Run's error at once, naming the resource.
func TestRunFailsForbidden(t *testing.T) {
	user, err := plane(t).Env.AddUser(envtest.User{Name: "nobody"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err, took := runErr(t, user.Config(), RTPod|RTNode)
	if !apierrors.IsForbidden(err) {
		t.Fatalf("Run = %v, want a Forbidden error", err)
	}
	if !strings.Contains(err.Error(), "pods") && !strings.Contains(err.Error(), "nodes") {
		t.Errorf("error %q names no resource", err)
	}
	if took > 5*time.Second {
		t.Errorf("Run took %s to report Forbidden", took)
	}
}

// syncBuffer is a log sink buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) line(prefix, args string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(prefix + " " + args + "\n")
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunContextEndsReader: cancelling Run's context stops the reader as Close does.
func TestRunContextEndsReader(t *testing.T) {
	r, err := New(context.Background(), plane(t).Clientset, RTNamespace)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Entry)
	if err := r.SetOut(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range out {
		}
	}()
	if err := r.WaitForSync(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := r.Close(waitCtx); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after the context ended = %v, want ErrClosed", err)
	}
}
