package watchlist

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/internal/stream"
	"github.com/watchlist-go/watchlist/reader"
)

// Option configures a Reader; New applies options in order and fails on the first bad one.
type Option func(*Reader) error

// Bounds of WithRelist.
const (
	MinRelist = time.Hour
	MaxRelist = 7 * 24 * time.Hour
)

// MaxFilterSize bounds WithFilterSize: 10 million objects, about 1 GB of filter allocated up front.
const MaxFilterSize = 10_000_000

// WithFilterSize sets the initial capacity of the filter (identity → resourceVersion), to avoid
// growing it while the initial state arrives. Set it near the number of objects expected; size < 0
// or above MaxFilterSize makes New fail. Default 0: the map grows as needed.
func WithFilterSize(size int) Option {
	return func(r *Reader) error {
		if size < 0 || size > MaxFilterSize {
			return fmt.Errorf("WithFilterSize(%d): size must lie between 0 and %d", size, MaxFilterSize)
		}
		r.filterSize = size
		return nil
	}
}

// WithLogger sets the logger. Errors and fallbacks are logged at V(0), the server's warnings (e.g.
// that v1 Endpoints are deprecated) at V(1), each message once, reconnects at V(2), per-event detail
// at V(5). Default logr.Discard(). Users of log/slog pass logr.FromSlogHandler(h).
func WithLogger(log logr.Logger) Option {
	return func(r *Reader) error {
		if log.GetSink() == nil {
			log = logr.Discard()
		}
		r.log = log
		return nil
	}
}

// WithRelist makes the reader relist every d (±10% jitter): it opens a fresh set of streams, and once
// that set has delivered its initial state, swaps it in atomically and closes the old set. Only what
// differs from what was delivered comes out; on a cluster where nothing changed, nothing. d must lie
// in [MinRelist, MaxRelist]. Default: never.
func WithRelist(d time.Duration) Option {
	return func(r *Reader) error {
		if d < MinRelist || d > MaxRelist {
			return fmt.Errorf("WithRelist(%s): must be between %s and %s", d, MinRelist, MaxRelist)
		}
		r.relistEvery = d
		return nil
	}
}

// WithNamespaces reads namespaced kinds only in these namespaces, with one stream per namespace and
// kind, so that a reader bound to a namespaced Role in each works. Cluster-scoped kinds are not
// affected. An empty list, an empty or invalid namespace name, a duplicate, or a second
// WithNamespaces makes New fail.
func WithNamespaces(namespaces ...string) Option {
	return func(r *Reader) error {
		if r.namespaces != nil {
			return errors.New("WithNamespaces: given twice")
		}
		if len(namespaces) == 0 {
			return errors.New("WithNamespaces: no namespace")
		}
		seen := make(map[string]bool, len(namespaces))
		for _, ns := range namespaces {
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				return fmt.Errorf("WithNamespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
			}
			if seen[ns] {
				return fmt.Errorf("WithNamespaces: %q given twice", ns)
			}
			seen[ns] = true
		}
		r.namespaces = slices.Clone(namespaces)
		return nil
	}
}

// WithLabelSelector reads only the objects of the kinds in types whose labels match selector (label
// selector syntax, e.g. "app=web,tier!=cache"), evaluated by the server. An object that stops
// matching comes out as a delete, one that starts matching as an add. A selector that does not
// parse, an empty one, types with a bit not enabled in New, or a second label selector for a kind
// makes New fail.
func WithLabelSelector(types RetrieveType, selector string) Option {
	return func(r *Reader) error {
		if selector == "" {
			return errors.New("WithLabelSelector: empty selector")
		}
		sel, err := labels.Parse(selector)
		if err != nil {
			return fmt.Errorf("WithLabelSelector(%q): %w", selector, err)
		}
		if sel.Empty() {
			return fmt.Errorf("WithLabelSelector(%q): selects every object", selector)
		}
		return setScope(r, "WithLabelSelector", types, func(s *stream.Scope) *string { return &s.LabelSelector }, selector)
	}
}

// WithFieldSelector reads only the objects of the kinds in types whose fields match selector (e.g.
// RTPod, "spec.nodeName=node-1"), evaluated by the server; as WithLabelSelector. Which fields a
// resource supports is the server's to say: one it does not support makes Run fail, naming the
// resource.
func WithFieldSelector(types RetrieveType, selector string) Option {
	return func(r *Reader) error {
		if selector == "" {
			return errors.New("WithFieldSelector: empty selector")
		}
		sel, err := fields.ParseSelector(selector)
		if err != nil {
			return fmt.Errorf("WithFieldSelector(%q): %w", selector, err)
		}
		reqs := sel.Requirements()
		if len(reqs) == 0 {
			return fmt.Errorf("WithFieldSelector(%q): selects every object", selector)
		}
		for _, req := range reqs {
			if req.Field == "" {
				return fmt.Errorf("WithFieldSelector(%q): a term without a field", selector)
			}
		}
		return setScope(r, "WithFieldSelector", types, func(s *stream.Scope) *string { return &s.FieldSelector }, selector)
	}
}

// WithMetadataOnly has the server send only the metadata of the kinds in types: their entries hold
// a *metav1.PartialObjectMetadata (name, namespace, UID, resourceVersion, labels, annotations,
// owners, …), and their typed getters return an error. types with a bit not enabled in New makes
// New fail.
func WithMetadataOnly(types RetrieveType) Option {
	return func(r *Reader) error {
		return setScope(r, "WithMetadataOnly", types, func(s *stream.Scope) *bool { return &s.MetadataOnly }, true)
	}
}

// setScope sets one field of the scope of every kind in types to v, once per kind.
func setScope[T comparable](r *Reader, option string, types RetrieveType, field func(*stream.Scope) *T, v T) error {
	switch {
	case types == 0:
		return fmt.Errorf("%s: no RetrieveType bit set", option)
	case types&^reader.RTAll != 0:
		return fmt.Errorf("%s: unknown RetrieveType bits %#x", option, uint32(types&^reader.RTAll))
	case types&^r.types != 0:
		return fmt.Errorf("%s: %s not enabled in New", option, types&^r.types)
	}
	var zero T
	for _, k := range kinds.For(types) {
		s := r.scopes[k.Object]
		p := field(&s)
		if *p != zero && *p != v {
			return fmt.Errorf("%s: %s already has one", option, k)
		}
		*p = v
		r.scopes[k.Object] = s
	}
	return nil
}
