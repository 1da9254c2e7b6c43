package watchlist

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// WithMetrics registers the reader's metrics with reg (for example prometheus.DefaultRegisterer, or
// the registry controller-runtime serves). Without it the reader has no metrics and registers
// nothing anywhere. Registering two readers with one registry fails: give each its own, or wrap reg
// with prometheus.WrapRegistererWith and a distinguishing label.
//
//	watchlist_entries_total{kind,change}         entries delivered
//	watchlist_events_dropped_total{kind}          events dropped as duplicate or stale
//	watchlist_deletes_synthesized_total{kind}     deletes found by a diff after a gap
//	watchlist_stream_starts_total{kind,reason}    requests by reason: start, listed, ended, expired, rolled-back, resync, error, fallback
//	watchlist_stream_fallback{kind}               1 while a stream of the kind uses LIST + WATCH instead of WatchList
//	watchlist_objects{kind}                       objects tracked (identity → resourceVersion)
//	watchlist_last_event_timestamp_seconds{kind}  when the stream's last event arrived
//	watchlist_relists_total                       relists completed
//	watchlist_relist_duration_seconds             how long relists took
func WithMetrics(reg prometheus.Registerer) Option {
	return func(r *Reader) error {
		if reg == nil {
			return fmt.Errorf("WithMetrics: nil registerer")
		}
		r.registry = reg // registered by New once every option is valid
		return nil
	}
}

var (
	descEntries     = prometheus.NewDesc("watchlist_entries_total", "Entries delivered, by kind and change.", []string{"kind", "change"}, nil)
	descDropped     = prometheus.NewDesc("watchlist_events_dropped_total", "Events dropped as duplicate or stale, by kind.", []string{"kind"}, nil)
	descSynthesized = prometheus.NewDesc("watchlist_deletes_synthesized_total", "Deletes found by diffing a complete state after a gap, by kind.", []string{"kind"}, nil)
	descStarts      = prometheus.NewDesc("watchlist_stream_starts_total", "Stream requests, by kind and reason (start, listed, ended, expired, rolled-back, resync, error, fallback).", []string{"kind", "reason"}, nil)
	descFallback    = prometheus.NewDesc("watchlist_stream_fallback", "1 when the kind's stream uses LIST + WATCH because the server refused WatchList.", []string{"kind"}, nil)
	descObjects     = prometheus.NewDesc("watchlist_objects", "Objects tracked by the filter, by kind.", []string{"kind"}, nil)
	descLastEvent   = prometheus.NewDesc("watchlist_last_event_timestamp_seconds", "Unix time of the kind's last event.", []string{"kind"}, nil)
	descRelists     = prometheus.NewDesc("watchlist_relists_total", "Relists completed.", nil, nil)
)

// register registers the reader's collector with the registry WithMetrics named, if any.
func (r *Reader) register() error {
	if r.registry == nil {
		return nil
	}
	if err := r.registry.Register(&metrics{r: r}); err != nil {
		return fmt.Errorf("WithMetrics: %w", err)
	}
	return nil
}

// metrics exports a reader's stats when scraped; it keeps no state of its own.
type metrics struct{ r *Reader }

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descDropped, descSynthesized, descStarts, descFallback, descObjects, descLastEvent, descRelists} {
		ch <- d
	}
	m.r.stats.relistTime.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var live map[kinds.ID]int
	m.r.mu.Lock()
	o, kindsWatched := m.r.output, m.r.kinds
	m.r.mu.Unlock()
	if o != nil {
		live = o.live()
	}
	label := make(map[kinds.ID]string, len(kindsWatched))
	for _, k := range kindsWatched {
		label[k.ID] = k.Label()
	}

	s := m.r.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.entries {
		counter(descEntries, n, label[k.kind], k.change.String())
	}
	for k, n := range s.drops {
		counter(descDropped, n, label[k])
	}
	for k, n := range s.synthesized {
		counter(descSynthesized, n, label[k])
	}
	for k, n := range s.restarts {
		counter(descStarts, n, label[k.kind], string(k.reason))
	}
	for _, k := range kindsWatched {
		fallback := 0.0
		if s.fallback[k.ID] > 0 {
			fallback = 1
		}
		gauge(descFallback, fallback, k.Label())
		gauge(descObjects, float64(live[k.ID]), k.Label())
		if t, ok := s.lastEvent[k.ID]; ok {
			gauge(descLastEvent, float64(t.UnixNano())/1e9, k.Label())
		}
	}
	counter(descRelists, s.relists)
	s.relistTime.Collect(ch)
}
