package testenv

import (
	"fmt"
	"os"
	"path/filepath"
)

const (
	// AssetsEnv is the environment variable naming the folder with the kube-apiserver and
	// etcd binaries.
	AssetsEnv = "KUBEBUILDER_ASSETS"

	apiServerBinary = "kube-apiserver"
	etcdBinary      = "etcd"
)

// AssetsError reports that the control-plane binaries cannot be used. Its message says how
// to build them.
type AssetsError struct {
	// Dir is the value of KUBEBUILDER_ASSETS ("" when unset).
	Dir string
	// Problem says what is wrong, e.g. "is not set" or "has no etcd".
	Problem string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *AssetsError) Error() string {
	where := AssetsEnv
	if e.Dir != "" {
		where = fmt.Sprintf("%s=%s", AssetsEnv, e.Dir)
	}
	msg := fmt.Sprintf("testenv: control-plane binaries unavailable: %s %s; "+
		"build them with `make envtest-assets` and run the tests with %s=$(hack/envtest-assets.sh --print-dir)",
		where, e.Problem, AssetsEnv)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *AssetsError) Unwrap() error { return e.Err }

// assetsDir returns the folder named by KUBEBUILDER_ASSETS after checking that it holds
// executable kube-apiserver and etcd binaries.
func assetsDir() (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", &AssetsError{Problem: "is not set"}
	}
	for _, bin := range []string{apiServerBinary, etcdBinary} {
		info, err := os.Stat(filepath.Join(dir, bin))
		if err != nil {
			return "", &AssetsError{Dir: dir, Problem: "has no " + bin, Err: err}
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return "", &AssetsError{Dir: dir, Problem: "has a non-executable " + bin}
		}
	}
	return dir, nil
}
