#!/usr/bin/env bash
# make e2e-osm: meshkeeper's audit mode beside Open Service Mesh v1.2.4 itself. Rebuilds and
# imports meshkeeper's images, installs OSM from its own chart (hack/cluster/osm.sh), runs the
# tests of test/e2e/osm (which deploy meshkeeper with test/e2e/deploy/audit), then removes
# meshkeeper and uninstalls OSM, leaving the cluster as it was. E2E_KEEP=1 keeps everything
# after a failure for a look around; E2E_FLAGS passes flags to `go test`.
# Needs the cluster of `make cluster-up`.
set -euo pipefail
SCRIPT_NAME=e2e-osm
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (the tests read pods' network namespaces with nsenter)"
kubectl get --raw /readyz >/dev/null 2>&1 || die "no cluster answers at ${KUBECONFIG}; run 'make cluster-up' first"
overlay=test/e2e/deploy/audit
n=6

# cleanup: meshkeeper's test deployment, then OSM; kept after a failure when E2E_KEEP is set.
cleanup() {
  local rc=$?
  if [ "${rc}" != 0 ] && [ -n "${E2E_KEEP:-}" ]; then
    log "E2E_KEEP is set: meshkeeper and OSM are left installed (hack/cluster/osm.sh uninstall removes OSM)"
    return
  fi
  step 5 "${n}" "remove meshkeeper (${overlay})" "uninstall OSM"
  kubectl delete --ignore-not-found -k "${ROOT}/${overlay}" >&2 || rc=1
  step 6 "${n}" "uninstall OSM" "done"
  "${here}/osm.sh" uninstall || rc=1
  exit "${rc}"
}

step 1 "${n}" "meshkeeper's images (rebuilt from the tree, imported when changed)" "make room for OSM"
"${here}/images.sh"

step 2 "${n}" "make room for OSM: what 'make e2e' leaves that would stand in its way" "install OSM"
# OSM installs its own CRDs and its own MeshConfig. meshkeeper's CRDs (make install), the
# operator in inject mode and the sample MeshConfig it tests with would be in the way; they are
# only removed when they are meshkeeper's.
owner="$(kubectl get crd meshconfigs.config.openservicemesh.io -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/part-of}' 2>/dev/null || true)"
if [ "${owner}" = meshkeeper ]; then
  log "meshkeeper's own CRDs are installed: removing the operator, the CRDs (and the MeshConfigs in them) and namespace osm-system"
  kubectl delete --ignore-not-found -k "${ROOT}/test/e2e/deploy/injector" >&2
  kubectl delete --ignore-not-found -k "${ROOT}/config/crd" >&2
  kubectl delete --ignore-not-found namespace osm-system >&2
else
  log "nothing of meshkeeper's in the way"
fi

trap cleanup EXIT
step 3 "${n}" "install OSM (hack/cluster/osm.sh install)" "the tests"
t0=$(date +%s)
"${here}/osm.sh" install
log "OSM installed in $(($(date +%s) - t0))s"

step 4 "${n}" "go test -tags e2e ./test/e2e/osm (meshkeeper from ${overlay})" "remove meshkeeper"
t0=$(date +%s)
cd "${ROOT}"
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
if go test -tags e2e -count=1 -v -timeout 20m ${E2E_FLAGS:-} ./test/e2e/osm; then
  log "e2e-osm passed: tests took $(($(date +%s) - t0))s"
else
  log "e2e-osm FAILED after $(($(date +%s) - t0))s (logs of the cluster: ${LOGS#"${ROOT}/"}/)"
  exit 1
fi
