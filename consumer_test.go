package watchlist

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/stream"
)

// failFirst fails the first request whose URL path ends with suffix, as a dropped connection would,
// and passes every other request to next.
type failFirst struct {
	next   http.RoundTripper
	suffix string
	done   atomic.Bool
}

func (f *failFirst) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, f.suffix) && f.done.CompareAndSwap(false, true) {
		return nil, errors.New("injected: connection reset")
	}
	return f.next.RoundTrip(req)
}

// TestRunReturnsBeforeTheConsumerReads: in the order the docs show (SetOut, Run, then read), with
// an unbuffered channel, Run returns although one stream already waits on a send while another
// must retry before it opens.
func TestRunReturnsBeforeTheConsumerReads(t *testing.T) {
	cfg := rest.CopyConfig(plane(t).Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &failFirst{next: rt, suffix: "/services"} })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(context.Background(), cs, RTNamespace|RTService, withTiming(fastTiming()))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Entry) // unbuffered: the namespaces stream waits on its first send
	if err := r.SetOut(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(context.Background()) }()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("Run did not return within 20 s while nobody read out")
	}

	c := collect(out, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitForSync(ctx); err != nil {
		t.Errorf("WaitForSync: %v", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-c.done
	c.assertPromises(t)
	if n := r.stats.restartCount(stream.ReasonError); n < 1 {
		t.Errorf("%d restarts after an error, want the services stream's retry", n)
	}
}
