package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Replica is a second kube-apiserver of a Plane, on the same etcd: the two make a highly available
// control plane, each with its own watch cache, as replicas behind a load balancer have. Stop it
// before the Plane.
type Replica struct {
	api *envtest.APIServer
	// Config is an admin config for the replica: the plane's credentials, the replica's address.
	Config *rest.Config
	// Clientset is a clientset built from Config.
	Clientset *kubernetes.Clientset
}

// StartReplica starts another apiserver with the plane's flags, certificates, service-account keys
// and users, reading etcd at etcdAddr (host:port: the plane's etcd, or a proxy in front of it that
// a test blocks to make this replica's watch cache lag), and waits until it is ready. It needs a
// plane started with Options.Restartable (a fixed CertDir).
func (p *Plane) StartReplica(etcdAddr string) (*Replica, error) {
	if p.certDir == "" {
		return nil, errors.New("testenv: StartReplica needs a plane started with Options.Restartable")
	}
	first := p.Env.ControlPlane.GetAPIServer()
	dir, err := assetsDir()
	if err != nil {
		return nil, err
	}
	api := &envtest.APIServer{
		Path:    filepath.Join(dir, apiServerBinary),
		CertDir: p.certDir, // the serving certificate and service-account keys exist: they are shared
		EtcdURL: &url.URL{Scheme: "http", Host: etcdAddr},
	}
	api.SecureServing.Authn = first.SecureServing.Authn // the same client CA: the same users
	for name, value := range p.flags {
		api.Configure().Set(name, value)
	}
	if err := api.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start replica apiserver: %w", err)
	}
	r := &Replica{api: api, Config: rest.CopyConfig(p.Config)}
	r.Config.Host = "https://" + r.Addr()
	if r.Clientset, err = kubernetes.NewForConfig(r.Config); err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: replica clientset: %w", err), r.Stop())
	}
	if err := waitReady(r.Clientset); err != nil {
		return nil, errors.Join(err, r.Stop())
	}
	return r, nil
}

// Addr returns the replica's host:port.
func (r *Replica) Addr() string {
	return net.JoinHostPort(r.api.SecureServing.Address, r.api.SecureServing.Port)
}

// Stop stops the replica's apiserver (the certificates stay: they are the plane's).
func (r *Replica) Stop() error {
	if err := r.api.Stop(); err != nil {
		return fmt.Errorf("testenv: stop replica apiserver: %w", err)
	}
	return nil
}

// EtcdAddr returns the host:port of the plane's etcd, e.g. as the target of a Proxy that a
// replica reads through.
func (p *Plane) EtcdAddr() string { return p.Env.ControlPlane.Etcd.URL.Host }

// waitReady waits until the apiserver of cs answers /readyz.
func waitReady(cs *kubernetes.Clientset) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, lastErr = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("testenv: apiserver not ready: %w", errors.Join(err, lastErr))
	}
	return nil
}
