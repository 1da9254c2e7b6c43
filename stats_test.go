package watchlist

import (
	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// Test-only readers of stats.

// deliveredCount returns how many entries were delivered, over every kind and change.
func (s *stats) deliveredCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sumValues(s.entries)
}

// sumValues adds up the counts of m.
func sumValues[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// restartCount returns how often streams restarted for reason, over every kind.
func (s *stats) restartCount(reason stream.Reason) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, c := range s.restarts {
		if k.reason == reason {
			n += c
		}
	}
	return n
}

// restartsOf returns how often streams of kind restarted for reason.
func (s *stats) restartsOf(kind reader.ObjectType, reason stream.Reason) int {
	return s.restartsOfID(kinds.ID(kind), reason)
}

// restartsOfID is restartsOf for any kind of a reader, resources of WithResources too.
func (s *stats) restartsOfID(kind kinds.ID, reason stream.Reason) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts[restartKey{kind, reason}]
}

// synthesizedOf returns how many deletes of kind were found by a diff, not seen as events.
func (s *stats) synthesizedOf(kind reader.ObjectType) int { return s.synthesizedOfID(kinds.ID(kind)) }

// synthesizedOfID is synthesizedOf for any kind of a reader.
func (s *stats) synthesizedOfID(kind kinds.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synthesized[kind]
}

// setCounts returns how many sets run now, the most that ever ran at once, and relists completed.
func (s *stats) setCounts() (now, most, relists int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sets, s.maxSets, s.relists
}
