package kinds

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Lazy is an object of a protobuf response whose identity was read from its bytes and which is
// not decoded yet: most objects of a complete state that diffs against what was delivered are
// dropped, and decoding them would cost most of the read. Its ObjectMeta holds the namespace,
// name, UID and resourceVersion only; Decoded returns the whole object.
//
// meta.Accessor accepts a *Lazy (it is a metav1.ObjectMetaAccessor), so what reads identities
// reads them from a *Lazy as from the decoded object.
type Lazy struct {
	metav1.TypeMeta // empty, as the decoder leaves a typed object's
	meta            metav1.ObjectMeta
	raw             []byte          // the object as the server sent it, never written
	full            runtime.Decoder // decodes raw
}

// GetObjectMeta returns the identity read from the object's bytes.
func (l *Lazy) GetObjectMeta() metav1.Object { return &l.meta }

// DeepCopyObject returns a copy that shares the (never written) bytes.
func (l *Lazy) DeepCopyObject() runtime.Object {
	c := *l
	c.meta = *l.meta.DeepCopy()
	return &c
}

// Decoded returns obj whole: a *Lazy decoded, anything else as it is.
func Decoded(obj runtime.Object) (runtime.Object, error) {
	l, ok := obj.(*Lazy)
	if !ok {
		return obj, nil
	}
	whole, _, err := l.full.Decode(l.raw, nil, nil)
	if err != nil {
		name := l.meta.Name
		if l.meta.Namespace != "" {
			name = l.meta.Namespace + "/" + name
		}
		return nil, fmt.Errorf("decode %q at resourceVersion %s: %w", name, l.meta.ResourceVersion, err)
	}
	return whole, nil
}

// lazySerializer is a NegotiatedSerializer whose decoders return a *Lazy for a protobuf object of
// one kind (gvk) decoded into nothing, as a watch decodes each event's object. Anything else (a
// Status, another kind, JSON, a LIST decoded into its list type) is decoded whole, as serializers
// would.
type lazySerializer struct {
	runtime.NegotiatedSerializer
	gvk schema.GroupVersionKind
}

// DecoderToVersion wraps the decoder serializers would return.
func (s lazySerializer) DecoderToVersion(d runtime.Decoder, gv runtime.GroupVersioner) runtime.Decoder {
	return lazyDecoder{full: s.NegotiatedSerializer.DecoderToVersion(d, gv), apiVersion: s.gvk.GroupVersion().String(), kind: s.gvk.Kind}
}

// lazyDecoder is the decoder of a lazySerializer.
type lazyDecoder struct {
	full             runtime.Decoder
	apiVersion, kind string
}

// protobufPrefix starts every object kube-apiserver encodes as protobuf, before its
// runtime.Unknown envelope.
var protobufPrefix = [...]byte{0x6b, 0x38, 0x73, 0x00} // "k8s\x00"

// Decode returns a *Lazy for a protobuf object of the decoder's kind, and otherwise what the full
// decoder returns. The *Lazy keeps data: client-go's watch decoder gives each event's object bytes
// of their own (TestLazyKeepsEachEventsBytes pins that).
func (d lazyDecoder) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if into == nil {
		if m, ok := d.identity(data); ok {
			gvk := schema.FromAPIVersionAndKind(d.apiVersion, d.kind)
			return &Lazy{meta: m, raw: data, full: d.full}, &gvk, nil
		}
	}
	return d.full.Decode(data, defaults, into)
}

// identity reads the namespace, name, UID and resourceVersion of data, a protobuf object: the
// prefix, then a runtime.Unknown whose typeMeta names the decoder's kind, whose raw bytes are the
// object with no content encoding or type of their own, and whose field 1 is its ObjectMeta (as in
// every built-in kind and in PartialObjectMetadata). ok is false when data is anything else, or
// malformed: the full decoder then decodes it, or says what is wrong with it.
func (d lazyDecoder) identity(data []byte) (m metav1.ObjectMeta, ok bool) {
	if !bytes.HasPrefix(data, protobufPrefix[:]) {
		return m, false
	}
	var (
		apiVersion, kind, raw []byte
		foreign               bool // a content encoding or type: leave it to the full decoder
	)
	ok = eachField(data[len(protobufPrefix):], func(num protowire.Number, v []byte) bool {
		switch num {
		case 1: // typeMeta
			return readFields(v, field{1, &apiVersion}, field{2, &kind})
		case 2:
			raw = v
		case 3, 4:
			foreign = foreign || len(v) > 0
		}
		return true
	})
	if !ok || foreign || string(apiVersion) != d.apiVersion || string(kind) != d.kind {
		return m, false
	}
	var name, namespace, uid, rv []byte
	ok = eachField(raw, func(num protowire.Number, v []byte) bool {
		// metadata; a message given twice is merged, so its fields' last values win
		return num != 1 || readFields(v, field{1, &name}, field{3, &namespace}, field{5, &uid}, field{6, &rv})
	})
	if !ok {
		return m, false
	}
	m.Name, m.Namespace, m.UID, m.ResourceVersion = string(name), string(namespace), types.UID(uid), string(rv)
	return m, true
}

// field is a length-delimited field of a message that readFields reads into v.
type field struct {
	num protowire.Number
	v   *[]byte
}

// readFields sets each of fields to the bytes of its field in the protobuf message b (the last
// occurrence wins) and returns false when b is malformed.
func readFields(b []byte, fields ...field) bool {
	return eachField(b, func(num protowire.Number, v []byte) bool {
		for _, f := range fields {
			if f.num == num {
				*f.v = v
			}
		}
		return true
	})
}

// eachField calls f with the number and bytes of every length-delimited field of the protobuf
// message b, in order, skipping fields of other wire types. It returns false when b is malformed
// or f returned false.
func eachField(b []byte, f func(num protowire.Number, v []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 || !f(num, v) {
			return false
		}
		b = b[n:]
	}
	return true
}
