# make test   builds the control plane for tests if missing, then go vet and go test -race.
# make demo   runs examples/stream: against KUBECONFIG / KUBECONFIG_FLAG when set, else a local control plane.
# make bench  runs the benchmarks against client-go informers.
# make test-compat  runs the end-to-end and fault tests against kube-apiserver 1.29 to 1.37 (long).
SHELL := /usr/bin/env bash
GO ?= go
export GOTOOLCHAIN ?= local
ASSETS := $(shell hack/envtest-assets.sh --print-dir)
PROGRESS := hack/with-progress.sh
# Extra flags for the demo, e.g. make demo ARGS="-types pod,rbac -duration 30s".
ARGS ?=

.PHONY: all test vet demo bench envtest-assets test-compat

all: test

## envtest-assets: build kube-apiserver and etcd from the Go module proxy (first time ~5 min, then 0.1 s).
envtest-assets:
	@hack/envtest-assets.sh

vet:
	@echo "go vet ./... (the first run compiles client-go: 1-2 min)"
	@$(PROGRESS) "compiling for go vet" $(GO) vet ./...

## test: everything, against a real kube-apiserver v1.37.2 + etcd v3.7.3, with the race detector.
test: envtest-assets vet
	@echo "go test -race ./... against $(ASSETS) (first compile ~3 min; the fault suites run several minutes)"
	@KUBEBUILDER_ASSETS=$(ASSETS) $(PROGRESS) "running go test -race" $(GO) test -race -count=1 -timeout 45m ./...

## test-compat: the end-to-end and fault tests against every kube-apiserver minor from 1.29 to 1.37,
## each built from the Go module proxy (about 5 min per version the first time); one line per version.
test-compat:
	@hack/test-compat.sh

## demo: the stream of entries, on your cluster (KUBECONFIG) or on a local control plane.
demo:
	@if [ -z "$${KUBECONFIG:-}" ] && [[ "$(ARGS)" != *-kubeconfig* ]]; then hack/envtest-assets.sh; fi
	@echo "building examples/stream (first time 1-2 min)"
	@$(PROGRESS) "compiling examples/stream" $(GO) build -o bin/stream ./examples/stream
	@KUBEBUILDER_ASSETS=$(ASSETS) bin/stream $(ARGS)

## bench: reader vs client-go informer, see BENCHMARKS.md.
bench: envtest-assets
	@$(PROGRESS) "compiling the benchmark" $(GO) build -o bin/bench ./internal/bench/cmd/bench
	@KUBEBUILDER_ASSETS=$(ASSETS) bin/bench $(ARGS)
