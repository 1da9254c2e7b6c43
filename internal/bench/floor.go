package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// parameterCodec encodes the floor's ListOptions into the query, as the reader's streams do.
var parameterCodec = scheme.ParameterCodec

// floorWatchTimeout is the timeoutSeconds of the floor's watch: the reader asks for a random one
// between 5 and 10 minutes, which changes nothing before the end bookmark.
const floorWatchTimeout = 5 * 60

// maxFrame is the largest watch frame readInitialEvents accepts, and the longest event line of
// readInitialEventsJSON. A JSON stream read as protobuf frames starts with a "length" of over 2 GB
// ('{"ty'), well above it.
const maxFrame = 64 << 20

// floorListOptions are the query of the reader's WatchList request.
func floorListOptions() metav1.ListOptions {
	return metav1.ListOptions{
		Watch:                true,
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
		TimeoutSeconds:       ptr.To(int64(floorWatchTimeout)),
	}
}

// floorStats is what readInitialEvents read.
type floorStats struct {
	frames          int    // watch events, the end bookmark included
	added           int    // ADDED events: the initial state
	bookmarks       int    // BOOKMARK events, the end bookmark included
	resourceVersion string // the end bookmark's
}

// readInitialEvents reads a protobuf watch stream (the body of a WatchList response, after any gzip
// was undone) up to the BOOKMARK annotated k8s.io/initial-events-end and returns what it read.
// Each frame is a 4-byte big-endian length and a metav1.WatchEvent, whose envelope is decoded with
// the object left as raw bytes; only a bookmark's object (to find the annotation) and an error's
// Status are decoded. An ERROR event, another event type, or the stream ending before the end
// bookmark is an error.
func readInitialEvents(r io.Reader) (floorStats, error) {
	var (
		st     floorStats
		header [4]byte
		buf    []byte
		ev     metav1.WatchEvent
	)
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return st, st.endedEarly()
			}
			return st, fmt.Errorf("read the header of frame %d: %w", st.frames+1, err)
		}
		n := binary.BigEndian.Uint32(header[:])
		if n > maxFrame {
			return st, fmt.Errorf("frame %d claims %d bytes: not a protobuf watch stream (it starts with %q)", st.frames+1, n, header[:])
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return st, fmt.Errorf("read frame %d (%d bytes): %w", st.frames+1, n, err)
		}
		st.frames++
		ev.Type, ev.Object.Raw = "", ev.Object.Raw[:0] // Unmarshal appends to Raw: one buffer for all
		if err := ev.Unmarshal(buf); err != nil {
			return st, fmt.Errorf("decode the envelope of frame %d: %w", st.frames, err)
		}
		if end, err := st.event(ev.Type, ev.Object.Raw, decodeProtobuf); end || err != nil {
			return st, err
		}
	}
}

// endedEarly is the error of a stream that ended before its initial-events-end bookmark.
func (st *floorStats) endedEarly() error {
	return fmt.Errorf("the stream ended after %d events, before the initial-events-end bookmark", st.frames)
}

// decodeProtobuf decodes an object of a protobuf watch event: a built-in kind or a Status.
func decodeProtobuf(raw []byte) (runtime.Object, error) {
	return runtime.Decode(scheme.Codecs.UniversalDeserializer(), raw)
}

// event counts the event of frame st.frames, of type typ; raw is its object, which decode decodes
// for a bookmark (to find the annotation) and an error (its Status) only. It returns true at the
// BOOKMARK annotated k8s.io/initial-events-end, and an error for an ERROR event or an event that
// is neither ADDED nor BOOKMARK.
func (st *floorStats) event(typ string, raw []byte, decode func([]byte) (runtime.Object, error)) (end bool, err error) {
	switch watch.EventType(typ) {
	case watch.Added:
		st.added++
	case watch.Bookmark:
		st.bookmarks++
		obj, err := decode(raw)
		if err != nil {
			return false, fmt.Errorf("decode the bookmark of frame %d: %w", st.frames, err)
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return false, fmt.Errorf("the bookmark of frame %d: %w", st.frames, err)
		}
		if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
			st.resourceVersion = m.GetResourceVersion()
			return true, nil
		}
	case watch.Error:
		obj, err := decode(raw)
		if err != nil {
			return false, fmt.Errorf("decode the error of frame %d: %w", st.frames, err)
		}
		return false, fmt.Errorf("the server sent an error in frame %d: %w", st.frames, apierrors.FromObject(obj))
	default:
		return false, fmt.Errorf("a %q event in frame %d, before the initial-events-end bookmark", typ, st.frames)
	}
	return false, nil
}
