package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"

	"github.com/watchlist-go/watchlist"
	"github.com/watchlist-go/watchlist/reader"
)

// closeTimeout bounds the wait for the reader's goroutines in Close.
const closeTimeout = 10 * time.Second

// session is one run of the command: its configuration and where its output goes.
type session struct {
	cfg     config
	printer printer   // entries, on stdout
	stderr  io.Writer // everything else
	log     logr.Logger
}

// say prints one line of progress on stderr.
func (s *session) say(format string, args ...any) {
	fmt.Fprintf(s.stderr, format+"\n", args...)
}

// counts tallies the entries printed, by change.
type counts [reader.CTDelete + 1]int

func (c *counts) total() int { return c[reader.CTAdd] + c[reader.CTUpdate] + c[reader.CTDelete] }

func (c *counts) String() string {
	return fmt.Sprintf("%d entries (%d adds, %d updates, %d deletes)",
		c.total(), c[reader.CTAdd], c[reader.CTUpdate], c[reader.CTDelete])
}

// watched names what the reader reads: kinds and resources.
func (s *session) watched() string {
	var names []string
	if s.cfg.types != 0 {
		names = append(names, s.cfg.types.String())
	}
	for _, gvr := range s.cfg.resources {
		names = append(names, gvr.GroupResource().String())
	}
	return strings.Join(names, ", ")
}

// stream runs a reader on cs and prints its entries until ctx ends or, once the initial state was
// delivered, s.cfg.duration passed (if not 0). afterSync, if not nil, runs in a goroutine from the
// moment the initial state was delivered until the stream stops; its error is returned. stream
// closes the reader before it returns.
func (s *session) stream(ctx context.Context, cs *kubernetes.Clientset, afterSync func(context.Context) error) error {
	r, err := watchlist.New(ctx, cs, s.cfg.types, append(s.cfg.options(), watchlist.WithLogger(s.log))...)
	if err != nil {
		return fmt.Errorf("create reader: %w", err)
	}
	// Unbuffered: printing sets the pace, and once WaitForSync returned, every entry of the initial
	// state has been received (and counted) here.
	out := make(chan watchlist.Entry)
	if err := r.SetOut(ctx, out); err != nil {
		return fmt.Errorf("set reader output: %w", err)
	}
	// Ending runCtx stops the reader, which then closes out: that ends the loop below.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	s.say("watching %s", s.watched())
	start := time.Now()
	if err := r.Run(runCtx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while the streams opened
		}
		return fmt.Errorf("start reader: %w", err)
	}
	s.say("streams open in %d ms", time.Since(start).Milliseconds())

	l := &loop{s: s, r: r, out: out, stop: stop, start: start, afterSync: afterSync}
	loopErr := l.run(ctx, runCtx)

	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	var closeErr error
	if err := r.Close(closeCtx); err != nil {
		closeErr = fmt.Errorf("close reader: %w", err)
	}
	s.say("stopped after %s", &l.counts)
	return errors.Join(loopErr, closeErr)
}

// loop consumes one reader's output: it prints every entry, reports the sync, starts afterSync and
// stops the reader when the duration passed.
type loop struct {
	s         *session
	r         *watchlist.Reader
	out       <-chan watchlist.Entry
	stop      context.CancelFunc // stops the reader
	start     time.Time
	afterSync func(context.Context) error

	counts counts
	broken bool // printing failed
	errs   []error
	bg     chan error // afterSync's result, once started
}

// run prints entries until the reader closes out, then waits for afterSync. ctx is the caller's,
// runCtx the reader's.
func (l *loop) run(ctx, runCtx context.Context) error {
	synced := make(chan error, 1)
	go func() { synced <- l.r.WaitForSync(runCtx) }()
	var deadline <-chan time.Time
	interrupted := ctx.Done()
	for {
		select {
		case e, ok := <-l.out:
			if !ok {
				return l.wait()
			}
			l.print(e)
		case err := <-synced:
			synced = nil
			deadline = l.synced(runCtx, err)
		case <-deadline:
			deadline = nil
			l.s.say("%s passed; stopping", l.s.cfg.duration)
			l.stop()
		case <-interrupted:
			interrupted = nil
			l.s.say("interrupted; stopping")
		}
	}
}

// print prints one entry. A failure to print stops the reader, and the entries that still come
// while it stops are dropped; a closed pipe (| head) is a normal end.
func (l *loop) print(e watchlist.Entry) {
	if l.broken {
		return
	}
	if err := l.s.printer.print(e); err != nil {
		l.broken = true
		if errors.Is(err, syscall.EPIPE) {
			l.stop()
			return
		}
		l.fail(err)
		return
	}
	l.counts[e.ChangeType()]++
}

// synced handles the result of WaitForSync: it reports the sync, starts afterSync, and returns the
// channel that fires when the duration passed (nil: never).
func (l *loop) synced(runCtx context.Context, err error) <-chan time.Time {
	if err != nil {
		if runCtx.Err() == nil {
			l.fail(fmt.Errorf("wait for sync: %w", err))
		}
		return nil
	}
	l.s.say("synced: %d objects in %d ms", l.counts.total(), time.Since(l.start).Milliseconds())
	if l.afterSync != nil {
		l.bg = make(chan error, 1)
		go func() { l.bg <- l.afterSync(runCtx) }()
	}
	if l.s.cfg.duration == 0 {
		l.s.say("streaming until Ctrl-C")
		return nil
	}
	l.s.say("streaming for %s (or until Ctrl-C)", l.s.cfg.duration)
	return time.After(l.s.cfg.duration)
}

// fail records err and stops the reader.
func (l *loop) fail(err error) {
	l.errs = append(l.errs, err)
	l.stop()
}

// wait stops afterSync (the reader is closed, so its context has ended) and returns every error.
func (l *loop) wait() error {
	l.stop()
	if l.bg != nil {
		if err := <-l.bg; err != nil {
			l.errs = append(l.errs, err)
		}
	}
	return errors.Join(l.errs...)
}
