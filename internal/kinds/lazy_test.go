package kinds

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	restclientwatch "k8s.io/client-go/rest/watch"

	"github.com/watchlist-go/watchlist/reader"
)

// mediaType returns client-go's serializer of mediaType.
func mediaType(t *testing.T, serializers runtime.NegotiatedSerializer, mediaType string) runtime.SerializerInfo {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(serializers.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no serializer for %s", mediaType)
	}
	return info
}

// encode encodes obj, of group version gv, as the server would in mediaType.
func encode(t *testing.T, serializers runtime.NegotiatedSerializer, mt string, gv schema.GroupVersion, obj runtime.Object) []byte {
	t.Helper()
	b, err := runtime.Encode(serializers.EncoderForVersion(mediaType(t, serializers, mt).Serializer, gv), obj)
	if err != nil {
		t.Fatalf("encode %T as %s: %v", obj, mt, err)
	}
	return b
}

// pod is a Pod with every identity field set, and more, as the server sends one.
func pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns-" + name, UID: types.UID("uid-" + name), ResourceVersion: "1234" + name,
			GenerateName: "gen-", Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"k": strings.Repeat("v", 300)},
			CreationTimestamp: metav1.NewTime(time.Unix(1700000000, 0)), Generation: 7,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "test", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
		},
		Spec:   corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// identity is what a Lazy promises to know.
func identity(t *testing.T, obj runtime.Object) [4]string {
	t.Helper()
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatalf("meta.Accessor(%T): %v", obj, err)
	}
	return [4]string{m.GetNamespace(), m.GetName(), string(m.GetUID()), m.GetResourceVersion()}
}

// decoders returns the decoder a built-in kind's client decodes with, and client-go's own.
func decoders(gvk schema.GroupVersionKind, serializers serializer.CodecFactory, mt string) (lazy, full runtime.Decoder) {
	info, _ := runtime.SerializerInfoForMediaType(serializers.SupportedMediaTypes(), mt)
	s := lazySerializer{NegotiatedSerializer: serializers.WithoutConversion(), gvk: gvk}
	return s.DecoderToVersion(info.Serializer, nil), serializers.WithoutConversion().DecoderToVersion(info.Serializer, nil)
}

// TestLazyDecodesEveryKindAsClientGo: for an object of every kind in the table, the lazy decoder
// returns a Lazy holding the identity, and the Lazy decodes to what client-go decodes.
func TestLazyDecodesEveryKindAsClientGo(t *testing.T) {
	for _, k := range table {
		t.Run(k.Object.String(), func(t *testing.T) {
			obj := k.Tombstone("ns", "name", "uid-1", "42")
			if m, err := meta.Accessor(obj); err == nil {
				m.SetLabels(map[string]string{"x": "y"})
				m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
			}
			raw := encode(t, scheme.Codecs, runtime.ContentTypeProtobuf, k.Resource.GroupVersion(), obj)
			gvk := k.Resource.GroupVersion().WithKind(kindOf(obj))
			lazy, full := decoders(gvk, scheme.Codecs, runtime.ContentTypeProtobuf)
			got, _, err := lazy.Decode(raw, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got.(*Lazy); !ok {
				t.Fatalf("decoded %T, want *Lazy", got)
			}
			if id := identity(t, got); id != [4]string{"ns", "name", "uid-1", "42"} {
				t.Errorf("identity %q", id)
			}
			whole, err := Decoded(got)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := full.Decode(raw, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(whole, want) {
				t.Errorf("Decoded = %#v\nwant %#v", whole, want)
			}
			if e, err := k.Entry(reader.CTAdd, got); err != nil || !apiequality.Semantic.DeepEqual(e.Object(), want) {
				t.Errorf("Entry holds %#v (%v), want the decoded object", e.Object(), err)
			}
		})
	}
}

// TestLazyLeavesTheRestToTheFullDecoder: a Status, another kind, JSON, and a decode into an object
// are decoded whole, exactly as client-go decodes them.
func TestLazyLeavesTheRestToTheFullDecoder(t *testing.T) {
	podGVK := corev1.SchemeGroupVersion.WithKind("Pod")
	status := &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: "u", ResourceVersion: "3"}}
	for _, c := range []struct {
		name string
		mt   string
		obj  runtime.Object
		into runtime.Object
	}{
		{"status", runtime.ContentTypeProtobuf, status, nil},
		{"another kind", runtime.ContentTypeProtobuf, svc, nil},
		{"a list", runtime.ContentTypeProtobuf, &corev1.PodList{Items: []corev1.Pod{*pod("a")}}, nil},
		{"json", runtime.ContentTypeJSON, pod("j"), nil},
		{"into an object", runtime.ContentTypeProtobuf, pod("i"), &corev1.Pod{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := encode(t, scheme.Codecs, c.mt, corev1.SchemeGroupVersion, c.obj)
			lazy, full := decoders(podGVK, scheme.Codecs, c.mt)
			var into runtime.Object
			if c.into != nil {
				into = c.into.DeepCopyObject()
			}
			got, _, err := lazy.Decode(raw, nil, into)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got.(*Lazy); ok {
				t.Fatalf("decoded a *Lazy")
			}
			want, _, err := full.Decode(raw, nil, c.into)
			if err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(got, want) {
				t.Errorf("decoded %#v\nwant %#v", got, want)
			}
		})
	}
}

// TestLazyPartialObjectMetadata: a metadata-only stream's objects are lazy too.
func TestLazyPartialObjectMetadata(t *testing.T) {
	p := pod("m")
	pom := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}, ObjectMeta: p.ObjectMeta}
	codecs := metainternalversionscheme.Codecs
	raw := encode(t, codecs, runtime.ContentTypeProtobuf, metav1.SchemeGroupVersion, pom)
	lazy, full := decoders(metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata"), codecs, runtime.ContentTypeProtobuf)
	got, _, err := lazy.Decode(raw, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(*Lazy); !ok {
		t.Fatalf("decoded %T, want *Lazy", got)
	}
	if id, want := identity(t, got), identity(t, pom); id != want {
		t.Errorf("identity %q, want %q", id, want)
	}
	whole, err := Decoded(got)
	want, _, err2 := full.Decode(raw, nil, nil)
	if err != nil || err2 != nil || !apiequality.Semantic.DeepEqual(whole, want) {
		t.Errorf("Decoded = %#v (%v), want %#v (%v)", whole, err, want, err2)
	}
}

// TestLazyAgreesOnDamagedBytes: bytes cut short, with bytes changed, or with the metadata given
// twice (protobuf merges them): whenever the lazy decoder reads an identity and client-go decodes
// the bytes, both read the same identity; whenever it reads none, it fails as client-go does.
func TestLazyAgreesOnDamagedBytes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	podGVK := corev1.SchemeGroupVersion.WithKind("Pod")
	lazy, full := decoders(podGVK, scheme.Codecs, runtime.ContentTypeProtobuf)
	base := encode(t, scheme.Codecs, runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion, pod("p"))

	check := func(what string, b []byte) {
		t.Helper()
		got, _, err := lazy.Decode(b, nil, nil)
		want, _, wantErr := full.Decode(b, nil, nil)
		if _, ok := got.(*Lazy); !ok {
			if (err == nil) != (wantErr == nil) || (err == nil && !apiequality.Semantic.DeepEqual(got, want)) {
				t.Fatalf("seed %d, %s: decoded %T (%v), client-go %T (%v)", seed, what, got, err, want, wantErr)
			}
			return
		}
		if wantErr != nil {
			return // decoding it when delivered fails, as client-go fails
		}
		if a, b := identity(t, got), identity(t, want); a != b {
			t.Fatalf("seed %d, %s: identity %q, client-go %q", seed, what, a, b)
		}
		if whole, err := Decoded(got); err != nil || !apiequality.Semantic.DeepEqual(whole, want) {
			t.Fatalf("seed %d, %s: Decoded differs from client-go (%v)", seed, what, err)
		}
	}
	for n := range len(base) {
		check(fmt.Sprintf("cut to %d bytes", n), base[:n])
	}
	for i := range 3000 {
		b := bytes.Clone(base)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		check(fmt.Sprintf("changed bytes %d", i), b)
	}
	// The object's metadata twice: protobuf merges the two, so the second's fields win where it
	// has them (client-go encodes every string, "" too; this one has only a name).
	var u runtime.Unknown
	if err := u.Unmarshal(base[len(protobufPrefix):]); err != nil {
		t.Fatal(err)
	}
	second := protowire.AppendTag(nil, 1, protowire.BytesType)
	second = protowire.AppendString(second, "r")
	u.Raw = protowire.AppendBytes(protowire.AppendTag(u.Raw, 1, protowire.BytesType), second)
	merged, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	merged = append(protobufPrefix[:], merged...)
	check("metadata twice", merged)
	got, _, _ := lazy.Decode(merged, nil, nil)
	if id := identity(t, got); id != [4]string{"ns-p", "r", "uid-p", "1234p"} {
		t.Errorf("merged identity %q", id)
	}
}

// TestLazyKeepsEachEventsBytes pins what a Lazy relies on: client-go's watch decoder gives each
// event's object bytes of their own, so a Lazy taken from one event still decodes after the
// decoder read the next ones.
func TestLazyKeepsEachEventsBytes(t *testing.T) {
	info := mediaType(t, scheme.Codecs, runtime.ContentTypeProtobuf)
	var body bytes.Buffer
	enc := streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(&body), info.StreamSerializer.Serializer)
	pods := []*corev1.Pod{pod("a"), pod("b"), pod("c")}
	for _, p := range pods {
		raw := encode(t, scheme.Codecs, runtime.ContentTypeProtobuf, corev1.SchemeGroupVersion, p)
		if err := enc.Encode(&metav1.WatchEvent{Type: string(watch.Added), Object: runtime.RawExtension{Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	lazy, _ := decoders(corev1.SchemeGroupVersion.WithKind("Pod"), scheme.Codecs, runtime.ContentTypeProtobuf)
	frames := info.StreamSerializer.Framer.NewFrameReader(io.NopCloser(&body))
	dec := restclientwatch.NewDecoder(streaming.NewDecoder(frames, info.StreamSerializer.Serializer), lazy)
	var got []runtime.Object
	for range pods {
		_, obj, err := dec.Decode()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, obj)
	}
	for i, obj := range got {
		whole, err := Decoded(obj)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := whole.(*corev1.Pod)
		if !ok || p.Name != pods[i].Name || p.Spec.NodeName != "node-1" {
			t.Errorf("event %d decoded to %#v after later events were read", i, whole)
		}
	}
}
