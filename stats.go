package watchlist

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// stats counts what a reader did, by kind: what tests assert on (did the 410 path run?) and what
// metrics export. Safe for concurrent use.
type stats struct {
	mu          sync.Mutex
	restarts    map[restartKey]int
	entries     map[entryKey]int
	drops       map[kinds.ID]int
	synthesized map[kinds.ID]int
	relists     int
	sets        int // sets of streams running now
	maxSets     int // the most that ever ran at once
	lastEvent   map[kinds.ID]time.Time
	fallback    map[kinds.ID]int // streams of the kind running in LIST + WATCH now
	// relistTime is not registered anywhere: WithMetrics's collector exports it.
	relistTime prometheus.Histogram
}

type restartKey struct {
	kind   kinds.ID
	reason stream.Reason
}

type entryKey struct {
	kind   kinds.ID
	change reader.ChangeType
}

func newStats() *stats {
	return &stats{
		restarts:    make(map[restartKey]int),
		entries:     make(map[entryKey]int),
		drops:       make(map[kinds.ID]int),
		synthesized: make(map[kinds.ID]int),
		lastEvent:   make(map[kinds.ID]time.Time),
		fallback:    make(map[kinds.ID]int),
		relistTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "watchlist_relist_duration_seconds",
			Help:    "How long relists took, from start to swap.",
			Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 600},
		}),
	}
}

// Restarted implements stream.Observer.
func (s *stats) Restarted(k kinds.Kind, reason stream.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restarts[restartKey{k.ID, reason}]++
}

// Fallback implements stream.Observer.
func (s *stats) Fallback(k kinds.Kind, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.fallback[k.ID]++
	} else {
		s.fallback[k.ID]--
	}
}

func (s *stats) delivered(kind kinds.ID, change reader.ChangeType) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[entryKey{kind, change}]++
	s.lastEvent[kind] = time.Now()
}

func (s *stats) dropped(kind kinds.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops[kind]++
	s.lastEvent[kind] = time.Now()
}

func (s *stats) synthesizedDeletes(kind kinds.ID, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.synthesized[kind] += n
}

func (s *stats) relisted(took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relists++
	s.relistTime.Observe(took.Seconds())
}

func (s *stats) setStarted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets++
	s.maxSets = max(s.maxSets, s.sets)
}

func (s *stats) setStopped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets--
}
