package watchlist

import (
	"fmt"
	"time"

	"github.com/go-logr/logr"
)

// Option configures a Reader; New applies options in order and fails on the first bad one.
type Option func(*Reader) error

// Bounds of WithRelist.
const (
	MinRelist = time.Hour
	MaxRelist = 7 * 24 * time.Hour
)

// WithFilterSize sets the initial capacity of the filter (identity → resourceVersion), to avoid
// growing it while the initial state arrives. Set it near the number of objects expected; size < 0
// makes New fail. Default 0: the map grows as needed.
func WithFilterSize(size int) Option {
	return func(r *Reader) error {
		if size < 0 {
			return fmt.Errorf("WithFilterSize(%d): size must not be negative", size)
		}
		r.filterSize = size
		return nil
	}
}

// WithLogger sets the logger. Errors and fallbacks are logged at V(0), reconnects at V(2), per-event
// detail at V(5). Default logr.Discard(). Users of log/slog pass logr.FromSlogHandler(h).
func WithLogger(log logr.Logger) Option {
	return func(r *Reader) error {
		if log.GetSink() == nil {
			log = logr.Discard()
		}
		r.log = log
		return nil
	}
}

// WithRelist makes the reader relist every d (±10% jitter): it opens a fresh set of streams, and once
// that set has delivered its initial state, swaps it in atomically and closes the old set. Only what
// differs from what was delivered comes out; on a cluster where nothing changed, nothing. d must lie
// in [MinRelist, MaxRelist]. Default: never.
func WithRelist(d time.Duration) Option {
	return func(r *Reader) error {
		if d < MinRelist || d > MaxRelist {
			return fmt.Errorf("WithRelist(%s): must be between %s and %s", d, MinRelist, MaxRelist)
		}
		r.relistEvery = d
		return nil
	}
}
