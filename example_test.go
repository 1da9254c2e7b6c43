package watchlist_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/watchlist-go/watchlist"
	"github.com/watchlist-go/watchlist/reader"
)

// clientset builds a clientset from $KUBECONFIG, as most programs do.
func clientset() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// Basic use: pods and nodes, printed as they change, until ctx ends.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := clientset()
	if err != nil {
		fmt.Println(err)
		return
	}
	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
	r, err := watchlist.New(ctx, cs, watchlist.RTPod|watchlist.RTNode, watchlist.WithLogger(log))
	if err != nil {
		fmt.Println(err)
		return
	}
	out := make(chan watchlist.Entry, 64)
	if err := r.SetOut(ctx, out); err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Run(ctx); err != nil { // Forbidden or not served: the error names the resource
		fmt.Println(err)
		return
	}
	defer r.Close(context.Background())
	for e := range out { // closed by Close, or when ctx ends
		if pod, err := e.Pod(); err == nil {
			fmt.Println(e.ChangeType(), "pod", pod.Namespace+"/"+pod.Name, pod.Status.Phase)
			continue
		}
		fmt.Println(e)
	}
}

// Relist every 6 hours: a reader that runs for weeks cannot drift from the server. Only what differs
// from what was delivered comes out.
func ExampleWithRelist() {
	ctx := context.Background()
	cs, err := clientset()
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := watchlist.New(ctx, cs, watchlist.RTAll, watchlist.WithRelist(6*time.Hour), watchlist.WithFilterSize(50_000))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = r // SetOut, Run, … as in the basic example
}

// Metrics on a registry of the program's own (or prometheus.DefaultRegisterer).
func ExampleWithMetrics() {
	ctx := context.Background()
	cs, err := clientset()
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	r, err := watchlist.New(ctx, cs, watchlist.RTPod, watchlist.WithMetrics(reg))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = r // serve reg with promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// A consumer that keeps its own map of objects: the reader keeps none, so the consumer keeps only
// what it needs — here the image of each pod's first container.
func Example_keepYourOwnMap() {
	images := map[types.UID]string{}
	apply := func(e watchlist.Entry) {
		pod, err := e.Pod()
		if err != nil {
			return // another kind
		}
		switch e.ChangeType() {
		case reader.CTAdd, reader.CTUpdate:
			if len(pod.Spec.Containers) > 0 {
				images[pod.UID] = pod.Spec.Containers[0].Image
			}
		case reader.CTDelete: // a synthesized delete carries the UID too
			delete(images, pod.UID)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "8f1c0b9e-5a4d-4c3b-9e2f-1a2b3c4d5e6f"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.29"}}},
	}
	// In a program these come from the reader's channel.
	apply(reader.NewEntry(reader.CTAdd, reader.OTPod, pod))
	fmt.Println(images)
	apply(reader.NewEntry(reader.CTDelete, reader.OTPod, &corev1.Pod{ObjectMeta: pod.ObjectMeta}))
	fmt.Println(images)
	// Output:
	// map[8f1c0b9e-5a4d-4c3b-9e2f-1a2b3c4d5e6f:nginx:1.29]
	// map[]
}
