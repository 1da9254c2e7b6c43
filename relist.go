package watchlist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// relistLoop relists every relistEvery, ±10% so that a fleet of readers does not relist in
// lockstep, until ctx ends. A relist that fails is retried with backoff while the current set keeps
// running: there is never zero sets, and never more than two.
func (r *Reader) relistLoop(ctx context.Context) {
	retry := r.timing.Backoff.DelayFunc()
	next := jitter(r.relistEvery)
	for {
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		start := time.Now()
		if err := r.relistOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			next = retry()
			r.log.Error(err, "relist failed; the current streams keep running", "after", next.String())
			continue
		}
		r.log.V(2).Info("relisted", "took", time.Since(start).String())
		retry = r.timing.Backoff.DelayFunc() // a success: the next failure starts the backoff over
		next = jitter(r.relistEvery)
	}
}

// Relist relists now and returns once the fresh set of streams has been swapped in (nil), or the
// relist failed (the current streams keep running), or ctx ended. Only what differs from what was
// delivered comes out: on a cluster where nothing changed, nothing. It is what WithRelist does on
// a timer; the two never overlap. It errors (ErrNotRunning) until Run returned nil, and after Close:
// a relist that swapped in while Run waited for the first streams to open would stop them under it.
func (r *Reader) Relist(ctx context.Context) error {
	r.mu.Lock()
	running, closed := r.opened, r.closed
	if running && !closed {
		r.relister.Add(1) // before closed is set, so that finish waits for this relist too
	}
	r.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case !running:
		return ErrNotRunning
	}
	defer r.relister.Done()
	if err := r.relistOnce(ctx); err != nil {
		if r.lifetime.Err() != nil {
			return r.stopErr()
		}
		return err
	}
	return nil
}

// relistOnce runs one relist at a time.
func (r *Reader) relistOnce(ctx context.Context) error {
	if err := r.relistMu.lock(ctx); err != nil {
		return fmt.Errorf("relist: waiting for the relist under way: %w", err)
	}
	defer r.relistMu.unlock()
	start := time.Now()
	if err := r.relist(ctx); err != nil {
		return err
	}
	r.stats.relisted(time.Since(start))
	return nil
}

// relist starts a new set of streams beside the current one and, once the new set has delivered
// its initial state on every stream, swaps it in and stops the old set. Every wait for the server
// or the consumer ends with ctx (or relistLimit, or the reader's lifetime); stopping a set waits
// only for goroutines whose context was cancelled. The new set lives as long as the reader. While both
// run, both deliver through the filter: the new set's complete states find what the old set missed,
// and tombstones keep the one that lags from bringing back what the other deleted.
func (r *Reader) relist(ctx context.Context) error {
	next := r.startSet(r.lifetime, true)
	waitCtx, cancel := context.WithTimeout(ctx, r.relistLimit)
	defer context.AfterFunc(r.lifetime, cancel)()
	err := next.waitSynced(waitCtx)
	cancel()
	if err != nil {
		r.output.abandon(next)
		next.stop()
		return fmt.Errorf("relist: %w", err)
	}
	r.mu.Lock()
	old := r.current
	r.current = next
	r.mu.Unlock()
	for _, i := range r.output.swap(old, next) {
		next.streams[i].Resync()
	}
	old.stop()
	return nil
}

// jitter returns d ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}
