package watchlist

import (
	"context"
	"mime"
	"net/http"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/testenv"
	"github.com/watchlist-go/watchlist/reader"
)

// mediaRecorder records the media type of every watch response, by resource path.
type mediaRecorder struct {
	next http.RoundTripper

	mu    sync.Mutex
	types map[string]map[string]int // URL path → media type → responses
}

func (m *mediaRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.next.RoundTrip(req)
	if err != nil || req.URL.Query().Get("watch") != "true" {
		return resp, err
	}
	media, _, perr := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if perr != nil {
		media = "unparsable: " + resp.Header.Get("Content-Type")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.types[req.URL.Path] == nil {
		m.types[req.URL.Path] = map[string]int{}
	}
	m.types[req.URL.Path][media]++
	return resp, nil
}

func (m *mediaRecorder) snapshot() map[string]map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]map[string]int, len(m.types))
	for path, byType := range m.types {
		out[path] = make(map[string]int, len(byType))
		for media, n := range byType {
			out[path][media] = n
		}
	}
	return out
}

// acceptJSON rewrites every request's Accept header to JSON: a server (or a proxy before it) that
// has no protobuf answers so.
type acceptJSON struct{ next http.RoundTripper }

func (a acceptJSON) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "application/json")
	return a.next.RoundTrip(req)
}

// TestContentType: the streams of built-in kinds ask for protobuf whatever the rest.Config says
// (their objects are decoded only when delivered); a server that answers JSON instead is read as
// well. Each way delivers every kind's initial state and a pod's add, update and delete.
func TestContentType(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string // rest.Config.ContentType
		json        bool   // the server answers JSON whatever is asked
		want        string // media type of every watch response
	}{
		{"default is protobuf", "", false, "application/vnd.kubernetes.protobuf"},
		{"protobuf when the config asks for JSON", "application/json", false, "application/vnd.kubernetes.protobuf"},
		{"JSON from a server that answers JSON", "", true, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rec := &mediaRecorder{types: map[string]map[string]int{}}
			cfg := rest.CopyConfig(plane(t).Config)
			cfg.ContentType = tc.contentType
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
				rec.next = rt
				if tc.json {
					return acceptJSON{rec}
				}
				return rec
			})
			ns := newNamespace(t, plane(t).Clientset, "content")
			rr := startReader(t, cfg, RTAll)

			pod := mustCreate(t, plane(t).Clientset, reader.OTPod, ns, "p")
			waitFor(t, 10*time.Second, "the add", func() bool { return rr.c.hasVersion(pod.GetUID(), pod.GetResourceVersion()) })
			touched, err := testenv.Touch(ctx, plane(t).Clientset, pod)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the update", func() bool { return rr.c.hasVersion(pod.GetUID(), touched.GetResourceVersion()) })
			if err := testenv.Delete(ctx, plane(t).Clientset, pod); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the delete", func() bool { return rr.c.isDeleted(pod.GetUID()) })
			rr.c.assertConverged(t, plane(t).Clientset, RTAll, 10*time.Second)

			got := rec.snapshot()
			if len(got) != len(kindsOf(RTAll)) {
				t.Errorf("watch responses for %d resources, want %d: %v", len(got), len(kindsOf(RTAll)), got)
			}
			for path, byType := range got {
				for media, n := range byType {
					if media != tc.want {
						t.Errorf("%s: %d watch responses of %q, want %q", path, n, media, tc.want)
					}
				}
			}
		})
	}
}
