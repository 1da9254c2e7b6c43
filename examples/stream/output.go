package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/watchlist-go/watchlist"
	"github.com/watchlist-go/watchlist/reader"
)

// record is what the demo prints of one entry; its JSON form is one line of -output json.
type record struct {
	Change          string `json:"change"`
	Kind            string `json:"kind"`
	Resource        string `json:"resource"`  // group/version/resource, e.g. "v1/pods", "stable.example.com/v1/widgets"
	Namespace       string `json:"namespace"` // "" for cluster-scoped kinds
	Name            string `json:"name"`
	UID             string `json:"uid"`
	ResourceVersion string `json:"resourceVersion"`
}

// recordOf reads the identity of the object an entry holds.
func recordOf(e watchlist.Entry) (record, error) {
	m, err := meta.Accessor(e.Object())
	if err != nil {
		return record{}, fmt.Errorf("%s %s entry holds no object metadata: %w", e.ChangeType(), e.ObjectType(), err)
	}
	kind := e.ObjectType().String()
	if e.ObjectType() == reader.OTResource {
		kind = e.Object().GetObjectKind().GroupVersionKind().Kind // e.g. "Widget"
	}
	gvr := e.Resource()
	return record{
		Change:          e.ChangeType().String(),
		Kind:            kind,
		Resource:        strings.TrimPrefix(gvr.Group+"/"+gvr.Version+"/"+gvr.Resource, "/"),
		Namespace:       m.GetNamespace(),
		Name:            m.GetName(),
		UID:             string(m.GetUID()),
		ResourceVersion: m.GetResourceVersion(),
	}, nil
}

// printer writes entries on stdout, one line each.
type printer interface {
	print(e watchlist.Entry) error
}

// newPrinter returns the printer of format (outputText or outputJSON) writing to w.
func newPrinter(format string, w io.Writer) printer {
	if format == outputJSON {
		return jsonPrinter{enc: json.NewEncoder(w)}
	}
	return textPrinter{w: w}
}

// textPrinter prints "change kind namespace/name rv=resourceVersion", in aligned columns.
type textPrinter struct{ w io.Writer }

func (p textPrinter) print(e watchlist.Entry) error {
	r, err := recordOf(e)
	if err != nil {
		return err
	}
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	if _, err := fmt.Fprintf(p.w, "%-6s %-18s %s rv=%s\n", r.Change, r.Kind, name, r.ResourceVersion); err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	return nil
}

// jsonPrinter prints one JSON object per line (see record).
type jsonPrinter struct{ enc *json.Encoder }

func (p jsonPrinter) print(e watchlist.Entry) error {
	r, err := recordOf(e)
	if err != nil {
		return err
	}
	if err := p.enc.Encode(r); err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	return nil
}

// newLogger returns the logger the reader (and envtest) log to: log/slog's text handler on w,
// through logr.FromSlogHandler. logr's V(n) is slog level -n, so verbosity v shows V(0)..V(v);
// those levels print as "V1", "V2"… rather than slog's "DEBUG+3".
func newLogger(w io.Writer, verbosity int) logr.Logger {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       slog.Level(-verbosity),
		ReplaceAttr: nameVLevel,
	})
	return logr.FromSlogHandler(h)
}

// nameVLevel prints a level below Info, which only logr's V(n) produces here, as "Vn".
func nameVLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 || a.Key != slog.LevelKey {
		return a
	}
	if level, ok := a.Value.Any().(slog.Level); ok && level < slog.LevelInfo {
		a.Value = slog.StringValue(fmt.Sprintf("V%d", -level))
	}
	return a
}

// lockedWriter serializes the writes of several goroutines (the reader's logger, the goroutine that
// makes changes, run itself) to one stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
