package stream

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// pbSink records identities and keeps the objects it was given.
type pbSink struct {
	mu    sync.Mutex
	calls []string
	objs  []runtime.Object
	ended chan struct{}
	once  sync.Once
}

func (s *pbSink) BeginSync(kinds.ID) uint32 { return 1 }
func (s *pbSink) Observe(_ context.Context, _ kinds.ID, t watch.EventType, obj runtime.Object, sync uint32) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, string(t)+" "+m.GetNamespace()+"/"+m.GetName()+" "+string(m.GetUID())+" "+m.GetResourceVersion())
	s.objs = append(s.objs, obj)
	return nil
}
func (s *pbSink) EndSync(_ context.Context, _ kinds.ID, _ uint32, rv string, _ bool) error {
	s.mu.Lock()
	s.calls = append(s.calls, "end "+rv)
	s.mu.Unlock()
	return nil
}
func (s *pbSink) Progress(_ context.Context, _ kinds.ID, rv string) error {
	s.mu.Lock()
	s.calls = append(s.calls, "progress "+rv)
	s.mu.Unlock()
	s.once.Do(func() { close(s.ended) })
	return nil
}
func (s *pbSink) Caught(context.Context, kinds.ID) error { return nil }

// TestReviewProtobufStreamEndToEnd drives a Stream through the pod kind's own client (a real
// clientset against an httptest server answering protobuf), as production does, whole objects and
// metadata-only: lazy objects, the end bookmark's annotation read, and protobuf asked for although
// the rest.Config names JSON. (Held: it passes.)
func TestReviewProtobufStreamEndToEnd(t *testing.T) {
	t.Run("pods", func(t *testing.T) { protobufEndToEnd(t, false) })
	t.Run("metadata", func(t *testing.T) { protobufEndToEnd(t, true) })
}

func protobufEndToEnd(t *testing.T, metadataOnly bool) {
	codecs := scheme.Codecs
	gv := corev1.SchemeGroupVersion
	if metadataOnly {
		codecs, gv = metainternalversionscheme.Codecs, metav1.SchemeGroupVersion
	}
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	enc := codecs.EncoderForVersion(info.Serializer, gv)
	asObj := func(p *corev1.Pod) runtime.Object {
		if metadataOnly {
			return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}, ObjectMeta: p.ObjectMeta}
		}
		return p
	}
	pod := func(name, rv string) runtime.Object {
		return asObj(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: rv,
			Labels: map[string]string{"l": "v"}}, Spec: corev1.PodSpec{NodeName: "n-" + rv}})
	}
	end := asObj(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "20", Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
	var body bytes.Buffer
	fw := streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(&body), info.StreamSerializer.Serializer)
	for _, ev := range []struct {
		t   watch.EventType
		obj runtime.Object
	}{{watch.Added, pod("a", "10")}, {watch.Added, pod("b", "11")}, {watch.Bookmark, end}, {watch.Modified, pod("a", "21")}} {
		raw, err := runtime.Encode(enc, ev.obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Encode(&metav1.WatchEvent{Type: string(ev.t), Object: runtime.RawExtension{Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		acceptMu sync.Mutex
		accept   string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acceptMu.Lock()
		accept = r.Header.Get("Accept")
		acceptMu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf;stream=watch")
		w.WriteHeader(200)
		w.Write(body.Bytes())
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	sink := &pbSink{ended: make(chan struct{})}
	client := podKind.Client(cs)
	if metadataOnly {
		if client, err = podKind.MetadataClient(cs); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Kind: podKind, Scope: Scope{MetadataOnly: metadataOnly}, Client: client, Sink: sink, Log: testr.New(t), Timing: testTiming(), Warnings: NewWarnings(testr.New(t))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-sink.ended:
	case <-time.After(5 * time.Second):
		t.Error("no progress")
	}
	cancel()
	<-done
	acceptMu.Lock()
	t.Logf("accept %q calls %q", accept, sink.calls)
	acceptMu.Unlock()
	want := []string{"ADDED ns/a uid-a 10", "ADDED ns/b uid-b 11", "end 20", "MODIFIED ns/a uid-a 21", "progress 21"}
	if len(sink.calls) < len(want) {
		t.Fatalf("calls %q", sink.calls)
	}
	for i := range want {
		if sink.calls[i] != want[i] {
			t.Errorf("call %d %q want %q", i, sink.calls[i], want[i])
		}
	}
	for _, obj := range sink.objs {
		if _, ok := obj.(*kinds.Lazy); !ok {
			t.Errorf("observed %T, want *kinds.Lazy", obj)
		}
		whole, err := kinds.Decoded(obj)
		if err != nil {
			t.Fatal(err)
		}
		if metadataOnly {
			if p, ok := whole.(*metav1.PartialObjectMetadata); !ok || p.Labels["l"] != "v" {
				t.Errorf("decoded %#v", whole)
			}
			continue
		}
		if p := whole.(*corev1.Pod); p.Labels["l"] != "v" || p.Spec.NodeName != "n-"+p.ResourceVersion {
			t.Errorf("decoded %#v", p)
		}
	}
}
