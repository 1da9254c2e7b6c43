package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/watchlist-go/watchlist/internal/testenv"
)

const (
	// demoNamespace holds every object the demo creates.
	demoNamespace = "watchlist-demo"
	// changeEvery is the pace of the changes the demo makes.
	changeEvery = time.Second
)

// runLocal starts a local control plane, fills it with a few objects, streams it while changing
// some of them every second, and stops it.
func (s *session) runLocal(ctx context.Context) (err error) {
	plane, err := s.startPlane()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.stopPlane(plane)) }()
	if ctx.Err() != nil {
		return nil // interrupted while the plane started
	}

	if err := s.seed(ctx, plane.Clientset); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := s.installCRDs(plane); err != nil {
		return err
	}
	// The reader gets a clientset of its own; the changes go through plane.Clientset.
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(plane.Config), userAgent))
	if err != nil {
		return fmt.Errorf("build clientset: %w", err)
	}
	ch := &changer{cs: plane.Clientset, log: s.log.WithName("changes")}
	return s.stream(ctx, cs, func(ctx context.Context) error {
		s.say("changing pods, a service, a deployment and a role in %s every %s", demoNamespace, changeEvery)
		return ch.run(ctx)
	})
}

// startPlane starts etcd and kube-apiserver with internal/testenv and says how long it took.
func (s *session) startPlane() (*testenv.Plane, error) {
	// envtest logs through controller-runtime's logger, which complains on stderr when unset.
	ctrllog.SetLogger(s.log.WithName("envtest"))
	s.say("no kubeconfig: starting a local control plane (kube-apiserver + etcd from %s)…", testenv.AssetsEnv)
	start := time.Now()
	plane, err := testenv.Start(testenv.Options{})
	if err != nil {
		return nil, fmt.Errorf("start local control plane (or pass -kubeconfig): %w", err)
	}
	s.say("control plane up in %.1f s at %s", time.Since(start).Seconds(), plane.Config.Host)
	return plane, nil
}

// crdDir holds the CRDs the demo installs on a local control plane when -resources is given, so
// that -resources stable.example.com/v1/widgets reads something: a path from the repository's root,
// where make demo runs.
const crdDir = "testdata/crds"

// installCRDs installs the CRDs of crdDir when resources are read and the directory is there.
func (s *session) installCRDs(plane *testenv.Plane) error {
	if len(s.cfg.resources) == 0 {
		return nil
	}
	if _, err := os.Stat(crdDir); err != nil {
		s.say("no %s here: no custom resource installed", crdDir)
		return nil
	}
	crds, err := envtest.InstallCRDs(plane.Config, envtest.CRDInstallOptions{Paths: []string{crdDir}})
	if err != nil {
		return fmt.Errorf("install the CRDs of %s: %w", crdDir, err)
	}
	for _, crd := range crds {
		s.say("installed CRD %s", crd.Name)
	}
	return s.seedWidgets(plane)
}

// widgets is the resource of the demo's CRD.
var widgets = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "widgets"}

// seedWidgets creates a few Widgets in demoNamespace when the demo reads them.
func (s *session) seedWidgets(plane *testenv.Plane) error {
	if !slices.Contains(s.cfg.resources, widgets) {
		return nil
	}
	dyn, err := dynamic.NewForConfig(plane.Config)
	if err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	for i, color := range []string{"red", "green", "blue"} {
		w := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "stable.example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"namespace": demoNamespace, "name": "widget-" + color},
			"spec":     map[string]any{"size": int64(i + 1), "color": color},
		}}
		if _, err := dyn.Resource(widgets).Namespace(demoNamespace).Create(context.Background(), w, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create widget %s: %w", color, err)
		}
	}
	s.say("created 3 widgets in %s", demoNamespace)
	return nil
}

// stopPlane stops the control plane and says how long it took.
func (s *session) stopPlane(plane *testenv.Plane) error {
	s.say("stopping the control plane…")
	start := time.Now()
	if err := plane.Stop(); err != nil {
		return fmt.Errorf("stop local control plane: %w", err)
	}
	s.say("control plane stopped in %.1f s", time.Since(start).Seconds())
	return nil
}

// object names one object of the demo: a kind of package testenv and a name in demoNamespace.
type object struct{ kind, name string }

// change is one write to one object: verbCreate, verbTouch or verbDelete.
type change struct {
	verb string
	object
}

// seeds are the objects the demo creates before it starts the reader, in this order.
var seeds = []object{
	{testenv.KindNamespace, demoNamespace},
	{testenv.KindPod, "web-1"},
	{testenv.KindPod, "web-2"},
	{testenv.KindPod, "web-3"},
	{testenv.KindService, "web"},
	{testenv.KindDeployment, "web"},
	{testenv.KindRole, "reader"},
	{testenv.KindRoleBinding, "reader"},
}

// seed creates the seeds, so that the initial state holds a few objects of the demo's own.
func (s *session) seed(ctx context.Context, cs kubernetes.Interface) error {
	start := time.Now()
	for _, o := range seeds {
		if err := apply(ctx, cs, change{verbCreate, o}); err != nil {
			return err
		}
	}
	s.say("created %d objects (namespace %s: 3 pods, a service, a deployment, a role, a role binding) in %d ms",
		len(seeds), demoNamespace, time.Since(start).Milliseconds())
	return nil
}

// Verbs of apply.
const (
	verbCreate = "create"
	verbTouch  = "touch" // one update: bump a label
	verbDelete = "delete"
)

// apply makes one change (namespace ignored for cluster-scoped kinds).
func apply(ctx context.Context, cs kubernetes.Interface, ch change) error {
	obj, err := testenv.NewObject(ch.kind, demoNamespace, ch.name)
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", ch.verb, ch.kind, ch.name, err)
	}
	switch ch.verb {
	case verbCreate:
		_, err = testenv.Create(ctx, cs, obj)
	case verbTouch:
		_, err = testenv.Touch(ctx, cs, obj)
	case verbDelete:
		err = testenv.Delete(ctx, cs, obj)
	default:
		err = fmt.Errorf("unknown verb %q", ch.verb)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", ch.verb, ch.kind, ch.name, err)
	}
	return nil
}

// rotation is the change that each step makes besides its pods, in turn.
var rotation = []change{
	{verbTouch, object{testenv.KindPod, "web-1"}},
	{verbTouch, object{testenv.KindService, "web"}},
	{verbTouch, object{testenv.KindDeployment, "web"}},
	{verbTouch, object{testenv.KindRole, "reader"}},
	{verbCreate, object{testenv.KindService, "canary"}},
	{verbDelete, object{testenv.KindService, "canary"}},
}

// changer makes a few changes in demoNamespace at every step, so that the stream shows adds,
// updates and deletes.
type changer struct {
	cs   kubernetes.Interface
	log  logr.Logger
	step int
}

// run makes one step at once and then one every changeEvery, until ctx ends; it returns nil then,
// or the first error of a change.
func (c *changer) run(ctx context.Context) error {
	t := time.NewTicker(changeEvery)
	defer t.Stop()
	for {
		if err := c.next(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("make changes: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// next makes one step: create the pod churn-N, delete the pod of the step before (an update with
// its deletionTimestamp, then a delete), and the next change of rotation.
func (c *changer) next(ctx context.Context) error {
	n := c.step
	c.step++
	changes := []change{{verbCreate, object{testenv.KindPod, fmt.Sprintf("churn-%d", n)}}}
	if n > 0 {
		changes = append(changes, change{verbDelete, object{testenv.KindPod, fmt.Sprintf("churn-%d", n-1)}})
	}
	changes = append(changes, rotation[n%len(rotation)])
	for _, ch := range changes {
		if err := apply(ctx, c.cs, ch); err != nil {
			return err
		}
		c.log.V(1).Info("changed", "verb", ch.verb, "kind", ch.kind, "name", ch.name)
	}
	return nil
}
