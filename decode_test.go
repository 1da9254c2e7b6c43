package watchlist

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// podBytes encodes p as the server does: protobuf.
func podBytes(p *corev1.Pod) ([]byte, error) {
	info, _ := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	return runtime.Encode(scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion), p)
}

// lazyFrom decodes a pod's bytes as a pod stream's client does: into a *kinds.Lazy.
func lazyFrom(raw []byte) (runtime.Object, error) {
	k, _ := kinds.ByObject(reader.OTPod)
	dec, ok := k.ProtobufDecoder()
	if !ok {
		return nil, errors.New("pods have no protobuf decoder")
	}
	obj, _, err := dec.Decode(raw, nil, nil)
	if _, lazy := obj.(*kinds.Lazy); err == nil && !lazy {
		err = fmt.Errorf("decoded %T, want *kinds.Lazy", obj)
	}
	return obj, err
}

// lazyPod returns a pod as a pod stream's client decodes it. A poisoned one has an identity that
// reads well and a spec that fails to decode, so decoding it is seen.
func lazyPod(t *testing.T, uid, rv string, poisoned bool) runtime.Object {
	t.Helper()
	p := pod(uid, rv)
	p.Spec.NodeName = "node-" + rv
	raw, err := podBytes(p)
	must(t, err)
	if poisoned {
		const prefix = 4 // "k8s\x00"
		var u runtime.Unknown
		must(t, u.Unmarshal(raw[prefix:]))
		bad := protowire.AppendTag(nil, 1, protowire.BytesType) // the spec's volumes: 5 bytes, none there
		bad = protowire.AppendVarint(bad, 5)
		u.Raw = protowire.AppendBytes(protowire.AppendTag(u.Raw, 2, protowire.BytesType), bad)
		b, err := u.Marshal()
		must(t, err)
		raw = append(raw[:prefix:prefix], b...)
	}
	obj, err := lazyFrom(raw)
	must(t, err)
	return obj
}

// TestOnlyDeliveredObjectsAreDecoded: the filter decides from identity and resourceVersion, and an
// object is decoded only when its entry is delivered. A quiet complete state (a relist, a 410's
// re-sync, a warm restart after a 410) decodes nothing: there, poisoned objects pass unnoticed.
func TestOnlyDeliveredObjectsAreDecoded(t *testing.T) {
	ctx := context.Background()
	ch := make(chan reader.Entry, 16)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	sink := setSink{o: o, set: newTestSet()}
	take := func() []reader.Entry {
		var got []reader.Entry
		for len(ch) > 0 {
			got = append(got, <-ch)
		}
		return got
	}

	// The first state: each object is delivered, decoded whole.
	token := sink.BeginSync(podID)
	must(t, sink.Observe(ctx, podID, watch.Added, lazyPod(t, uidA, "10", false), token))
	err := sink.Observe(ctx, podID, watch.Added, lazyPod(t, uidB, "11", true), token)
	if err == nil || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("delivering a poisoned pod: %v, want its decode error", err)
	}
	must(t, sink.EndSync(ctx, podID, token, "12", false))
	got := take()
	if len(got) != 1 || got[0].ChangeType() != reader.CTAdd {
		t.Fatalf("first state delivered %v, want one add", got)
	}
	if p, ok := got[0].Object().(*corev1.Pod); !ok || p.Spec.NodeName != "node-10" {
		t.Fatalf("the add holds %#v, want the pod decoded whole", got[0].Object())
	}

	// A quiet state: the same version, poisoned, is dropped without being decoded.
	token = sink.BeginSync(podID)
	must(t, sink.Observe(ctx, podID, watch.Added, lazyPod(t, uidA, "10", true), token))
	must(t, sink.EndSync(ctx, podID, token, "13", false))
	if got := take(); len(got) != 0 {
		t.Fatalf("a quiet state delivered %v", got)
	}

	// A change, in a state and after it: decoded.
	token = sink.BeginSync(podID)
	must(t, sink.Observe(ctx, podID, watch.Added, lazyPod(t, uidA, "14", false), token))
	must(t, sink.EndSync(ctx, podID, token, "14", false))
	must(t, sink.Observe(ctx, podID, watch.Modified, lazyPod(t, uidA, "15", false), 0))
	got = take()
	if len(got) != 2 {
		t.Fatalf("changes delivered %d entries, want 2", len(got))
	}
	for i, rv := range []string{"14", "15"} {
		if p, ok := got[i].Object().(*corev1.Pod); got[i].ChangeType() != reader.CTUpdate || !ok || p.Spec.NodeName != "node-"+rv {
			t.Errorf("entry %d: %s of %#v, want an update holding the pod at %s decoded whole", i, got[i].ChangeType(), got[i].Object(), rv)
		}
	}
}

// TestDecodeOutsideTheLockKeepsOrder: a stream decodes the object it will deliver with the
// output's lock released, and then judges it again. Two goroutines pass rising versions of the
// same pods at once (as two sets do during a relist); while one decodes, the other may deliver a
// newer version, and the older one must then be dropped: every pod's versions leave in order, none
// twice, the first as an add.
func TestDecodeOutsideTheLockKeepsOrder(t *testing.T) {
	const pods, versions = 8, 400
	uids := make([]string, pods)
	objs := make([][]runtime.Object, pods) // objs[p][v-1]: pod p at version v
	for p := range pods {
		uids[p] = fmt.Sprintf("0d3c8f3e-1111-4a0e-9e0c-%012d", p)
		for v := 1; v <= versions; v++ {
			raw, err := podBytes(pod(uids[p], fmt.Sprint(v)))
			must(t, err)
			obj, err := lazyFrom(raw)
			must(t, err)
			objs[p] = append(objs[p], obj)
		}
	}
	ctx := context.Background()
	ch := make(chan reader.Entry, pods*versions)
	o := newOutput(ch, 0, newStats(), logr.Discard())
	sink := setSink{o: o, set: newTestSet()}
	errs := make(chan error, 2)
	for start := range 2 { // one goroutine the odd versions, one the even
		go func() {
			for v := 1 + start; v <= versions; v += 2 {
				for p := range pods {
					if err := sink.Observe(ctx, podID, watch.Modified, objs[p][v-1], 0); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		must(t, <-errs)
	}
	close(ch)
	last := map[string]int{}
	n := 0
	for e := range ch {
		n++
		p := e.Object().(*corev1.Pod)
		var v int
		_, _ = fmt.Sscan(p.ResourceVersion, &v)
		uid := string(p.UID)
		switch prev, seen := last[uid]; {
		case !seen && e.ChangeType() != reader.CTAdd:
			t.Fatalf("pod %s: first entry %s at %d, want an add", uid, e.ChangeType(), v)
		case seen && (v <= prev || e.ChangeType() != reader.CTUpdate):
			t.Fatalf("pod %s: %s at %d after %d", uid, e.ChangeType(), v, prev)
		}
		last[uid] = v
	}
	t.Logf("%d entries of %d events", n, 2*pods*versions/2)
	for _, uid := range uids {
		if last[uid] != versions {
			t.Errorf("pod %s: last version delivered %d, want %d", uid, last[uid], versions)
		}
	}
}
