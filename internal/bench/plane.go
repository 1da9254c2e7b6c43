package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/watchlist-go/watchlist/internal/testenv"
)

// benchPlane is a suite's control plane: children read it through kubeconfig, the parent writes
// through cs or other clients of writer (no client-side rate limit) and records each run in runs.
type benchPlane struct {
	runs       *os.File
	plane      *testenv.Plane
	tmp        string // holds kubeconfig
	kubeconfig string
	writer     *rest.Config
	cs         *kubernetes.Clientset
}

// startSuite creates the output folders and the runs file runsName in out, then starts etcd and a
// kube-apiserver that takes many requests at once (and that the suite can restart, when
// restartable), and says so on stderr.
func startSuite(out, cpuProfile, memProfile, runsName, suite string, restartable bool, stderr io.Writer) (*benchPlane, error) {
	runs, err := createOut(out, cpuProfile, memProfile, runsName)
	if err != nil {
		return nil, err
	}
	b, err := startBenchPlane(stderr, suite, restartable)
	if err != nil {
		return nil, errors.Join(err, runs.Close())
	}
	b.runs = runs
	return b, nil
}

// startBenchPlane starts etcd and a kube-apiserver that takes many requests at once (and that
// RestartAPIServer can restart, when restartable), and says so on stderr.
func startBenchPlane(stderr io.Writer, suite string, restartable bool) (b *benchPlane, err error) {
	fmt.Fprintf(stderr, "bench: %s: starting etcd and kube-apiserver from %s=%s\n", suite, testenv.AssetsEnv, os.Getenv(testenv.AssetsEnv))
	plane, err := testenv.Start(testenv.Options{Restartable: restartable, APIServerFlags: map[string]string{
		"max-requests-inflight":          "1000",
		"max-mutating-requests-inflight": "500",
	}})
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	b = &benchPlane{plane: plane}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.stop())
		}
	}()
	if b.tmp, err = os.MkdirTemp("", "watchlist-bench-"); err != nil {
		return b, fmt.Errorf("temp dir: %w", err)
	}
	b.kubeconfig = filepath.Join(b.tmp, "kubeconfig")
	if err := testenv.WriteKubeconfig(plane.Config, b.kubeconfig); err != nil {
		return b, err
	}
	b.writer = rest.CopyConfig(plane.Config)
	b.writer.QPS, b.writer.Burst = -1, 0
	if b.cs, err = kubernetes.NewForConfig(b.writer); err != nil {
		return b, fmt.Errorf("build clientset: %w", err)
	}
	return b, nil
}

// stop stops the control plane, removes the kubeconfig and closes the runs file.
func (b *benchPlane) stop() error {
	err := b.plane.Stop()
	if b.runs != nil {
		if cerr := b.runs.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s: %w", b.runs.Name(), cerr))
		}
	}
	if b.tmp != "" {
		if rerr := os.RemoveAll(b.tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", b.tmp, rerr))
		}
	}
	return err
}

// createOut makes the folders out and those of the profiles, and creates the runs file name in out.
func createOut(out, cpuProfile, memProfile, name string) (*os.File, error) {
	for _, dir := range []string{out, filepath.Dir(cpuProfile), filepath.Dir(memProfile)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	f, err := os.Create(filepath.Join(out, name))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return f, nil
}
