package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/watchlist-go/watchlist"
	"github.com/watchlist-go/watchlist/reader"
)

// Child modes, the value of the hidden -child flag.
const (
	ModeReader   = "reader"
	ModeInformer = "informer"
)

// watched are the kinds both children watch: pods, services, deployments and the four RBAC kinds.
const watched = watchlist.RTPod | watchlist.RTService | watchlist.RTDeployment | watchlist.RTRBAC

// Content types a child's rest.Config asks for, the value of the hidden -content flag.
const (
	// ContentDefault leaves rest.Config.ContentType unset: client-go's typed clients (and so the
	// informers) and the reader's streams then ask for protobuf.
	ContentDefault = "default"
	// ContentJSON sets ContentType to application/json and every request's Accept header to it:
	// JSON for every request, also the reader's, which asks for protobuf whatever ContentType says
	// (as a server without protobuf would answer).
	ContentJSON = "json"

	jsonContentType = "application/json"
)

// Timeouts of a child's phases.
const (
	syncTimeout     = 10 * time.Minute
	churnSeenWait   = time.Minute // after the parent's last write, for the last change to arrive
	relistTimeout   = 10 * time.Minute
	sampleInterval  = 5 * time.Millisecond
	resyncQuietness = 250 * time.Millisecond // a resync pass has ended when no callback came for this long
)

// relistStats is what one relist or resync pass cost.
type relistStats struct {
	entries int           // entries delivered / resync callbacks
	took    time.Duration // Reader.Relist's duration / first to last resync callback
	cpu     time.Duration // user+sys over took
}

// childConfig is what the parent passes to a child on its command line.
type childConfig struct {
	mode       string
	kubeconfig string
	content    string        // ContentDefault or ContentJSON
	resync     time.Duration // the informer's resync period
	strip      bool          // the informer drops managedFields before storing objects
	cpuProfile string
	memProfile string
	checkpoint string // the checkpoint file of a restart child
}

// subject is what a child measures: a reader or an informer, behind one interface so that the
// phases are driven the same way.
type subject interface {
	// start starts watching and returns once the initial state is complete: the reader's
	// WaitForSync, the informers' WaitForCacheSync.
	start(ctx context.Context) error
	// objects is the size of the initial state, counted once start returned (outside the time to
	// sync).
	objects(ctx context.Context) int
	// relist measures one relist (reader) or one resync pass (informer) on a quiet cluster.
	relist(ctx context.Context) (relistStats, error)
	// stop stops everything start started and waits for it.
	stop(ctx context.Context) error
}

// runChild runs one child: it measures cfg.mode, talking to the parent through in (commands) and
// out (one JSON message per line). It returns an error only when it could not report one.
func runChild(ctx context.Context, cfg childConfig, in io.Reader, out io.Writer) (err error) {
	enc := json.NewEncoder(out)
	send := func(m message) error {
		if err := enc.Encode(m); err != nil {
			return fmt.Errorf("child: write to parent: %w", err)
		}
		return nil
	}
	res, err := measureChild(ctx, cfg, bufio.NewScanner(in), send)
	if err != nil {
		return send(message{Phase: phaseError, Error: err.Error()})
	}
	return send(message{Phase: phaseDone, Result: &res})
}

// measureChild runs the phases: sync, churn, relist.
func measureChild(ctx context.Context, cfg childConfig, in *bufio.Scanner, send func(message) error) (res Result, err error) {
	res.Mode, res.Content = cfg.mode, cfg.content
	restCfg, stopProfile, err := childSetup(cfg)
	if err != nil {
		return res, err
	}
	defer func() {
		if perr := stopProfile(); perr != nil && err == nil {
			err = perr
		}
	}()
	switch cfg.content {
	case ContentDefault:
	case ContentJSON:
		restCfg.ContentType = jsonContentType
		restCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				req = req.Clone(req.Context())
				req.Header.Set("Accept", jsonContentType)
				return rt.RoundTrip(req)
			})
		})
	default:
		return res, fmt.Errorf("unknown content type %q", cfg.content)
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return res, fmt.Errorf("build clientset: %w", err)
	}

	lags := &lagRecorder{}
	var subj subject
	switch cfg.mode {
	case ModeReader:
		subj = &readerSubject{cs: cs, lags: lags, types: watched}
	case ModeInformer:
		subj = &informerSubject{cs: cs, lags: lags, resync: cfg.resync, strip: cfg.strip}
	default:
		return res, fmt.Errorf("unknown child mode %q", cfg.mode)
	}

	// Sync.
	m, stopSubj, err := measureSync(ctx, subj, cfg.mode, cfg.memProfile, nil)
	defer func() {
		if serr := stopSubj(); serr != nil && err == nil {
			err = serr
		}
	}()
	res.Objects, res.SyncSeconds, res.SyncCPU = m.objects, m.seconds, m.cpu
	res.HeapBaseline, res.HeapPeakSync, res.HeapSynced = m.baseline, m.peak, m.synced
	if err != nil {
		return res, err
	}
	if err := send(message{Phase: phaseSynced}); err != nil {
		return res, err
	}

	// Churn: the parent writes between our "churn" and "churned" commands.
	args, err := expect(in, cmdChurn, 2)
	if err != nil {
		return res, err
	}
	lags.start(args[0], int(args[1]))
	cpu0 := cpuTime()
	if err := send(message{Phase: phaseChurning}); err != nil {
		return res, err
	}
	args, err = expect(in, cmdChurned, 1)
	if err != nil {
		return res, err
	}
	res.ChurnWritten = int(args[0])
	lags.wait(ctx, res.ChurnWritten, churnSeenWait)
	res.ChurnCPUSeconds = (cpuTime() - cpu0).Seconds()
	sorted := lags.stop()
	res.ChurnSeen = len(sorted)
	if res.ChurnSeen == 0 {
		return res, fmt.Errorf("saw none of the %d changes written within %s", res.ChurnWritten, churnSeenWait)
	}
	res.LagP50Ms = PercentileSorted(sorted, 50)
	res.LagP99Ms = PercentileSorted(sorted, 99)
	res.LagMaxMs = PercentileSorted(sorted, 100)
	if err := send(message{Phase: phaseChurned}); err != nil {
		return res, err
	}

	// Relist on a quiet cluster.
	if _, err := expect(in, cmdRelist, 0); err != nil {
		return res, err
	}
	relistCtx, cancel := context.WithTimeout(ctx, relistTimeout)
	defer cancel()
	runtime.GC()
	sampler := startHeapSampler(sampleInterval)
	rs, err := subj.relist(relistCtx)
	res.RelistPeakHeap = sampler.Stop()
	if err != nil {
		return res, fmt.Errorf("relist: %w", err)
	}
	res.RelistEntries, res.RelistSeconds, res.RelistCPUSeconds = rs.entries, rs.took.Seconds(), rs.cpu.Seconds()
	return res, nil
}

// syncMeasure is what both suites measure of a child's initial sync.
type syncMeasure struct {
	objects        int
	seconds, cpu   float64
	baseline, peak uint64 // live heap before, peak heap during
	synced         uint64 // live heap once synced
}

// syncSubject is what measureSync drives: started, counted once synced, stopped.
type syncSubject interface {
	// start starts watching and returns once the initial state is complete.
	start(ctx context.Context) error
	// objects is the size of the initial state, counted once start returned (outside the time to
	// sync).
	objects(ctx context.Context) int
	// stop stops everything start started and waits for it.
	stop(ctx context.Context) error
}

// measureSync starts subj and measures its initial sync; clocked, if not nil, is called just
// before the clock starts (true) and just after it stops (false). stop stops subj (call it once,
// also after an error); a heap profile goes to memProfile once synced.
func measureSync(ctx context.Context, subj syncSubject, mode, memProfile string, clocked func(begin bool)) (m syncMeasure, stop func() error, err error) {
	m.baseline = liveHeapBytes()
	sampler := startHeapSampler(sampleInterval)
	if clocked != nil {
		clocked(true)
	}
	start, cpuStart := time.Now(), cpuTime()
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	err = subj.start(syncCtx)
	m.seconds = time.Since(start).Seconds()
	m.cpu = (cpuTime() - cpuStart).Seconds()
	if clocked != nil {
		clocked(false)
	}
	m.peak = sampler.Stop()
	if err == nil {
		m.objects = subj.objects(syncCtx)
	}
	cancel()
	stop = func() error {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := subj.stop(stopCtx); err != nil {
			return fmt.Errorf("stop %s: %w", mode, err)
		}
		return nil
	}
	if err != nil {
		return m, stop, fmt.Errorf("initial sync: %w", err)
	}
	m.synced = liveHeapBytes()
	if memProfile != "" {
		if err := writeHeapProfile(memProfile); err != nil {
			return m, stop, err
		}
	}
	return m, stop, nil
}

// startCPUProfile starts a CPU profile into path ("" for none); stop ends it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("start cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("write cpu profile: %w", err)
		}
		return nil
	}, nil
}

// childSetup prepares a child of either suite: finer heap profiling when asked for, its CPU
// profile (stopProfile ends it), and its rest.Config from its kubeconfig, without a client-side
// rate limit: the server sets the pace.
func childSetup(cfg childConfig) (restCfg *rest.Config, stopProfile func() error, err error) {
	if cfg.memProfile != "" {
		runtime.MemProfileRate = 4096 // finer than the default 512 KiB: the reader's heap is small
	}
	restCfg, err = clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig %s: %w", cfg.kubeconfig, err)
	}
	restCfg.QPS, restCfg.Burst = -1, 0
	stopProfile, err = startCPUProfile(cfg.cpuProfile)
	if err != nil {
		return nil, nil, err
	}
	return restCfg, stopProfile, nil
}

// writeHeapProfile writes the heap profile (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return errors.Join(fmt.Errorf("write heap profile: %w", err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write heap profile: %w", err)
	}
	return nil
}

// expect reads the next command, which must be name followed by n integers.
func expect(in *bufio.Scanner, name string, n int) ([]int64, error) {
	if !in.Scan() {
		if err := in.Err(); err != nil {
			return nil, fmt.Errorf("read command %q: %w", name, err)
		}
		return nil, fmt.Errorf("read command %q: %w", name, io.ErrUnexpectedEOF)
	}
	fields := strings.Fields(in.Text())
	if len(fields) != n+1 || fields[0] != name {
		return nil, fmt.Errorf("want command %q with %d arguments, got %q", name, n, in.Text())
	}
	args := make([]int64, n)
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("command %q argument %d: %w", name, i+1, err)
		}
		args[i] = v
	}
	return args, nil
}

// readerSubject is a watchlist.Reader with a consumer that drains the channel and keeps nothing.
type readerSubject struct {
	cs    *kubernetes.Clientset
	lags  *lagRecorder
	types watchlist.RetrieveType // may be 0 with WithResources in opts
	opts  []watchlist.Option
	// unbuffered: out has no buffer, so that a checkpoint covers every entry sent (WithCheckpoint)
	// and WaitForSync returns once the consumer took every initial entry.
	unbuffered bool

	r        *watchlist.Reader
	out      chan watchlist.Entry
	entries  atomic.Int64
	deletes  atomic.Int64 // of entries
	consumer sync.WaitGroup
}

func (s *readerSubject) start(ctx context.Context) error {
	r, err := watchlist.New(ctx, s.cs, s.types, s.opts...)
	if err != nil {
		return fmt.Errorf("new reader: %w", err)
	}
	s.r = r
	buffer := 256
	if s.unbuffered {
		buffer = 0
	}
	s.out = make(chan watchlist.Entry, buffer)
	if err := r.SetOut(ctx, s.out); err != nil {
		return fmt.Errorf("set out: %w", err)
	}
	s.consumer.Go(s.consume)
	// The streams live until stop, not until ctx (which bounds only the sync).
	if err := r.Run(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("run reader: %w", err)
	}
	if err := r.WaitForSync(ctx); err != nil {
		return fmt.Errorf("wait for sync: %w", err)
	}
	return nil
}

// objects counts the entries once the consumer took every one sent so far.
func (s *readerSubject) objects(ctx context.Context) int { return int(s.settle(ctx)) }

// consume is the consumer: it looks at each entry (a pod update's annotations for the lag) and
// keeps nothing.
func (s *readerSubject) consume() {
	for e := range s.out {
		s.entries.Add(1)
		if e.ChangeType() == reader.CTDelete {
			s.deletes.Add(1)
		}
		if e.ChangeType() != reader.CTUpdate || e.ObjectType() != reader.OTPod {
			continue
		}
		if m, err := meta.Accessor(e.Object()); err == nil {
			s.lags.observe(m.GetAnnotations(), time.Now())
		}
	}
}

// settle waits until the consumer took every entry sent so far (the channel is empty and the count
// stopped moving) and returns the count.
func (s *readerSubject) settle(ctx context.Context) int64 {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	last := int64(-1)
	for {
		n := s.entries.Load()
		if n == last && len(s.out) == 0 {
			return n
		}
		last = n
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

func (s *readerSubject) relist(ctx context.Context) (relistStats, error) {
	before := s.settle(ctx)
	cpu0, t0 := cpuTime(), time.Now()
	if err := s.r.Relist(ctx); err != nil {
		return relistStats{}, fmt.Errorf("Reader.Relist: %w", err)
	}
	took, cpu := time.Since(t0), cpuTime()-cpu0
	return relistStats{entries: int(s.settle(ctx) - before), took: took, cpu: cpu}, nil
}

func (s *readerSubject) stop(ctx context.Context) error {
	if s.r == nil {
		return nil
	}
	err := s.r.Close(ctx) // closes out, which ends the consumer
	if err != nil {
		return fmt.Errorf("close reader: %w", err)
	}
	s.consumer.Wait()
	return nil
}

// informerSubject is a client-go SharedInformerFactory with one informer per watched kind.
type informerSubject struct {
	cs     *kubernetes.Clientset
	lags   *lagRecorder
	resync time.Duration
	strip  bool

	factory   informers.SharedInformerFactory
	informers []cache.SharedIndexInformer
	counts    []int // objects in each informer's store once synced (objects)
	stopCh    chan struct{}
}

func (s *informerSubject) start(ctx context.Context) error {
	// The factory's resync period only sets how often resyncs are checked; the handlers below ask
	// for none, so resyncs happen only once relist adds a handler that wants them.
	var opts []informers.SharedInformerOption
	if s.strip {
		opts = append(opts, informers.WithTransform(stripManagedFields))
	}
	s.factory = informers.NewSharedInformerFactoryWithOptions(s.cs, s.resync, opts...)
	f := s.factory
	s.informers = []cache.SharedIndexInformer{
		f.Core().V1().Pods().Informer(),
		f.Core().V1().Services().Informer(),
		f.Apps().V1().Deployments().Informer(),
		f.Rbac().V1().Roles().Informer(),
		f.Rbac().V1().RoleBindings().Informer(),
		f.Rbac().V1().ClusterRoles().Informer(),
		f.Rbac().V1().ClusterRoleBindings().Informer(),
	}
	for i, inf := range s.informers {
		h := cache.ResourceEventHandlerFuncs{}
		if i == 0 { // pods: the churn
			h.UpdateFunc = func(_, obj any) {
				if m, err := meta.Accessor(obj); err == nil {
					s.lags.observe(m.GetAnnotations(), time.Now())
				}
			}
		}
		if _, err := inf.AddEventHandlerWithResyncPeriod(h, 0); err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
	}
	s.stopCh = make(chan struct{})
	f.Start(s.stopCh)
	return f.WaitForCacheSyncWithContext(ctx).AsError()
}

// objects counts the objects in the informers' stores, and keeps each informer's count for relist.
func (s *informerSubject) objects(context.Context) int {
	s.counts = make([]int, len(s.informers))
	n := 0
	for i, inf := range s.informers {
		s.counts[i] = len(inf.GetStore().ListKeys())
		n += s.counts[i]
	}
	return n
}

// stripManagedFields is an informer transform that drops metadata.managedFields, which a consumer
// rarely reads and which is often a large part of an object.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// resyncCounter counts one informer's resync callbacks: UpdateFunc calls whose old and new
// resourceVersion are equal, until it is sealed at the end of the informer's first pass.
type resyncCounter struct {
	mu          sync.Mutex
	count       int
	first, last time.Time
	cpu0        time.Duration // cpuTime at the first callback
	sealed      bool          // the pass is over: later passes are not counted
}

// seal ends counting once the pass began and has been quiet for quiet, and reports whether the
// counter is sealed.
func (c *resyncCounter) seal(quiet time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sealed && c.count > 0 && time.Since(c.last) >= quiet {
		c.sealed = true
	}
	return c.sealed
}

// result returns the pass's callbacks, first and last callback time and the CPU time at the first.
func (c *resyncCounter) result() (count int, first, last time.Time, cpu0 time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, c.first, c.last, c.cpu0
}

// onUpdate counts a resync callback.
func (c *resyncCounter) onUpdate(oldObj, newObj any) {
	o, err1 := meta.Accessor(oldObj)
	n, err2 := meta.Accessor(newObj)
	if err1 != nil || err2 != nil || o.GetResourceVersion() != n.GetResourceVersion() {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sealed {
		return
	}
	if c.count == 0 {
		c.first, c.cpu0 = now, cpuTime()
	}
	c.count++
	c.last = now
}

// relist measures one resync pass: a handler that asks for resyncs every s.resync is added to every
// informer and, once it got its initial adds, counts each informer's resync callbacks from its
// first one until none came for resyncQuietness. The informers' resync timers are not aligned, so
// each informer's pass is awaited, and sealed, on its own: an informer that resyncs again while
// another one is still awaited is counted once. took is the sum of the passes' durations; cpu runs
// from the first callback of any pass to the end of the last pass.
func (s *informerSubject) relist(ctx context.Context) (relistStats, error) {
	counters := make([]*resyncCounter, len(s.informers))
	regs := make([]cache.ResourceEventHandlerRegistration, 0, len(s.informers))
	defer func() {
		for i, reg := range regs {
			_ = s.informers[i].RemoveEventHandler(reg) // fails only once the informer stopped
		}
	}()
	for i, inf := range s.informers {
		counters[i] = &resyncCounter{}
		reg, err := inf.AddEventHandlerWithResyncPeriod(cache.ResourceEventHandlerFuncs{UpdateFunc: counters[i].onUpdate}, s.resync)
		if err != nil {
			return relistStats{}, fmt.Errorf("add resync handler: %w", err)
		}
		regs = append(regs, reg)
	}
	checkers := make([]cache.DoneChecker, len(regs))
	for i, reg := range regs {
		checkers[i] = reg.HasSyncedChecker()
	}
	if !cache.WaitFor(ctx, "", checkers...) {
		return relistStats{}, fmt.Errorf("resync handler's initial adds: %w", context.Cause(ctx))
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(3*s.resync + time.Second)
	for {
		done := true
		for i, c := range counters {
			if s.counts[i] > 0 { // an empty informer has nothing to resync; the cluster is quiet
				done = c.seal(resyncQuietness) && done
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return relistStats{}, fmt.Errorf("not every informer resynced within %s", 3*s.resync+time.Second)
		}
		select {
		case <-ctx.Done():
			return relistStats{}, ctx.Err()
		case <-t.C:
		}
	}
	cpu1 := cpuTime()
	var st relistStats
	cpu0 := time.Duration(math.MaxInt64)
	for _, c := range counters {
		count, first, last, c0 := c.result()
		if count == 0 {
			continue
		}
		st.entries += count
		st.took += last.Sub(first)
		cpu0 = min(cpu0, c0)
	}
	if st.entries > 0 {
		st.cpu = cpu1 - cpu0
	}
	return st, nil
}

func (s *informerSubject) stop(context.Context) error {
	if s.factory == nil {
		return nil
	}
	if s.stopCh != nil {
		close(s.stopCh)
	}
	s.factory.Shutdown() // waits for every informer goroutine
	return nil
}
