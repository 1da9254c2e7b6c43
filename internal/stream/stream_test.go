package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest/fake"

	"github.com/go-logr/logr/testr"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

var podKind = kinds.For(reader.RTPod)[0]

// testTiming is fast: a backoff of 1 to 5 ms, 200 ms for the initial events.
func testTiming() Timing {
	return Timing{
		Backoff:              wait.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 1 << 30, Cap: 5 * time.Millisecond},
		BackoffReset:         time.Minute,
		InitialEventsTimeout: 200 * time.Millisecond,
		WatchTimeout:         0,
		ShortWatch:           100 * time.Millisecond,
		PageSize:             2,
	}
}

// Statuses a kube-apiserver answers with.
var (
	podsGR = corev1.Resource("pods")

	stForbidden    = apierrors.NewForbidden(podsGR, "", errors.New(`User "system:serviceaccount:default:reader" cannot watch resource "pods" in API group "" at the cluster scope`)).ErrStatus
	stUnauthorized = apierrors.NewUnauthorized("Unauthorized").ErrStatus
	stExpired      = apierrors.NewResourceExpired("too old resource version: 21 (30)").ErrStatus
	stGone         = apierrors.NewGone("too old resource version: 21 (30)").ErrStatus
	stTooLarge     = func() metav1.Status {
		st := apierrors.NewTimeoutError("Too large resource version: 1000, current: 21", 1).ErrStatus
		st.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
		return st
	}()
	stNoWatchList = apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "ListOptions"}, "", field.ErrorList{
		field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"),
	}).ErrStatus
	stNoRVMatch   = apierrors.NewBadRequest("resourceVersionMatch is forbidden for watch").ErrStatus
	stBadRequest  = apierrors.NewBadRequest("unknown parameter").ErrStatus
	stInternal    = apierrors.NewInternalError(errors.New("etcd lacks progress notification")).ErrStatus
	stUnavailable = apierrors.NewServiceUnavailable("the server is shutting down").ErrStatus
	stNotFound    = apierrors.NewNotFound(schema.GroupResource{Group: "stable.example.com", Resource: "widgets"}, "").ErrStatus
	stTooMany     = apierrors.NewTooManyRequests("too many requests, please try again later", 1).ErrStatus
)

// happyWatchList is a WatchList of a and b synced at rv 20, then a change of a at 21; then the
// server ends the watch.
var happyWatchList = watchOf(added("a", "10"), added("b", "11"), endBookmark("20"), modified("a", "21"))

// happySink is what happyWatchList gives a Sink.
var happySink = []string{
	"begin 1",
	"observe ADDED a rv=10 sync=1",
	"observe ADDED b rv=11 sync=1",
	"end 1 rv=20 rolledBack=false",
	"observe MODIFIED a rv=21 sync=0",
	"progress 21",
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

// busy sends ADDED events every 50 ms and never the end bookmark, until the client goes away.
func busy(ctx context.Context, send func(string) bool) {
	for i := 0; ; i++ {
		if !send(added(fmt.Sprintf("p%d", i), fmt.Sprint(10+i))) {
			return
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return
		}
	}
}

// quiet keeps the watch open for 50 ms with no event, and then ends it.
func quiet(ctx context.Context, _ func(string) bool) { sleep(ctx, 50*time.Millisecond) }

type streamTest struct {
	name   string
	timing func(*Timing) // adjusts testTiming
	// initialDelay makes the Sink block that long in Observe for each object of a complete state.
	initialDelay time.Duration
	// resyncEnd makes the Sink's n-th EndSync return ErrResync.
	resyncEnd int
	// resyncAt calls Stream.Resync when the Sink sees Progress at this resourceVersion.
	resyncAt string
	// script is what the server answers, request after request. The request after the last
	// answer ends Run (its context is cancelled), so wantRequests shows where the stream went next.
	script []answer

	wantReasons   []Reason
	wantRequests  []string // the query of each request, including the one past the script
	wantSink      []string // nil: not checked (see check)
	wantFallbacks []bool
	// wantErr, when set, is what Run's error must satisfy; Run must then return before the script
	// is exhausted, with an error that names the kind.
	wantErr    func(error) bool
	wantOpened bool
	wantSynced bool
	// check makes further assertions.
	check func(t *testing.T, reqs []request, sink []string)
}

func TestStream(t *testing.T) {
	tests := []streamTest{
		// 1
		{
			name:         "WatchList, a change, the watch ends: resume from the change",
			script:       []answer{happyWatchList},
			wantReasons:  []Reason{ReasonStart, ReasonEnded},
			wantRequests: []string{qWatchList, qResume("21")},
			wantSink:     happySink,
			wantOpened:   true,
			wantSynced:   true,
		},
		// 2
		{
			name: "410 ERROR event on a resume: expired, a new WatchList",
			script: []answer{
				happyWatchList,
				watchOf(errorEvent(stExpired)),
				watchOf(added("a", "21"), endBookmark("30"), bookmark("31")),
			},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonExpired, ReasonEnded},
			wantRequests: []string{qWatchList, qResume("21"), qWatchListFrom("21"), qResume("31")},
			wantSink: concat(happySink, []string{
				"begin 2",
				"observe ADDED a rv=21 sync=2",
				"end 2 rv=30 rolledBack=false",
				"progress 31",
			}),
			wantOpened: true,
			wantSynced: true,
		},
		{
			name:         "410 Gone answer to a resume: expired, a new WatchList",
			script:       []answer{happyWatchList, failWith(stGone)},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonExpired},
			wantRequests: []string{qWatchList, qResume("21"), qWatchListFrom("21")},
			wantSink:     concat(happySink, []string{"begin 2"}),
			wantOpened:   true,
			wantSynced:   true,
		},
		// 3
		{
			name:         "ResourceVersionTooLarge ERROR event on a resume: expired, no pause",
			script:       []answer{happyWatchList, watchOf(errorEvent(stTooLarge))},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonExpired},
			wantRequests: []string{qWatchList, qResume("21"), qWatchListFrom("21")},
			wantSink:     concat(happySink, []string{"begin 2"}),
			wantOpened:   true,
			wantSynced:   true,
			check: func(t *testing.T, reqs []request, _ []string) {
				// The Status suggests a 1 s delay; expired does not wait.
				if d := reqs[2].at.Sub(reqs[1].at); d > 500*time.Millisecond {
					t.Errorf("the WatchList came %v after the expired resume, want no pause", d)
				}
			},
		},
		// 4
		{
			name: "422 to sendInitialEvents: fallback to a paged LIST, then watch from it",
			script: []answer{
				failWith(stNoWatchList),
				listOf("40", "c1", podJSON("a", "10"), podJSON("b", "11")),
				listOf("40", "", podJSON("c", "12")),
				watchOf(modified("a", "41")),
			},
			wantReasons:  []Reason{ReasonStart, ReasonFallback, ReasonListed, ReasonEnded},
			wantRequests: []string{qWatchList, qList, qListFrom("c1"), qResume("40"), qResume("41")},
			wantSink: []string{
				"begin 1",
				"begin 2",
				"observe ADDED a rv=10 sync=2",
				"observe ADDED b rv=11 sync=2",
				"observe ADDED c rv=12 sync=2",
				"end 2 rv=40 rolledBack=false",
				"observe MODIFIED a rv=41 sync=0",
				"progress 41",
			},
			wantFallbacks: []bool{true, false},
			wantOpened:    true,
			wantSynced:    true,
		},
		// 5
		{
			name:          "400 to resourceVersionMatch: fallback",
			script:        []answer{failWith(stNoRVMatch)},
			wantReasons:   []Reason{ReasonStart, ReasonFallback},
			wantRequests:  []string{qWatchList, qList},
			wantSink:      []string{"begin 1", "begin 2"},
			wantFallbacks: []bool{true, false},
		},
		{
			name:         "400 about something else before open: Run returns it",
			script:       []answer{failWith(stBadRequest)},
			wantReasons:  []Reason{ReasonStart},
			wantRequests: []string{qWatchList},
			wantSink:     []string{"begin 1"},
			wantErr:      apierrors.IsBadRequest,
		},
		// 6
		{
			name:         "403 on the first WatchList: Run returns it",
			script:       []answer{failWith(stForbidden)},
			wantReasons:  []Reason{ReasonStart},
			wantRequests: []string{qWatchList},
			wantSink:     []string{"begin 1"},
			wantErr:      apierrors.IsForbidden,
		},
		{
			name:         "401 on the first WatchList: Run returns it",
			script:       []answer{failWith(stUnauthorized)},
			wantReasons:  []Reason{ReasonStart},
			wantRequests: []string{qWatchList},
			wantSink:     []string{"begin 1"},
			wantErr:      apierrors.IsUnauthorized,
		},
		// 7
		{
			name:         "403 on a resume after the stream opened: retried",
			script:       []answer{happyWatchList, failWith(stForbidden)},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonError},
			wantRequests: []string{qWatchList, qResume("21"), qResume("21")},
			wantSink:     happySink,
			wantOpened:   true,
			wantSynced:   true,
		},
		// 7b
		{
			name:         "404 on resumes after the stream opened (its CRD deleted): retried until served again",
			script:       []answer{happyWatchList, failWith(stNotFound), failWith(stNotFound), watchOf(modified("b", "30"))},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonError, ReasonError, ReasonEnded},
			wantRequests: []string{qWatchList, qResume("21"), qResume("21"), qResume("21"), qResume("30")},
			wantSink:     concat(happySink, []string{"observe MODIFIED b rv=30 sync=0", "progress 30"}),
			wantOpened:   true,
			wantSynced:   true,
		},
		// 8 is TestStreamTooManyRequests.
		// 9
		{
			name:         "500 and 503 before open: retried as WatchList after a backoff",
			script:       []answer{failWith(stInternal), failWith(stUnavailable), happyWatchList},
			wantReasons:  []Reason{ReasonStart, ReasonError, ReasonError, ReasonEnded},
			wantRequests: []string{qWatchList, qWatchList, qWatchList, qResume("21")},
			wantSink:     concat([]string{"begin 1", "begin 2"}, renumber(happySink, 1, 3)),
			wantOpened:   true,
			wantSynced:   true,
			check: func(t *testing.T, reqs []request, _ []string) {
				for i := 1; i < 3; i++ {
					if d := reqs[i].at.Sub(reqs[i-1].at); d < time.Millisecond {
						t.Errorf("request %d came %v after the failed one, want a backoff of at least 1ms", i+1, d)
					}
				}
			},
		},
		{
			name:         "503 on a resume: retried from the same resourceVersion",
			script:       []answer{happyWatchList, failWith(stUnavailable)},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonError},
			wantRequests: []string{qWatchList, qResume("21"), qResume("21")},
			wantSink:     happySink,
			wantOpened:   true,
			wantSynced:   true,
		},
		{
			name:          "500 on the fallback's LIST: the LIST again",
			script:        []answer{failWith(stNoWatchList), failWith(stInternal)},
			wantReasons:   []Reason{ReasonStart, ReasonFallback, ReasonError},
			wantRequests:  []string{qWatchList, qList, qList},
			wantSink:      []string{"begin 1", "begin 2", "begin 3"},
			wantFallbacks: []bool{true, false},
		},
		// 10
		{
			name: "three WatchLists in a row end with an ERROR event: fallback",
			script: []answer{
				watchOf(errorEvent(stInternal)),
				watchOf(errorEvent(stInternal)),
				watchOf(errorEvent(stInternal)),
			},
			wantReasons:   []Reason{ReasonStart, ReasonError, ReasonError, ReasonFallback},
			wantRequests:  []string{qWatchList, qWatchList, qWatchList, qList},
			wantSink:      []string{"begin 1", "begin 2", "begin 3", "begin 4"},
			wantFallbacks: []bool{true, false},
		},
		{
			name: "two WatchLists end with an ERROR event, the third syncs: no fallback",
			script: []answer{
				watchOf(errorEvent(stInternal)),
				watchOf(errorEvent(stInternal)),
				happyWatchList,
			},
			wantReasons:  []Reason{ReasonStart, ReasonError, ReasonError, ReasonEnded},
			wantRequests: []string{qWatchList, qWatchList, qWatchList, qResume("21")},
			wantSink:     concat([]string{"begin 1", "begin 2"}, renumber(happySink, 1, 3)),
			wantOpened:   true,
			wantSynced:   true,
		},
		{
			name: "a complete state resets the count of ERROR events",
			script: []answer{
				watchOf(errorEvent(stInternal)),
				watchOf(errorEvent(stInternal)),
				happyWatchList,
				watchOf(errorEvent(stExpired)),
				watchOf(errorEvent(stInternal)),
				watchOf(errorEvent(stInternal)),
			},
			wantReasons: []Reason{
				ReasonStart, ReasonError, ReasonError, ReasonEnded, ReasonExpired, ReasonError, ReasonError,
			},
			wantRequests: []string{
				qWatchList, qWatchList, qWatchList, qResume("21"), qWatchListFrom("21"), qWatchListFrom("21"), qWatchListFrom("21"),
			},
			wantSink: concat([]string{"begin 1", "begin 2"}, renumber(happySink, 1, 3),
				[]string{"begin 4", "begin 5", "begin 6"}),
			wantOpened: true,
			wantSynced: true,
		},
		// 11
		{
			name:          "a MODIFIED event before the end bookmark: fallback, the change observed",
			script:        []answer{watchOf(added("a", "10"), modified("a", "12"))},
			wantReasons:   []Reason{ReasonStart, ReasonFallback},
			wantRequests:  []string{qWatchList, qList},
			wantSink:      []string{"begin 1", "observe ADDED a rv=10 sync=1", "observe MODIFIED a rv=12 sync=0", "begin 2"},
			wantFallbacks: []bool{true, false},
			wantOpened:    true,
		},
		{
			name:          "a DELETED event first: fallback, the change observed",
			script:        []answer{watchOf(deleted("b", "13"))},
			wantReasons:   []Reason{ReasonStart, ReasonFallback},
			wantRequests:  []string{qWatchList, qList},
			wantSink:      []string{"begin 1", "observe DELETED b rv=13 sync=0", "begin 2"},
			wantFallbacks: []bool{true, false},
			wantOpened:    true,
		},
		// 12
		{
			name:          "a BOOKMARK without the annotation before the end bookmark: fallback",
			script:        []answer{watchOf(added("a", "10"), bookmark("15"))},
			wantReasons:   []Reason{ReasonStart, ReasonFallback},
			wantRequests:  []string{qWatchList, qList},
			wantSink:      []string{"begin 1", "observe ADDED a rv=10 sync=1", "begin 2"},
			wantFallbacks: []bool{true, false},
			wantOpened:    true,
		},
		// 13
		{
			name:          "no end bookmark in time while events keep coming: fallback",
			script:        []answer{{stream: busy}},
			wantReasons:   []Reason{ReasonStart, ReasonFallback},
			wantRequests:  []string{qWatchList, qList},
			wantFallbacks: []bool{true, false},
			wantOpened:    true,
			check: func(t *testing.T, reqs []request, sink []string) {
				// Events every 50 ms do not push the 200 ms deadline back.
				if d := reqs[1].at.Sub(reqs[0].at); d < 200*time.Millisecond || d > 2*time.Second {
					t.Errorf("fell back %v after the WatchList, want about 200ms", d)
				}
				observed := 0
				for _, c := range sink {
					if strings.HasPrefix(c, "observe ADDED ") && strings.HasSuffix(c, " sync=1") {
						observed++
					}
				}
				if observed < 1 || observed > 10 {
					t.Errorf("observed %d initial events, want about 4 (200ms / 50ms)", observed)
				}
				if sink[0] != "begin 1" || sink[len(sink)-1] != "begin 2" || len(sink) != observed+2 {
					t.Errorf("Sink calls:\n%s\nwant begin 1, the initial events, begin 2", lines(sink))
				}
			},
		},
		{
			name:         "a consumer slower than InitialEventsTimeout: still synced",
			initialDelay: 250 * time.Millisecond, // twice: 500 ms blocked in Observe, 200 ms allowed
			script:       []answer{watchOf(added("a", "10"), added("b", "11"), endBookmark("20"), bookmark("21"))},
			wantReasons:  []Reason{ReasonStart, ReasonEnded},
			wantRequests: []string{qWatchList, qResume("21")},
			wantSink: []string{
				"begin 1",
				"observe ADDED a rv=10 sync=1",
				"observe ADDED b rv=11 sync=1",
				"end 1 rv=20 rolledBack=false",
				"progress 21",
			},
			wantOpened: true,
			wantSynced: true,
		},
		// 14
		{
			name:         "the watch ends before the end bookmark: a WatchList again",
			script:       []answer{watchOf(added("a", "10"))},
			wantReasons:  []Reason{ReasonStart, ReasonError},
			wantRequests: []string{qWatchList, qWatchList},
			wantSink:     []string{"begin 1", "observe ADDED a rv=10 sync=1", "begin 2"},
			wantOpened:   true,
		},
		// 15
		{
			name:         "a resume that ends at once with no event: error, the same resume",
			script:       []answer{happyWatchList, watchOf()},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonError},
			wantRequests: []string{qWatchList, qResume("21"), qResume("21")},
			wantSink:     happySink,
			wantOpened:   true,
			wantSynced:   true,
		},
		{
			name:         "a quiet resume that lasted longer than ShortWatch: ended",
			timing:       func(t *Timing) { t.ShortWatch = 20 * time.Millisecond },
			script:       []answer{happyWatchList, {stream: quiet}},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonEnded},
			wantRequests: []string{qWatchList, qResume("21"), qResume("21")},
			wantSink:     happySink,
			wantOpened:   true,
			wantSynced:   true,
		},
		// 16
		{
			name:         "an empty watch first, then 403: not open, Run returns the 403",
			script:       []answer{watchOf(), failWith(stForbidden)},
			wantReasons:  []Reason{ReasonStart, ReasonError},
			wantRequests: []string{qWatchList, qWatchList},
			wantSink:     []string{"begin 1", "begin 2"},
			wantErr:      apierrors.IsForbidden,
		},
		// 16b
		{
			name: "a replica behind answers the WatchList after a 410 with too large: retried after a pause, then its current state",
			script: []answer{
				happyWatchList,
				watchOf(errorEvent(stExpired)),
				failWith(stTooLarge), failWith(stTooLarge), failWith(stTooLarge),
				watchOf(added("a", "10"), endBookmark("30")),
			},
			wantReasons: []Reason{ReasonStart, ReasonEnded, ReasonExpired, ReasonExpired, ReasonExpired, ReasonExpired, ReasonError},
			wantRequests: []string{qWatchList, qResume("21"), qWatchListFrom("21"), qWatchListFrom("21"), qWatchListFrom("21"),
				qWatchList, qResume("30")},
			wantSink: concat(happySink, []string{"begin 2", "begin 3", "begin 4", "begin 5",
				"observe ADDED a rv=10 sync=5", "end 5 rv=30 rolledBack=false"}),
			wantOpened: true,
			wantSynced: true,
			check: func(t *testing.T, reqs []request, _ []string) {
				// Each too-large answer suggests 1 s: the stream waits for the replica to catch up.
				for i := 3; i <= 5; i++ {
					if gap := reqs[i].at.Sub(reqs[i-1].at); gap < 900*time.Millisecond {
						t.Errorf("request %d came %s after a too-large answer, want about 1 s", i, gap)
					}
				}
			},
		},
		// 16c (found by a reviewer: the same WatchList again and again, with no pause)
		{
			name:         "410 to the WatchList not older than the expired point: the current state next",
			script:       []answer{happyWatchList, failWith(stGone), failWith(stGone)},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonExpired, ReasonExpired},
			wantRequests: []string{qWatchList, qResume("21"), qWatchListFrom("21"), qWatchList},
			wantSink:     concat(happySink, []string{"begin 2", "begin 3"}),
			wantOpened:   true,
			wantSynced:   true,
		},
		// 17
		{
			name: "the state after a 410 is older than the resume point: rolled back, a WatchList again",
			script: []answer{
				watchOf(added("a", "10"), endBookmark("45"), modified("a", "50")),
				watchOf(errorEvent(stExpired)),
				watchOf(added("a", "10"), endBookmark("30")),
				watchOf(added("a", "10"), endBookmark("31"), bookmark("31")),
			},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonExpired, ReasonRolledBack, ReasonEnded},
			wantRequests: []string{qWatchList, qResume("50"), qWatchListFrom("50"), qWatchList, qResume("31")},
			wantSink: []string{
				"begin 1",
				"observe ADDED a rv=10 sync=1",
				"end 1 rv=45 rolledBack=false",
				"observe MODIFIED a rv=50 sync=0",
				"progress 50",
				"begin 2",
				"observe ADDED a rv=10 sync=2",
				"end 2 rv=30 rolledBack=true",
				"begin 3",
				"observe ADDED a rv=10 sync=3",
				"end 3 rv=31 rolledBack=false",
				"progress 31",
			},
			wantOpened: true,
			wantSynced: true,
		},
		{
			name: "the fallback's LIST after a 410 is older than the resume point: rolled back, LIST again",
			script: []answer{
				failWith(stNoWatchList),
				listOf("45", "", podJSON("a", "10")),
				watchOf(modified("a", "50")),
				failWith(stGone),
				listOf("30", "", podJSON("a", "10")),
				listOf("31", "", podJSON("a", "10")),
			},
			wantReasons: []Reason{
				ReasonStart, ReasonFallback, ReasonListed, ReasonEnded, ReasonExpired, ReasonRolledBack, ReasonListed,
			},
			wantRequests: []string{qWatchList, qList, qResume("45"), qResume("50"), qList, qList, qResume("31")},
			wantSink: []string{
				"begin 1",
				"begin 2",
				"observe ADDED a rv=10 sync=2",
				"end 2 rv=45 rolledBack=false",
				"observe MODIFIED a rv=50 sync=0",
				"progress 50",
				"begin 3",
				"observe ADDED a rv=10 sync=3",
				"end 3 rv=30 rolledBack=true",
				"begin 4",
				"observe ADDED a rv=10 sync=4",
				"end 4 rv=31 rolledBack=false",
			},
			wantFallbacks: []bool{true, false},
			wantOpened:    true,
			wantSynced:    true,
		},
		// 18
		{
			// client-go's decoder turns an unknown type into an ERROR event (500, ClientWatchDecoding).
			name:         "an unknown event type on a resume: error, the same resume",
			script:       []answer{happyWatchList, watchOf(eventJSON("UNKNOWN", podJSON("a", "22")))},
			wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonError},
			wantRequests: []string{qWatchList, qResume("21"), qResume("21")},
			wantSink:     happySink,
			wantOpened:   true,
			wantSynced:   true,
		},
		{
			name:         "an unknown event type during the initial events: error, a WatchList again",
			script:       []answer{watchOf(added("a", "10"), eventJSON("UNKNOWN", podJSON("b", "11")))},
			wantReasons:  []Reason{ReasonStart, ReasonError},
			wantRequests: []string{qWatchList, qWatchList},
			wantSink:     []string{"begin 1", "observe ADDED a rv=10 sync=1", "begin 2"},
			wantOpened:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runStreamTest(t, tc)
		})
	}
}

// TestStreamTooManyRequests is case 8, the only slow one (about 2 s). A 429 with a Retry-After
// header is retried by client-go itself, after that many seconds and up to 10 times, without the
// Stream seeing it; a 429 without the header reaches the Stream, which waits the Status's
// retryAfterSeconds instead of its own (much shorter) backoff.
// TestStreamResync: the reader asks a stream for its complete state again, through EndSync's
// ErrResync or through Resync while the stream watches changes.
func TestStreamResync(t *testing.T) {
	for _, tc := range []streamTest{
		{
			name:      "EndSync returns ErrResync: a WatchList again, no pause, synced only then",
			resyncEnd: 1,
			script: []answer{
				watchOf(added("a", "10"), endBookmark("20")),
				watchOf(added("a", "10"), endBookmark("21"), bookmark("22")),
			},
			wantReasons:  []Reason{ReasonStart, ReasonResync, ReasonEnded},
			wantRequests: []string{qWatchList, qWatchList, qResume("22")},
			wantSink: []string{
				"begin 1", "observe ADDED a rv=10 sync=1", "end 1 rv=20 rolledBack=false",
				"begin 2", "observe ADDED a rv=10 sync=2", "end 2 rv=21 rolledBack=false", "progress 22",
			},
			wantOpened: true,
			wantSynced: true,
		},
		{
			name:     "Resync while watching changes: the watch is left, a WatchList again",
			resyncAt: "21",
			script: []answer{
				{stream: func(ctx context.Context, send func(string) bool) {
					send(added("a", "10"))
					send(endBookmark("20"))
					send(modified("a", "21"))
					<-ctx.Done() // stays open: only Resync ends it
				}},
				watchOf(added("a", "21"), endBookmark("23"), bookmark("24")),
			},
			wantReasons:  []Reason{ReasonStart, ReasonResync, ReasonEnded},
			wantRequests: []string{qWatchList, qWatchList, qResume("24")},
			wantSink: []string{
				"begin 1", "observe ADDED a rv=10 sync=1", "end 1 rv=20 rolledBack=false",
				"observe MODIFIED a rv=21 sync=0", "progress 21",
				"begin 2", "observe ADDED a rv=21 sync=2", "end 2 rv=23 rolledBack=false", "progress 24",
			},
			wantOpened: true,
			wantSynced: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runStreamTest(t, tc)
		})
	}
}

func TestStreamTooManyRequests(t *testing.T) {
	t.Parallel()
	withHeader := failWith(stTooMany)
	withHeader.header = map[string]string{"Retry-After": "1"}
	runStreamTest(t, streamTest{
		script:       []answer{withHeader, failWith(stTooMany)},
		wantReasons:  []Reason{ReasonStart, ReasonError, ReasonError},
		wantRequests: []string{qWatchList, qWatchList, qWatchList},
		wantSink:     []string{"begin 1", "begin 2", "begin 3"},
		check: func(t *testing.T, reqs []request, _ []string) {
			// client-go does not retry on its own (MaxRetries(0)): each answer is the stream's.
			t.Logf("the stream retried the 429s after %v and %v", reqs[1].at.Sub(reqs[0].at), reqs[2].at.Sub(reqs[1].at))
			if d := reqs[1].at.Sub(reqs[0].at); d < time.Second {
				t.Errorf("the stream retried the 429 with Retry-After: 1 after %v, want at least 1s", d)
			}
			if d := reqs[2].at.Sub(reqs[1].at); d < time.Second {
				t.Errorf("the stream retried the 429 with retryAfterSeconds 1 after %v, want at least 1s", d)
			}
		},
	})
}

// TestStreamTooLargeCountsEveryAnswer: a "too large resource version" answer with Retry-After (what
// kube-apiserver sends) is one answer to the stream, not ten that client-go retried out of sight
// (found by a reviewer).
func TestStreamTooLargeCountsEveryAnswer(t *testing.T) {
	t.Parallel()
	withHeader := failWith(stTooLarge)
	withHeader.header = map[string]string{"Retry-After": "1"}
	runStreamTest(t, streamTest{
		script:       []answer{happyWatchList, watchOf(errorEvent(stExpired)), withHeader, failWith(stTooLarge)},
		wantReasons:  []Reason{ReasonStart, ReasonEnded, ReasonExpired, ReasonExpired, ReasonExpired},
		wantRequests: []string{qWatchList, qResume("21"), qWatchListFrom("21"), qWatchListFrom("21"), qWatchListFrom("21")},
		wantSink:     concat(happySink, []string{"begin 2", "begin 3", "begin 4"}),
		wantOpened:   true,
		wantSynced:   true,
	})
}

func runStreamTest(t *testing.T, tc streamTest) {
	t.Helper()
	timing := testTiming()
	if tc.timing != nil {
		tc.timing(&timing)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &fakeServer{script: tc.script, cancel: cancel}
	client := &fake.RESTClient{
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         corev1.SchemeGroupVersion,
		VersionedAPIPath:     "/api/v1",
		Client:               fake.CreateHTTPClient(srv.roundTrip),
	}
	sink := &fakeSink{initialDelay: tc.initialDelay, resyncEnd: tc.resyncEnd}
	obs := &fakeObserver{}
	var s *Stream
	if tc.resyncAt != "" {
		sink.onProgress = func(rv string) {
			if rv == tc.resyncAt {
				s.Resync()
			}
		}
	}
	s = New(Config{
		Kind:     podKind,
		Client:   client,
		Sink:     sink,
		Observer: obs,
		Log:      testr.NewWithOptions(t, testr.Options{Verbosity: 2}),
		Timing:   timing,
	})

	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("Run did not return within 10s; the server saw %d requests of a script of %d", len(srv.requests()), len(tc.script))
	}
	cancel()
	srv.writers.Wait()

	reqs := srv.requests()
	queries := make([]string, len(reqs))
	for i, r := range reqs {
		queries[i] = r.query
		if r.path != "/api/v1/pods" {
			t.Errorf("request %d: path %q, want /api/v1/pods", i+1, r.path)
		}
	}
	reasons, fallbacks, obsBad := obs.snapshot()
	calls, sinkBad := sink.snapshot()

	if tc.wantErr != nil {
		switch {
		case err == nil:
			t.Errorf("Run returned nil, want an error")
		case !tc.wantErr(err):
			t.Errorf("Run returned %q (%T), not the error wanted", err, errors.Unwrap(err))
		case !strings.HasPrefix(err.Error(), podKind.String()+": "):
			t.Errorf("Run returned %q, want it to begin with %q", err, podKind.String()+": ")
		}
	} else if err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	if !slices.Equal(reasons, tc.wantReasons) {
		t.Errorf("Observer reasons %v, want %v", reasons, tc.wantReasons)
	}
	if !slices.Equal(queries, tc.wantRequests) {
		t.Errorf("requests:\n%s\nwant:\n%s", lines(queries), lines(tc.wantRequests))
	}
	if tc.wantSink != nil && !slices.Equal(calls, tc.wantSink) {
		t.Errorf("Sink calls:\n%s\nwant:\n%s", lines(calls), lines(tc.wantSink))
	}
	if !slices.Equal(fallbacks, tc.wantFallbacks) {
		t.Errorf("Observer.Fallback calls %v, want %v", fallbacks, tc.wantFallbacks)
	}
	for _, b := range append(obsBad, sinkBad...) {
		t.Errorf("wrong call: %s", b)
	}
	if got := isClosed(s.Opened()); got != tc.wantOpened {
		t.Errorf("Opened closed: %t, want %t", got, tc.wantOpened)
	}
	if got := isClosed(s.Synced()); got != tc.wantSynced {
		t.Errorf("Synced closed: %t, want %t", got, tc.wantSynced)
	}
	if tc.check != nil && len(reqs) == len(tc.wantRequests) {
		tc.check(t, reqs, calls)
	}
}

// renumber rewrites the sync tokens of calls made with token from into to.
func renumber(calls []string, from, to uint32) []string {
	out := make([]string, len(calls))
	r := strings.NewReplacer(
		fmt.Sprintf("begin %d", from), fmt.Sprintf("begin %d", to),
		fmt.Sprintf("sync=%d", from), fmt.Sprintf("sync=%d", to),
		fmt.Sprintf("end %d ", from), fmt.Sprintf("end %d ", to),
	)
	for i, c := range calls {
		out[i] = r.Replace(c)
	}
	return out
}

func lines(s []string) string {
	if len(s) == 0 {
		return "\t(none)"
	}
	return "\t" + strings.Join(s, "\n\t")
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
