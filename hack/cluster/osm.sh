#!/usr/bin/env bash
# Open Service Mesh v1.2.4 on the real-node cluster, installed from its own Helm chart, so that
# meshkeeper's audit mode can be proved beside OSM itself (test/e2e/osm).
#   osm.sh build      helm and OSM's programs from the Go module proxy, OSM's images as archives
#                     (no cluster needed; cached in bin/, a warm run takes seconds)
#   osm.sh install    build, import the images into containerd, `helm install` the chart, wait
#                     for the control plane (idempotent: an installed release is left as it is)
#   osm.sh helm       helm alone (bin/helm/<version>/helm: the chart tests and make e2e-helm use it)
#   osm.sh uninstall  `helm uninstall` (the chart's cleanup hook runs), then OSM's CRDs, webhook
#                     configurations and namespace: the cluster as it was before install
#
# OSM's chart, CRDs and sources are read from Go's module cache (github.com/openservicemesh/osm
# v1.2.4), never copied into the repository. Its programs are built from that module through a
# throwaway module under bin/.osm-build, like Kubernetes in hack/lib/kube-build.sh. Two images
# are stand-ins, because neither can be had here: test/e2e/standin under Envoy's image name and
# test/e2e/curlstandin for the curl the control plane's init containers run (see
# hack/imagebuild/osm.go and docs/real-cluster.md, "Beside OSM").
set -euo pipefail
SCRIPT_NAME=osm
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
KB_NAME=osm
source "${ROOT}/hack/lib/kube-build.sh"

OSM_VERSION="${OSM_VERSION:-1.2.4}"
HELM_VERSION="${HELM_VERSION:-3.21.4}"
OSM_NAMESPACE=osm-system
OSM_RELEASE=osm
MESH_NAME=osm
OSM_PROGRAMS=(osm-bootstrap osm-controller osm-injector osm-preinstall)
OSM_BUILD="${ROOT}/bin/.osm-build/osm-${OSM_VERSION}"
HELM_BUILD="${ROOT}/bin/.osm-build/helm-${HELM_VERSION}"
HELM="${ROOT}/bin/helm/${HELM_VERSION}/helm"
# helm's own configuration, cache and data stay in bin/ too (no repositories are added).
export HELM_CONFIG_HOME="${ROOT}/bin/.osm-build/helm-home/config" HELM_CACHE_HOME="${ROOT}/bin/.osm-build/helm-home/cache" \
  HELM_DATA_HOME="${ROOT}/bin/.osm-build/helm-home/data"
# What imagebuild reads OSM's images from (hack/imagebuild/osm.go).
export OSM_BIN="${ROOT}/bin/osm/${OSM_VERSION}" KUBE_BIN="${K8S_BIN}"
# The chart's values that differ from its defaults, and why:
#   osm.image.tag         the images are ours, tagged like the release (the chart pins digests)
#   osm.sidecarImage      Envoy's name without the chart's digest: the Envoy stand-in carries it
#   osm.curlImage         the curl stand-in (the chart's default is curlimages/curl, untagged,
#                         which the kubelet would always try to pull)
CHART_VALUES=(
  --set "osm.image.tag=v${OSM_VERSION}"
  --set "osm.sidecarImage=envoyproxy/envoy-distroless:v1.22.2"
  --set "osm.curlImage=localhost/meshkeeper/curl-standin:dev"
)
CONTROL_PLANE=(osm-bootstrap osm-controller osm-injector)

# osm_module: prints the directory of OSM's module in Go's module cache, downloading it once.
osm_module() {
  mkdir -p "${OSM_BUILD}"
  [ -f "${OSM_BUILD}/go.mod" ] || printf 'module meshkeeper.local/osm-build\n\ngo 1.26\n' >"${OSM_BUILD}/go.mod"
  (cd "${OSM_BUILD}" && GOFLAGS=-mod=mod go mod download -json "github.com/openservicemesh/osm@v${OSM_VERSION}") |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

build_helm() {
  [ -x "${HELM}" ] && return 0
  mkdir -p "${HELM_BUILD}" "$(dirname "${HELM}")"
  [ -f "${HELM_BUILD}/go.mod" ] || printf 'module meshkeeper.local/helm-build\n\ngo 1.26\n' >"${HELM_BUILD}/go.mod"
  kb_run "fetching helm v${HELM_VERSION}" \
    env -C "${HELM_BUILD}" GOFLAGS=-mod=mod go get "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"
  kb_run "building helm v${HELM_VERSION} (usually about 3 min on 2 cores when cold)" \
    env -C "${HELM_BUILD}" GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}" -o "${HELM}.tmp" helm.sh/helm/v3/cmd/helm
  mv -f "${HELM}.tmp" "${HELM}"
}

build_osm() {
  local p v=github.com/openservicemesh/osm/pkg/version
  mkdir -p "${OSM_BIN}"
  for p in "${OSM_PROGRAMS[@]}"; do
    [ -x "${OSM_BIN}/${p}" ] && continue
    if [ ! -f "${OSM_BUILD}/.got-${p}" ]; then
      kb_run "fetching ${p} v${OSM_VERSION} dependencies" \
        env -C "${OSM_BUILD}" GOFLAGS=-mod=mod go get "github.com/openservicemesh/osm/cmd/${p}@v${OSM_VERSION}"
      touch "${OSM_BUILD}/.got-${p}"
    fi
    kb_run "building ${p} v${OSM_VERSION} (usually $([ "${p}" = osm-bootstrap ] && echo "about 10 min, it compiles most of OSM's dependencies" || echo "under a minute after osm-bootstrap") on 2 cores when cold)" \
      env -C "${OSM_BUILD}" GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-s -w -X ${v}.Version=v${OSM_VERSION} -X ${v}.GitCommit=v${OSM_VERSION} -X ${v}.BuildDate=1970-01-01" \
      -o "${OSM_BIN}/${p}.tmp" "github.com/openservicemesh/osm/cmd/${p}"
    mv -f "${OSM_BIN}/${p}.tmp" "${OSM_BIN}/${p}"
  done
}

build() {
  local n=4
  step 1 "${n}" "OSM v${OSM_VERSION}'s module (Go module cache)" "helm"
  OSM_MODULE="$(osm_module)"
  [ -d "${OSM_MODULE}/charts/osm" ] || die "no chart in OSM's module at '${OSM_MODULE}'"
  export OSM_MODULE
  log "OSM module: ${OSM_MODULE}"
  step 2 "${n}" "helm v${HELM_VERSION} (bin/helm)" "OSM's programs"
  build_helm
  step 3 "${n}" "OSM's programs ${OSM_PROGRAMS[*]} (bin/osm)" "OSM's images"
  build_osm
  step 4 "${n}" "OSM's images and the stand-ins as archives (bin/images)" "done"
  [ -x "${K8S_BIN}/kubectl" ] || die "no kubectl in ${K8S_BIN}: run 'make cluster-up' first"
  IMAGE_SET=osm "${here}/images.sh" --archives-only
}

# crd_owner NAME: prints who installed a CRD (osm, meshkeeper, other), nothing when absent.
crd_owner() {
  local labels
  labels="$(kubectl get crd "$1" -o go-template='{{range $k, $v := .metadata.labels}}{{$k}}={{$v}} {{end}}' 2>/dev/null)" || return 0
  case " ${labels}" in
    *" app.kubernetes.io/name=openservicemesh.io "*) echo osm ;;
    *" app.kubernetes.io/part-of=meshkeeper "*) echo meshkeeper ;;
    *) echo other ;;
  esac
}

control_plane_ready() {
  local d
  for d in "${CONTROL_PLANE[@]}"; do
    [ "$(kubectl -n "${OSM_NAMESPACE}" get deployment "${d}" -o 'jsonpath={.status.readyReplicas}' 2>/dev/null)" = 1 ] || return 1
  done
  kubectl -n "${OSM_NAMESPACE}" get meshconfig osm-mesh-config >/dev/null 2>&1 &&
    kubectl get mutatingwebhookconfiguration "osm-webhook-${MESH_NAME}" >/dev/null 2>&1
}

install() {
  local n=4 owner chart
  kubectl get --raw /readyz >/dev/null 2>&1 || die "no cluster answers at ${KUBECONFIG}; run 'make cluster-up' first"
  SCRIPT_NAME=osm-build build
  step 1 "${n}" "import OSM's images into containerd" "check the cluster"
  IMAGE_SET=osm "${here}/images.sh" --import-only
  step 2 "${n}" "check that nothing else owns OSM's CRDs" "helm install"
  owner="$(crd_owner meshconfigs.config.openservicemesh.io)"
  case "${owner}" in
    "" | osm) ;;
    *) die "meshconfigs.config.openservicemesh.io is installed and is ${owner}'s, not OSM's: OSM installs its own CRDs (remove the others first, e.g. kubectl delete -k config/crd)" ;;
  esac
  chart="${OSM_MODULE}/charts/osm"
  step 3 "${n}" "helm install ${OSM_RELEASE} (chart ${chart#"$(go env GOMODCACHE)/"}) in ${OSM_NAMESPACE}" "wait for the control plane"
  if "${HELM}" status "${OSM_RELEASE}" -n "${OSM_NAMESPACE}" >/dev/null 2>&1; then
    log "release ${OSM_RELEASE} is already installed: left as it is"
  else
    "${HELM}" install "${OSM_RELEASE}" "${chart}" --namespace "${OSM_NAMESPACE}" --create-namespace \
      "${CHART_VALUES[@]}" --timeout 5m
  fi
  step 4 "${n}" "wait for ${CONTROL_PLANE[*]} Ready, the MeshConfig and the injector's webhook" "done"
  wait_for "OSM's control plane" 300 control_plane_ready
  kubectl -n "${OSM_NAMESPACE}" get pods -o wide >&2
  log "OSM v${OSM_VERSION} installed (release ${OSM_RELEASE}, mesh ${MESH_NAME}, namespace ${OSM_NAMESPACE})"
}

gone() { ! kubectl get "$@" >/dev/null 2>&1; }

uninstall() {
  local n=4 crds
  kubectl get --raw /readyz >/dev/null 2>&1 || die "no cluster answers at ${KUBECONFIG}"
  step 1 "${n}" "helm uninstall ${OSM_RELEASE} (the chart's cleanup hook runs)" "webhooks and secrets"
  if [ -x "${HELM}" ] && "${HELM}" status "${OSM_RELEASE}" -n "${OSM_NAMESPACE}" >/dev/null 2>&1; then
    "${HELM}" uninstall "${OSM_RELEASE}" -n "${OSM_NAMESPACE}" --wait --timeout 3m
  else
    log "no release ${OSM_RELEASE} in ${OSM_NAMESPACE}"
  fi
  step 2 "${n}" "OSM's webhook configurations" "CRDs"
  # What the cleanup hook removes, in case it could not run; OSM labels them this way.
  kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration \
    -l "app.kubernetes.io/name=openservicemesh.io,app.kubernetes.io/instance=${MESH_NAME}" --ignore-not-found >&2
  step 3 "${n}" "OSM's CRDs (and the objects in them)" "namespace"
  crds="$(kubectl get crd -l app.kubernetes.io/name=openservicemesh.io -o name)"
  if [ -n "${crds}" ]; then
    # shellcheck disable=SC2086 # one name a line
    kubectl delete --wait=true ${crds} >&2
  fi
  step 4 "${n}" "namespace ${OSM_NAMESPACE}" "done"
  kubectl delete namespace "${OSM_NAMESPACE}" --ignore-not-found --wait=false >&2
  wait_for "namespace ${OSM_NAMESPACE} gone" 180 gone namespace "${OSM_NAMESPACE}"
  log "OSM uninstalled: no release, CRDs, webhook configurations or namespace of it left"
}

case "${1:-}" in
  build) build ;;
  helm) build_helm ;;
  install) install ;;
  uninstall) uninstall ;;
  *) die "usage: $0 build|helm|install|uninstall" ;;
esac
