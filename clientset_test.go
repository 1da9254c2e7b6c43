package watchlist

import (
	"context"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/rest/fake"

	"github.com/watchlist-go/watchlist/internal/kinds"
	"github.com/watchlist-go/watchlist/reader"
)

// TestNewAcceptsAClientsetOfAnyRESTInterface: a clientset made with kubernetes.New around a
// rest.Interface that is not client-go's *rest.RESTClient (a wrapping or fake one) is accepted, its
// built-in kinds read through that client (decoding every object), as before the reader made REST
// clients of its own to decode lazily. A reviewer found New refusing it.
func TestNewAcceptsAClientsetOfAnyRESTInterface(t *testing.T) {
	c := &fake.RESTClient{
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         corev1.SchemeGroupVersion,
		VersionedAPIPath:     "/api/v1",
		Client:               fake.CreateHTTPClient(func(*http.Request) (*http.Response, error) { return nil, context.Canceled }),
	}
	cs := kubernetes.New(c)
	if _, err := New(context.Background(), cs, RTPod); err != nil {
		t.Fatalf("New on kubernetes.New(a rest.Interface): %v", err)
	}
	k, _ := kinds.ByObject(reader.OTPod)
	if got := k.Client(cs); got != rest.Interface(c) {
		t.Errorf("pods read through %T, want the clientset's own client", got)
	}
}
