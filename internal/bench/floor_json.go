package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// addedPrefix is how kube-apiserver's JSON encoder begins an ADDED watch event: metav1.WatchEvent's
// fields in their order, type first, no spaces.
var addedPrefix = []byte(`{"type":"ADDED",`)

// readInitialEventsJSON reads a JSON watch stream (the body of a WatchList response for a custom
// resource, after any gzip was undone) up to the BOOKMARK annotated k8s.io/initial-events-end and
// returns what it read. The server writes one event per line. No ADDED event is parsed: a line that
// begins with addedPrefix is counted from those bytes alone. Any other line (a bookmark, an error,
// or an ADDED event written otherwise) is decoded into its type and its object as raw bytes, and
// only a bookmark's object (to find the annotation) and an error's Status are decoded further.
// Errors are those of readInitialEvents.
func readInitialEventsJSON(r io.Reader) (floorStats, error) {
	var st floorStats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxFrame)
	for sc.Scan() {
		line := sc.Bytes()
		st.frames++
		typ, raw := string(watch.Added), []byte(nil)
		if !bytes.HasPrefix(line, addedPrefix) {
			var ev struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				return st, fmt.Errorf("decode the envelope of frame %d: %w", st.frames, err)
			}
			typ, raw = ev.Type, ev.Object
		}
		if end, err := st.event(typ, raw, decodeJSON); end || err != nil {
			return st, err
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read frame %d: %w", st.frames+1, err)
	}
	return st, st.endedEarly()
}

// decodeJSON decodes an object of a JSON watch event (an object of any kind, or a Status) as
// unstructured.
func decodeJSON(raw []byte) (runtime.Object, error) {
	return runtime.Decode(unstructured.UnstructuredJSONScheme, raw)
}
