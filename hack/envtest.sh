#!/usr/bin/env bash
# Builds the control-plane binaries envtest needs (kube-apiserver, etcd) from the Go module proxy
# into bin/k8s/<version>/, so tests never download prebuilt binaries from anywhere else.
# Idempotent: a second run with the binaries present returns at once.
# Prints the assets directory on its last line (use it as KUBEBUILDER_ASSETS).
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${root}/bin/k8s/${KUBE_VERSION}"
work="${root}/bin/.envtest-build"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

log() { printf 'envtest: %s\n' "$*" >&2; }

# Version stamps, so the servers and kubectl report a real version.
version_pkg=k8s.io/component-base/version
ldflags="-s -w -X ${version_pkg}.gitVersion=v${KUBE_VERSION} -X ${version_pkg}.gitMajor=1 -X ${version_pkg}.gitMinor=$(echo "${KUBE_VERSION}" | cut -d. -f2) -X ${version_pkg}.gitTreeState=clean -X ${version_pkg}.buildDate=1970-01-01T00:00:00Z"

build_apiserver() {
  local dir="${work}/kube-apiserver-${KUBE_VERSION}"
  mkdir -p "${dir}"
  log "resolving k8s.io/kubernetes v${KUBE_VERSION} from the module proxy"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  local staging="0.${KUBE_VERSION#1.}"
  {
    echo "module meshkeeper.local/envtest-apiserver"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${KUBE_VERSION}"
    echo
    echo "replace ("
    # Every staging module of the release, pinned to its published version.
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v'"${staging}"'#p' "${gomod}"
    echo ")"
  } >"${dir}/go.mod"
  (
    cd "${dir}"
    log "fetching kube-apiserver dependencies"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v${KUBE_VERSION}" >&2
    log "building kube-apiserver v${KUBE_VERSION} (a few minutes when cold)"
    go build -trimpath -ldflags "${ldflags}" -o "${assets}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "${assets}/kube-apiserver.tmp" "${assets}/kube-apiserver"
}

build_etcd() {
  local dir="${work}/etcd-${ETCD_VERSION}"
  mkdir -p "${dir}"
  printf 'module meshkeeper.local/envtest-etcd\n\ngo 1.26\n' >"${dir}/go.mod"
  (
    cd "${dir}"
    log "fetching etcd v${ETCD_VERSION} dependencies"
    go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
    log "building etcd v${ETCD_VERSION}"
    go build -trimpath -ldflags "-s -w" -o "${assets}/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "${assets}/etcd.tmp" "${assets}/etcd"
}

mkdir -p "${assets}"
[ -x "${assets}/kube-apiserver" ] || build_apiserver
[ -x "${assets}/etcd" ] || build_etcd
# Tests and the demo shell out to kubectl the way users do: link the machine's one, or build the
# release's own from the same module when the machine has none.
if [ ! -e "${assets}/kubectl" ]; then
  if command -v kubectl >/dev/null 2>&1; then
    ln -s "$(command -v kubectl)" "${assets}/kubectl"
  else
    [ -f "${work}/kube-apiserver-${KUBE_VERSION}/go.mod" ] || build_apiserver
    log "building kubectl v${KUBE_VERSION}"
    (cd "${work}/kube-apiserver-${KUBE_VERSION}" && go build -trimpath -ldflags "${ldflags}" -o "${assets}/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl)
    mv "${assets}/kubectl.tmp" "${assets}/kubectl"
  fi
fi
log "ready: ${assets}"
echo "${assets}"
