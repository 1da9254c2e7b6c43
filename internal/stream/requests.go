package stream

import (
	"context"
	"math/rand/v2"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/watchlist-go/watchlist/internal/kinds"
)

// optionsVersion is the version ListOptions are encoded in: "v1" of no group, which client-go's
// scheme registers for every group, custom ones too.
var optionsVersion = schema.GroupVersion{Version: "v1"}

// watch opens a watch that the server ends after a random time in [WatchTimeout, 2*WatchTimeout),
// or, when WatchTimeout is 0, when the server's --min-request-timeout says.
func (s *Stream) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	req := s.request(kinds.MetadataAccept, &opts)
	if s.cfg.Timing.WatchTimeout > 0 {
		timeout := s.cfg.Timing.WatchTimeout + rand.N(s.cfg.Timing.WatchTimeout)
		opts.TimeoutSeconds = ptr.To(int64(timeout.Seconds()))
		req = req.Timeout(timeout)
	}
	return req.SpecificallyVersionedParams(&opts, scheme.ParameterCodec, optionsVersion).Watch(ctx)
}

// list asks for one page of the fallback's LIST.
func (s *Stream) list(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	obj, err := s.request(kinds.MetadataListAccept, &opts).SpecificallyVersionedParams(&opts, scheme.ParameterCodec, optionsVersion).Do(ctx).Get()
	if u, ok := obj.(*unstructured.Unstructured); ok && err == nil && u.IsList() {
		// An unstructured client decodes a list of a kind it does not know as one object.
		return u.ToList()
	}
	return obj, err
}

// request begins a request for the stream's resource in its scope; opts receives the selectors.
//
// What a request accepts is the client's (kinds.Kind.Client: protobuf for built-in kinds, JSON for
// custom resources); metadata-only requests ask for PartialObjectMetadata (metadata names the media
// types, for one object or a list), as protobuf where the server has it.
func (s *Stream) request(metadata string, opts *metav1.ListOptions) *rest.Request {
	// client-go would retry a 429 or 5xx that carries Retry-After up to 10 times on its own, out of
	// sight: the stream decides, so that each answer counts (a replica behind answers "too large
	// resource version" with Retry-After) and its own backoff and Retry-After apply.
	req := s.cfg.Client.Get().MaxRetries(0)
	if s.cfg.Warnings != nil {
		req = req.WarningHandlerWithContext(s.cfg.Warnings)
	}
	if s.cfg.Scope.MetadataOnly {
		req = req.SetHeader("Accept", metadata)
	}
	if s.cfg.Scope.Namespace != "" {
		req = req.Namespace(s.cfg.Scope.Namespace)
	}
	opts.LabelSelector, opts.FieldSelector = s.cfg.Scope.LabelSelector, s.cfg.Scope.FieldSelector
	return req.Resource(s.cfg.Kind.Resource.Resource)
}

// isExpired reports a resume point the server no longer serves: 410, or a resourceVersion ahead of
// what it has (after a restore, or a server behind its peers).
func isExpired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) ||
		apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge)
}

// refusesWatchList reports the 422 a server with the WatchList feature off answers to
// sendInitialEvents, or a server older than 1.27 to resourceVersionMatch on a watch (or a 400 from
// one that rejects either parameter).
func refusesWatchList(err error) bool {
	msg := err.Error()
	return (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)) &&
		(strings.Contains(msg, "sendInitialEvents") || strings.Contains(msg, "resourceVersionMatch"))
}

// isPermanent reports an error that retrying will not fix.
func isPermanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)
}
