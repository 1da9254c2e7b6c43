package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// This file holds the fakes stream_test.go drives a Stream with: a scripted HTTP server behind
// client-go's fake RESTClient, a Sink and an Observer that record their calls, and builders for
// the JSON a kube-apiserver answers with.

// answer is one scripted HTTP answer.
type answer struct {
	status int               // the HTTP status code; 0 means 200
	header map[string]string // extra response headers
	body   string            // the whole body: watch event frames, a list, or a Status
	// stream, when set, writes the body instead of body, as the server would over time: the watch
	// ends when stream returns. send writes one frame and reports false once the client went away.
	stream func(ctx context.Context, send func(frame string) bool)
}

// request is what the fake server saw of one request.
type request struct {
	at    time.Time
	path  string
	query string // url.Values.Encode(): sorted, omitted parameters absent
}

// fakeServer answers each request with the next answer of its script. The request after the last
// answer cancels Run's context, so that request shows what the stream would do next.
type fakeServer struct {
	script []answer
	cancel context.CancelFunc

	mu   sync.Mutex
	reqs []request

	writers sync.WaitGroup // the goroutines of streamed answers
}

func (s *fakeServer) roundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, request{at: time.Now(), path: req.URL.Path, query: req.URL.Query().Encode()})
	s.mu.Unlock()
	if n >= len(s.script) {
		s.cancel()
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	a := s.script[n]
	resp := &http.Response{
		StatusCode: a.status,
		Status:     fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Request:    req,
	}
	if resp.StatusCode == 0 {
		resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
	}
	for k, v := range a.header {
		resp.Header.Set(k, v)
	}
	if a.stream == nil {
		resp.Body = io.NopCloser(strings.NewReader(a.body))
		return resp, nil
	}
	pr, pw := io.Pipe()
	resp.Body = pr
	ctx := req.Context()
	s.writers.Add(1)
	go func() {
		defer s.writers.Done()
		defer pw.Close()
		a.stream(ctx, func(frame string) bool {
			if ctx.Err() != nil {
				return false
			}
			_, err := io.WriteString(pw, frame+"\n")
			return err == nil
		})
	}()
	return resp, nil
}

func (s *fakeServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// fakeSink records every call as a line, e.g. "observe ADDED a rv=10 sync=1".
type fakeSink struct {
	// initialDelay is how long Observe blocks for an object of a complete state (sync != 0), as a
	// slow consumer would.
	initialDelay time.Duration
	// resyncEnd: the n-th EndSync (1-based) returns ErrResync, as a reader's does for a state
	// begun before a rollback another stream found. 0: never.
	resyncEnd int
	// onProgress is called with each Progress's resourceVersion.
	onProgress func(rv string)

	mu     sync.Mutex
	ends   int
	calls  []string
	tokens uint32
	bad    []string // calls with a wrong kind or object
}

func (s *fakeSink) record(kind kinds.ID, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if kind != podKind.ID {
		s.bad = append(s.bad, fmt.Sprintf("%s: kind %v", line, kind))
	}
	s.calls = append(s.calls, line)
}

func (s *fakeSink) BeginSync(kind kinds.ID) uint32 {
	s.mu.Lock()
	s.tokens++
	token := s.tokens
	s.mu.Unlock()
	s.record(kind, "begin %d", token)
	return token
}

func (s *fakeSink) Observe(ctx context.Context, kind kinds.ID, t watch.EventType, obj runtime.Object, sync uint32) error {
	name, rv := "?", "?"
	if m, err := meta.Accessor(obj); err == nil {
		name, rv = m.GetName(), m.GetResourceVersion()
	}
	s.record(kind, "observe %s %s rv=%s sync=%d", t, name, rv, sync)
	if _, ok := obj.(*corev1.Pod); !ok {
		s.mu.Lock()
		s.bad = append(s.bad, fmt.Sprintf("observe %s: a %T, not a *v1.Pod", name, obj))
		s.mu.Unlock()
	}
	if sync != 0 && s.initialDelay > 0 {
		if !sleep(ctx, s.initialDelay) {
			return ctx.Err()
		}
	}
	return ctx.Err()
}

func (s *fakeSink) EndSync(ctx context.Context, kind kinds.ID, sync uint32, rv string, rolledBack bool) error {
	s.record(kind, "end %d rv=%s rolledBack=%t", sync, rv, rolledBack)
	s.mu.Lock()
	s.ends++
	resync := s.ends == s.resyncEnd
	s.mu.Unlock()
	if resync {
		return ErrResync
	}
	return ctx.Err()
}

func (s *fakeSink) Progress(ctx context.Context, kind kinds.ID, rv string) error {
	s.record(kind, "progress %s", rv)
	if s.onProgress != nil {
		s.onProgress(rv)
	}
	return ctx.Err()
}

func (s *fakeSink) Caught(_ context.Context, kind kinds.ID) error {
	s.record(kind, "caught")
	return nil
}

func (s *fakeSink) snapshot() (calls, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...), append([]string(nil), s.bad...)
}

// fakeObserver records the reasons of Restarted and the calls of Fallback.
type fakeObserver struct {
	mu        sync.Mutex
	reasons   []Reason
	fallbacks []bool
	bad       []string
}

func (o *fakeObserver) check(kind kinds.Kind, what string) {
	if kind.Resource != podKind.Resource {
		o.bad = append(o.bad, fmt.Sprintf("%s for kind %s", what, kind))
	}
}

func (o *fakeObserver) Restarted(kind kinds.Kind, reason Reason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.check(kind, "Restarted")
	o.reasons = append(o.reasons, reason)
}

func (o *fakeObserver) Fallback(kind kinds.Kind, on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.check(kind, "Fallback")
	o.fallbacks = append(o.fallbacks, on)
}

func (o *fakeObserver) snapshot() (reasons []Reason, fallbacks []bool, bad []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Reason(nil), o.reasons...), append([]bool(nil), o.fallbacks...), append([]string(nil), o.bad...)
}

// What a kube-apiserver sends.

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// podJSON is a pod named name (in namespace "default") at resourceVersion rv.
func podJSON(name, rv string) string {
	return mustJSON(map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{"name": name, "namespace": "default", "uid": "uid-" + name, "resourceVersion": rv},
	})
}

func eventJSON(t watch.EventType, object string) string {
	return mustJSON(map[string]any{"type": string(t), "object": json.RawMessage(object)})
}

func added(name, rv string) string    { return eventJSON(watch.Added, podJSON(name, rv)) }
func modified(name, rv string) string { return eventJSON(watch.Modified, podJSON(name, rv)) }
func deleted(name, rv string) string  { return eventJSON(watch.Deleted, podJSON(name, rv)) }

// bookmark is a plain BOOKMARK at rv, as a watch with allowWatchBookmarks sends now and then.
func bookmark(rv string) string {
	return eventJSON(watch.Bookmark, mustJSON(map[string]any{
		"kind": "Pod", "apiVersion": "v1", "metadata": map[string]any{"resourceVersion": rv},
	}))
}

// endBookmark is the BOOKMARK that ends a WatchList's initial events, at rv.
func endBookmark(rv string) string {
	return eventJSON(watch.Bookmark, mustJSON(map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{
			"resourceVersion": rv,
			"annotations":     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
		},
	}))
}

func statusJSON(st metav1.Status) string {
	st.Kind, st.APIVersion = "Status", "v1"
	st.Status = metav1.StatusFailure
	return mustJSON(st)
}

// errorEvent is an ERROR event carrying st.
func errorEvent(st metav1.Status) string { return eventJSON(watch.Error, statusJSON(st)) }

// watchOf answers 200 with these events, and then ends the watch.
func watchOf(events ...string) answer {
	return answer{body: strings.Join(events, "\n")}
}

// failWith answers st's code with st as the body.
func failWith(st metav1.Status) answer {
	return answer{status: int(st.Code), body: statusJSON(st)}
}

// listOf answers one page of a pod LIST at rv; cont is the continue token of the next page.
func listOf(rv, cont string, pods ...string) answer {
	items := make([]json.RawMessage, len(pods))
	for i, p := range pods {
		items[i] = json.RawMessage(p)
	}
	return answer{body: mustJSON(map[string]any{
		"kind": "PodList", "apiVersion": "v1",
		"metadata": map[string]any{"resourceVersion": rv, "continue": cont},
		"items":    items,
	})}
}

// The query of each kind of request, as url.Values.Encode() writes it.

const qWatchList = "allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&sendInitialEvents=true&watch=true"

// qWatchListFrom is a WatchList whose state must not be older than rv (after rv expired).
func qWatchListFrom(rv string) string {
	return "allowWatchBookmarks=true&resourceVersion=" + url.QueryEscape(rv) + "&resourceVersionMatch=NotOlderThan&sendInitialEvents=true&watch=true"
}

func qResume(rv string) string {
	return "allowWatchBookmarks=true&resourceVersion=" + url.QueryEscape(rv) + "&watch=true"
}

const qList = "limit=2" // testTiming's PageSize

func qListFrom(cont string) string { return "continue=" + url.QueryEscape(cont) + "&limit=2" }
