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
	drops       map[reader.ObjectType]int
	synthesized map[reader.ObjectType]int
	relists     int
	sets        int // sets of streams running now
	maxSets     int // the most that ever ran at once
	lastEvent   map[reader.ObjectType]time.Time
	fallback    map[reader.ObjectType]int // streams of the kind running in LIST + WATCH now
	// relistTime is not registered anywhere: WithMetrics's collector exports it.
	relistTime prometheus.Histogram
}

type restartKey struct {
	kind   reader.ObjectType
	reason stream.Reason
}

type entryKey struct {
	kind   reader.ObjectType
	change reader.ChangeType
}

func newStats() *stats {
	return &stats{
		restarts:    make(map[restartKey]int),
		entries:     make(map[entryKey]int),
		drops:       make(map[reader.ObjectType]int),
		synthesized: make(map[reader.ObjectType]int),
		lastEvent:   make(map[reader.ObjectType]time.Time),
		fallback:    make(map[reader.ObjectType]int),
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
	s.restarts[restartKey{k.Object, reason}]++
}

// Fallback implements stream.Observer.
func (s *stats) Fallback(k kinds.Kind, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.fallback[k.Object]++
	} else {
		s.fallback[k.Object]--
	}
}

func (s *stats) delivered(e reader.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[entryKey{e.ObjectType(), e.ChangeType()}]++
	s.lastEvent[e.ObjectType()] = time.Now()
}

func (s *stats) dropped(kind reader.ObjectType) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops[kind]++
	s.lastEvent[kind] = time.Now()
}

func (s *stats) synthesizedDeletes(kind reader.ObjectType, n int) {
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
