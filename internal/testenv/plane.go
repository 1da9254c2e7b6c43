package testenv

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// shutdownGraceFlag makes the apiserver end open watches at once on SIGTERM; without it
	// Stop waits for every open watch until envtest's stop timeout (20 s) and then kills it.
	shutdownGraceFlag  = "shutdown-watch-termination-grace-period"
	shutdownGraceValue = "2s"
	// readyTimeout bounds the wait for /readyz after an apiserver restart.
	readyTimeout = 30 * time.Second
)

// Options configures the control plane that Start launches.
type Options struct {
	// APIServerFlags are extra kube-apiserver flags without the leading dashes, e.g.
	// {"watch-cache-sizes": "pods#0", "min-request-timeout": "3", "feature-gates": "WatchList=false"}.
	// They replace envtest's value for the same flag, and Start's
	// shutdown-watch-termination-grace-period=2s, which lets Stop and RestartAPIServer end open
	// watches at once.
	APIServerFlags map[string]string
	// Restartable fixes the apiserver's CertDir (a temp dir the Plane owns) so that
	// RestartAPIServer works and the old rest.Config stays valid across restarts.
	Restartable bool
}

// Plane is a running etcd + kube-apiserver started by Start. Stop it when done.
type Plane struct {
	// Env is the envtest environment that runs the processes.
	Env *envtest.Environment
	// Config is an admin (system:masters) config for the apiserver. It drops the apiserver's
	// "v1 Endpoints is deprecated" warning and logs other warnings as usual.
	Config *rest.Config
	// Clientset is a clientset built from Config.
	Clientset *kubernetes.Clientset

	// certDir is the apiserver's fixed CertDir when Restartable, removed by Stop; "" otherwise.
	certDir string
	// flags are the apiserver flags Start set, which a replica gets too.
	flags map[string]string
}

// Start launches etcd and kube-apiserver from the folder named by KUBEBUILDER_ASSETS. When the
// binaries are missing the error is an *AssetsError that says how to build them.
func Start(opts Options) (*Plane, error) {
	dir, err := assetsDir()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		UseExistingCluster:    ptr.To(false),
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(dir, etcdBinary)}
	api := env.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(dir, apiServerBinary)

	p := &Plane{Env: env}
	if opts.Restartable {
		p.certDir, err = os.MkdirTemp("", "testenv-apiserver-certs-")
		if err != nil {
			return nil, fmt.Errorf("testenv: create apiserver cert dir: %w", err)
		}
		api.CertDir = p.certDir
	}
	p.flags = map[string]string{shutdownGraceFlag: shutdownGraceValue}
	maps.Copy(p.flags, opts.APIServerFlags)
	for name, value := range p.flags {
		api.Configure().Set(name, value)
	}

	p.Config, err = env.Start()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: start control plane from %s: %w", dir, err), p.Stop())
	}
	p.Config.WarningHandlerWithContext = quietEndpoints{}
	p.Clientset, err = kubernetes.NewForConfig(p.Config)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: build clientset: %w", err), p.Stop())
	}
	return p, nil
}

// Stop stops the apiserver and etcd and removes their data.
func (p *Plane) Stop() error {
	var errs []error
	if err := p.Env.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("testenv: stop control plane: %w", err))
	}
	if p.certDir != "" {
		if err := os.RemoveAll(p.certDir); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove apiserver cert dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RestartAPIServer stops and starts only the apiserver (etcd keeps running) and waits until it
// is ready. It needs Options.Restartable; Config and Clientset stay valid, and the apiserver
// listens on the same address again. Open watches end cleanly during the restart, and with
// the watch cache on a resume from an RV older than the restart gets 410.
func (p *Plane) RestartAPIServer() error { return p.RestartAPIServerWhileDown(nil) }

// RestartAPIServerWhileDown is RestartAPIServer that calls whileDown, if not nil, once the
// apiserver stopped and before it starts again.
func (p *Plane) RestartAPIServerWhileDown(whileDown func() error) error {
	if p.certDir == "" {
		return errors.New("testenv: RestartAPIServer needs a plane started with Options.Restartable")
	}
	api := p.Env.ControlPlane.GetAPIServer()
	if err := api.Stop(); err != nil {
		return fmt.Errorf("testenv: stop apiserver: %w", err)
	}
	if whileDown != nil {
		if err := whileDown(); err != nil {
			return err
		}
	}
	if err := api.Start(); err != nil {
		return fmt.Errorf("testenv: start apiserver again: %w", err)
	}
	if err := waitReady(p.Clientset); err != nil {
		return fmt.Errorf("testenv: after restart: %w", err)
	}
	return nil
}

// APIServerAddr returns the apiserver's host:port, e.g. as the target of NewProxy. It stays
// the same across RestartAPIServer.
func (p *Plane) APIServerAddr() string {
	serving := p.Env.ControlPlane.GetAPIServer().SecureServing
	return net.JoinHostPort(serving.Address, serving.Port)
}
