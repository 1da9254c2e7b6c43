// Package testenv holds test helpers for the library's tests: a real etcd + kube-apiserver
// (envtest) with fault injection (apiserver restart, etcd compaction, a TCP proxy that cuts
// connections), and fixtures for every kind a reader watches.
//
// The control-plane binaries are not downloaded: build them once with `make envtest-assets`
// and run tests with KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh --print-dir).
//
// envtest runs no controllers. Objects that a controller would finish deleting stay behind:
// a deleted Namespace stays Terminating for good (there is no namespace controller), so tests
// delete the objects inside namespaces, not namespaces, unless they accept a Terminating
// namespace. Delete plays the missing pv-protection controller for PersistentVolumes.
package testenv
