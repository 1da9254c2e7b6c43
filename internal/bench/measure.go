package bench

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one child measured, sent to the parent as one JSON line. The parent fills the
// fields marked "parent".
type Result struct {
	Variant string `json:"variant"` // parent: one of the Variant* names
	N       int    `json:"n"`       // parent: pods in the cluster
	Run     int    `json:"run"`     // parent: 1, 2, ...

	Mode    string `json:"mode"`    // ModeReader or ModeInformer
	Content string `json:"content"` // ContentDefault or ContentJSON
	Objects int    `json:"objects"` // objects in the initial state, every kind

	SyncSeconds  float64 `json:"sync_seconds"`     // start to WaitForSync / WaitForCacheSync
	SyncCPU      float64 `json:"sync_cpu_seconds"` // user+sys of the child over the same time
	HeapBaseline uint64  `json:"heap_baseline"`    // live heap after GC before starting, bytes
	HeapPeakSync uint64  `json:"heap_peak_sync"`
	HeapSynced   uint64  `json:"heap_synced"` // live heap after GC once synced, bytes

	ChurnWritten    int     `json:"churn_written"` // changes the parent wrote
	ChurnSeen       int     `json:"churn_seen"`    // of which the child saw
	ChurnRate       float64 `json:"churn_rate"`    // parent: changes/s actually written
	LagP50Ms        float64 `json:"lag_p50_ms"`
	LagP99Ms        float64 `json:"lag_p99_ms"`
	LagMaxMs        float64 `json:"lag_max_ms"`
	ChurnCPUSeconds float64 `json:"churn_cpu_seconds"` // user+sys of the child from churn start to the last change seen

	// Reader: entries delivered during one Reader.Relist. Informer: UpdateFunc calls with an
	// unchanged resourceVersion in one resync pass (one resync period).
	RelistEntries    int     `json:"relist_entries"`
	RelistSeconds    float64 `json:"relist_seconds"`     // Relist's duration / the resync pass's
	RelistCPUSeconds float64 `json:"relist_cpu_seconds"` // user+sys during it
	RelistPeakHeap   uint64  `json:"relist_peak_heap"`   // peak live heap during it, bytes
}

// PerObjectBytes is the heap once synced above the baseline, per object.
func (r Result) PerObjectBytes() float64 {
	if r.Objects == 0 {
		return 0
	}
	return (float64(r.HeapSynced) - float64(r.HeapBaseline)) / float64(r.Objects)
}

// CPUPer1000 is the child's CPU seconds per 1,000 changes seen during churn.
func (r Result) CPUPer1000() float64 {
	if r.ChurnSeen == 0 {
		return 0
	}
	return r.ChurnCPUSeconds / float64(r.ChurnSeen) * 1000
}

// message is one line a child writes on stdout: a phase reached, the final result or an error.
type message struct {
	Phase  string       `json:"phase"` // phaseSynced, phaseChurning, phaseChurned, phaseDone, phaseError
	Error  string       `json:"error,omitempty"`
	Result *Result      `json:"result,omitempty"`
	Scope  *ScopeResult `json:"scope,omitempty"` // a child of the scope suite's result, with phaseDone
}

// Phases a child reports, and the commands a parent sends (one line each on the child's stdin).
const (
	phaseSynced   = "synced"
	phaseChurning = "churning" // counting changes from now on: the parent may write
	phaseChurned  = "churned"
	phaseDone     = "done"
	phaseError    = "error"

	cmdChurn   = "churn"   // "churn <start unix nanos> <changes expected>": count changes written from then on
	cmdChurned = "churned" // "churned <changes written>": wait for them, report phaseChurned
	cmdRelist  = "relist"  // measure one relist / resync pass, report phaseDone with the result
)

// heapMetric is the live heap (plus unswept garbage, none right after a GC) in bytes.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapBytes reads heapMetric.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// liveHeapBytes collects garbage and returns the live heap.
func liveHeapBytes() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what finalizers of the first released
	return heapBytes()
}

// heapSampler records the peak of heapMetric, sampled every interval until Stop.
type heapSampler struct {
	peak uint64 // written by sample, which never runs on two goroutines at once
	stop chan struct{}
	wg   sync.WaitGroup
}

// startHeapSampler starts sampling at once.
func startHeapSampler(interval time.Duration) *heapSampler {
	s := &heapSampler{stop: make(chan struct{})}
	s.sample()
	s.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	})
	return s
}

// sample runs before the sampling goroutine starts, on it, and after it ended.
func (s *heapSampler) sample() {
	s.peak = max(s.peak, heapBytes())
}

// Stop stops sampling, waits for the sampling goroutine and returns the peak.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	s.wg.Wait()
	s.sample()
	return s.peak
}

// lagRecorder collects the delivery lags of the changes written during churn: from the time the
// parent wrote into writtenAtAnnotation to the moment the change reached the consumer.
type lagRecorder struct {
	since atomic.Int64 // unix nanos; changes written before are ignored; 0: not recording

	mu      sync.Mutex
	lags    []float64     // milliseconds
	target  int           // wait's count; 0: none
	reached chan struct{} // closed once target changes were seen
	closed  bool
}

// start begins recording changes written from since on, expecting about expected of them.
func (l *lagRecorder) start(since int64, expected int) {
	l.mu.Lock()
	l.lags = make([]float64, 0, expected+expected/4)
	l.target, l.reached, l.closed = 0, make(chan struct{}), false
	l.mu.Unlock()
	l.since.Store(since)
}

// wait blocks until n changes were seen since start, limit passed or ctx ended, without polling.
func (l *lagRecorder) wait(ctx context.Context, n int, limit time.Duration) {
	l.mu.Lock()
	l.target = n
	l.checkReached()
	reached := l.reached
	l.mu.Unlock()
	if reached == nil {
		return // not started
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-reached:
	case <-t.C:
	case <-ctx.Done():
	}
}

// checkReached closes reached once the target was seen. The caller holds mu.
func (l *lagRecorder) checkReached() {
	if !l.closed && l.reached != nil && l.target > 0 && len(l.lags) >= l.target {
		close(l.reached)
		l.closed = true
	}
}

// observe records a change whose annotations are annotations, received at now.
func (l *lagRecorder) observe(annotations map[string]string, now time.Time) {
	since := l.since.Load()
	if since == 0 {
		return
	}
	written, ok := parseWrittenAt(annotations)
	if !ok || written < since {
		return
	}
	lag := float64(now.UnixNano()-written) / 1e6
	l.mu.Lock()
	l.lags = append(l.lags, lag)
	l.checkReached()
	l.mu.Unlock()
}

// stop ends recording and returns the lags, sorted.
func (l *lagRecorder) stop() []float64 {
	l.since.Store(0)
	l.mu.Lock()
	defer l.mu.Unlock()
	lags := sortedFinite(l.lags)
	l.lags = nil
	return lags
}
