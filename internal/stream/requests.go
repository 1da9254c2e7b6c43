package stream

import (
	"context"
	"math/rand/v2"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// watch opens a watch that the server ends after a random time in [WatchTimeout, 2*WatchTimeout),
// or, when WatchTimeout is 0, when the server's --min-request-timeout says.
//
// Requests ask for protobuf unless the user set a content type on the rest.Config, as client-go's
// typed clients do: every kind in the table is a built-in type, and decoding JSON costs four to six
// times the CPU (BENCHMARKS.md).
func (s *Stream) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	req := s.cfg.Client.Get().UseProtobufAsDefault().Resource(s.cfg.Kind.Resource.Resource)
	if s.cfg.Timing.WatchTimeout > 0 {
		timeout := s.cfg.Timing.WatchTimeout + rand.N(s.cfg.Timing.WatchTimeout)
		opts.TimeoutSeconds = ptr.To(int64(timeout.Seconds()))
		req = req.Timeout(timeout)
	}
	return req.VersionedParams(&opts, scheme.ParameterCodec).Watch(ctx)
}

// list asks for one page of the fallback's LIST.
func (s *Stream) list(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	return s.cfg.Client.Get().
		UseProtobufAsDefault().
		Resource(s.cfg.Kind.Resource.Resource).
		VersionedParams(&opts, scheme.ParameterCodec).
		Do(ctx).Get()
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
