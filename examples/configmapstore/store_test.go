package configmapstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/watchlist-go/watchlist"
	"github.com/watchlist-go/watchlist/internal/testenv"
)

var shared = testenv.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(shared.RunMain(m)) }

// newStore returns a Store in a namespace of its own on the shared plane, the plane and the namespace.
func newStore(t *testing.T) (*Store, *testenv.Plane, string) {
	t.Helper()
	p := shared.Get(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cmstore-"}}
	ns, err := p.Clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(p.Clientset, ns.Name, "reader-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	return s, p, ns.Name
}

// TestStore: a missing ConfigMap is ErrNoCheckpoint; saves create it and then replace the
// checkpoint; one too large is refused and the previous one stays.
func TestStore(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	if _, err := s.Load(ctx); !errors.Is(err, watchlist.ErrNoCheckpoint) {
		t.Fatalf("Load before any save = %v, want ErrNoCheckpoint", err)
	}
	for _, data := range [][]byte{[]byte("first"), bytes.Repeat([]byte{7}, 500_000)} {
		if err := s.Save(ctx, data); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Load after saving %d bytes: %d bytes, %v", len(data), len(got), err)
		}
	}
	if err := s.Save(ctx, make([]byte, MaxBytes)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Save of %d bytes = %v, want ErrTooLarge", MaxBytes, err)
	}
	if got, _ := s.Load(ctx); len(got) != 500_000 {
		t.Errorf("after a refused save the checkpoint is %d bytes, want the previous 500000", len(got))
	}
	if _, err := New(nil, "a", "b"); err == nil {
		t.Error("New with a nil clientset succeeded")
	}
}

// TestStoreWithAReader: a reader restarted with the ConfigMap store delivers only what changed.
func TestStoreWithAReader(t *testing.T) {
	ctx := context.Background()
	store, p, ns := newStore(t)
	read := func() []watchlist.Entry {
		t.Helper()
		r, err := watchlist.New(ctx, p.Clientset, watchlist.RTService, watchlist.WithNamespaces(ns),
			watchlist.WithCheckpoint(store, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan watchlist.Entry)
		if err := r.SetOut(ctx, out); err != nil {
			t.Fatal(err)
		}
		var got []watchlist.Entry
		taken := make(chan struct{})
		go func() { // the consumer takes every entry as it comes: the checkpoint covers them
			defer close(taken)
			for e := range out {
				got = append(got, e)
			}
		}()
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.WaitForSync(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		<-taken
		return got
	}
	for i := range 3 {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("s-", i)},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := p.Clientset.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(); len(got) != 3 {
		t.Fatalf("first run: %d entries, want the 3 services", len(got))
	}
	if err := p.Clientset.CoreV1().Services(ns).Delete(ctx, "s-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := read()
	if len(got) != 1 || got[0].ChangeType().String() != "Delete" {
		t.Fatalf("restarted run delivered %v, want only the delete of s-0", got)
	}
}
