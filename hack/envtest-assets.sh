#!/usr/bin/env bash
# envtest-assets.sh builds kube-apiserver and etcd for envtest from the Go module proxy into a cache
# folder outside the checkout, keyed by version, and prints nothing but progress on stderr.
#
#   hack/envtest-assets.sh              build what is missing (about 5 min cold on 2 cores, 0.1 s warm)
#   hack/envtest-assets.sh --print-dir  print the folder for KUBEBUILDER_ASSETS and exit
#
# A binary is moved into place only when its build succeeded, and skipped when its --version already
# matches, so an interrupted build costs nothing but time. See ../shared/envtest.md for the recipe.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
CACHE_ROOT=${WATCHLIST_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/watchlist/envtest}
DIR="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$DIR"
  exit 0
fi

log() { printf 'envtest-assets: %s\n' "$*" >&2; }

# with_progress NAME CMD...: runs CMD, saying every 30 s that it still runs.
with_progress() {
  local name=$1
  shift
  "$(dirname "$0")/with-progress.sh" "building $name" "$@"
}

have() { # have BINARY WANT: the binary exists and its --version output contains WANT
  [ -x "$DIR/$1" ] && "$DIR/$1" --version 2>/dev/null | grep -qF -- "$2"
}

build_apiserver() {
  local work gomod mods
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    go mod init envtest-assets/kube-apiserver >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local folders;
    # outside its repository each must be replaced with the published v0.X.Y of the same release.
    gomod=$(go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@v$K8S_VERSION")
    mods=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
    tags=""
    for m in $mods; do
      if go mod download "$m@v0.${K8S_VERSION#1.}" >/dev/null 2>&1; then
        go mod edit -replace="$m=$m@v0.${K8S_VERSION#1.}"
      else
        # Not served (k8s.io/legacy-cloud-providers before 1.31): an empty module stands in; the
        # providerless build tag leaves every package that imports it out.
        mkdir -p "stub/$m"
        printf 'module %s\n' "$m" >"stub/$m/go.mod"
        go mod edit -replace="$m=./stub/$m"
        tags=providerless
      fi
    done
    go get -tags "$tags" "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" >/dev/null 2>&1 ||
      go get -tags "$tags" "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION"
    CGO_ENABLED=0 go build -tags "$tags" -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
      -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv -f "$work/kube-apiserver" "$DIR/kube-apiserver"
}

build_etcd() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    go mod init envtest-assets/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1 ||
      go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3
  )
  mv -f "$work/etcd" "$DIR/etcd"
}

mkdir -p "$DIR"
export -f build_apiserver build_etcd
export DIR K8S_VERSION ETCD_VERSION
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
total=$SECONDS
if have kube-apiserver "v$K8S_VERSION"; then
  log "kube-apiserver v$K8S_VERSION present in $DIR"
else
  log "building kube-apiserver v$K8S_VERSION from the Go module proxy into $DIR"
  log "(once per machine: about 4-5 min and 2.4 GB of memory on 2 cores; later runs skip this)"
  with_progress kube-apiserver bash -c build_apiserver
  log "kube-apiserver built in $((SECONDS - total)) s"
fi
step=$SECONDS
if have etcd "$ETCD_VERSION"; then
  log "etcd v$ETCD_VERSION present in $DIR"
elif other=$(ls -d "$CACHE_ROOT"/k8s-*-etcd-"$ETCD_VERSION" 2>/dev/null | head -1) && [ -x "$other/etcd" ]; then
  cp "$other/etcd" "$DIR/etcd.tmp" && mv -f "$DIR/etcd.tmp" "$DIR/etcd"
  log "etcd v$ETCD_VERSION copied from $other"
else
  log "building etcd v$ETCD_VERSION from the Go module proxy (about 1 min)"
  with_progress etcd bash -c build_etcd
  log "etcd built in $((SECONDS - step)) s"
fi
