package watchlist

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/watchlist-go/watchlist/reader"
)

// metricValue returns the value of the metric name whose labels include labels, and whether found.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestMetricsAfterRealTraffic reads the registry after real traffic and a relist.
func TestMetricsAfterRealTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	start := time.Now()
	rr := startReader(t, plane(t).Config, RTPod|RTService, WithMetrics(reg))
	ns := newNamespace(t, plane(t).Clientset, "metrics")
	for _, name := range []string{"a", "b", "c"} {
		mustCreate(t, plane(t).Clientset, reader.OTPod, ns, name)
	}
	waitFor(t, 10*time.Second, "the pods", func() bool { return rr.c.kindCount(reader.OTPod, reader.CTAdd) >= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rr.r.Relist(ctx); err != nil {
		t.Fatal(err)
	}
	pod := map[string]string{"kind": "Pod"}
	checks := []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
		want   string
	}{
		{"watchlist_entries_total", map[string]string{"kind": "Pod", "change": "Add"}, func(v float64) bool { return int(v) == rr.c.kindCount(reader.OTPod, reader.CTAdd) }, "the collector's pod adds"},
		{"watchlist_objects", pod, func(v float64) bool { return int(v) == rr.c.liveCount(reader.OTPod) }, "the live pods"},
		{"watchlist_stream_starts_total", map[string]string{"kind": "Pod", "reason": "start"}, func(v float64) bool { return v >= 2 }, ">= 2 (first set and relist)"},
		{"watchlist_stream_fallback", pod, func(v float64) bool { return v == 0 }, "0"},
		{"watchlist_events_dropped_total", pod, func(v float64) bool { return v >= 3 }, ">= 3 (the relist's duplicates)"},
		{"watchlist_last_event_timestamp_seconds", pod, func(v float64) bool { return v >= float64(start.Unix()) }, "after the test began"},
		{"watchlist_relists_total", nil, func(v float64) bool { return v == 1 }, "1"},
		{"watchlist_relist_duration_seconds", nil, func(v float64) bool { return v == 1 }, "1 observation"},
	}
	for _, c := range checks {
		v, ok := metricValue(t, reg, c.name, c.labels)
		if !ok || !c.ok(v) {
			t.Errorf("%s%v = %v (found %v), want %s", c.name, c.labels, v, ok, c.want)
		}
	}
	if _, err := New(context.Background(), plane(t).Clientset, RTPod, WithMetrics(reg)); err == nil {
		t.Error("a second reader registered with the same registry")
	}
	other := prometheus.NewRegistry()
	if _, err := New(context.Background(), plane(t).Clientset, RTPod, WithMetrics(other), WithFilterSize(-1)); err == nil {
		t.Fatal("New accepted WithFilterSize(-1)")
	}
	if _, err := New(context.Background(), plane(t).Clientset, RTPod, WithMetrics(other)); err != nil {
		t.Errorf("a failed New left its collector registered: %v", err)
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "watchlist_") {
			t.Errorf("%s registered globally", f.GetName())
		}
	}
}

// TestLogLevels: a normal run logs nothing at V(0), even while watches end and resume; per-event
// detail appears only at V(5).
func TestLogLevels(t *testing.T) {
	timing := fastTiming()
	timing.WatchTimeout = 0 // watches end every 3-6 s: reconnects, logged at V(2)
	for _, tc := range []struct {
		verbosity int
		wantEvent bool
	}{{0, false}, {5, true}} {
		var logs syncBuffer
		log := funcr.New(logs.line, funcr.Options{Verbosity: tc.verbosity})
		rr := startReader(t, plane(t).Config, RTPod, WithLogger(log), withTiming(timing))
		ns := newNamespace(t, plane(t).Clientset, "logs")
		ch := churn(t, plane(t).Clientset, ns, 9, 20*time.Millisecond, reader.OTPod)
		time.Sleep(7 * time.Second)
		ch.stop()
		rr.c.assertConverged(t, plane(t).Clientset, RTPod, 10*time.Second)
		got := logs.String()
		if tc.wantEvent != strings.Contains(got, `"resourceVersion"`) {
			t.Errorf("V(%d): per-event lines present = %v, want %v", tc.verbosity, !tc.wantEvent, tc.wantEvent)
		}
		if tc.verbosity == 0 && got != "" {
			t.Errorf("a normal run logged at V(0):\n%s", got)
		}
	}
}

// TestScrapeWhileTheConsumerWaits: a scrape returns while a stream waits on a send that nobody
// takes, and reports the objects delivered so far.
func TestScrapeWhileTheConsumerWaits(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(context.Background(), plane(t).Clientset, RTNamespace, WithMetrics(reg), withTiming(fastTiming()))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Entry) // unbuffered, and not read until the scrape returned
	if err := r.SetOut(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		go func() {
			for range out {
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-out // one namespace delivered; the stream now waits on the next send
	time.Sleep(100 * time.Millisecond)
	gathered := make(chan error, 1)
	go func() { _, err := reg.Gather(); gathered <- err }()
	select {
	case err := <-gathered:
		if err != nil {
			t.Errorf("Gather: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a scrape waited 10 s for the consumer")
	}
	if v, ok := metricValue(t, reg, "watchlist_objects", map[string]string{"kind": "Namespace"}); !ok || v != 1 {
		t.Errorf("watchlist_objects{kind=Namespace} = %v (found %v), want 1", v, ok)
	}
}

// TestServerWarningsLoggedOnce: the apiserver warns on every v1 Endpoints request ("v1 Endpoints is
// deprecated in v1.33+"); a reader of Endpoints passes that warning to its log at V(1) once, not
// once per request, across reconnects and a relist, and not at V(0).
func TestServerWarningsLoggedOnce(t *testing.T) {
	const warning = "v1 Endpoints is deprecated"
	for _, tc := range []struct {
		verbosity int
		want      int
	}{{0, 0}, {1, 1}} {
		t.Run(fmt.Sprint("V=", tc.verbosity), func(t *testing.T) {
			var logs syncBuffer
			rr := startReader(t, plane(t).Config, RTEndpoint|RTPod,
				WithLogger(funcr.New(logs.line, funcr.Options{Verbosity: tc.verbosity})))
			ns := newNamespace(t, plane(t).Clientset, "warn")
			mustCreate(t, plane(t).Clientset, reader.OTEndpoint, ns, "e")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := rr.r.Relist(ctx); err != nil {
				t.Fatalf("Relist: %v", err)
			}
			rr.c.assertConverged(t, plane(t).Clientset, RTEndpoint|RTPod, 20*time.Second)
			if got := strings.Count(logs.String(), warning); got != tc.want {
				t.Errorf("the warning logged %d times at V(%d), want %d; log:\n%s", got, tc.verbosity, tc.want, logs.String())
			}
		})
	}
}
