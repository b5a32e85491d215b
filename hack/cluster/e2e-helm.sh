#!/usr/bin/env bash
# make e2e-helm: the Helm chart on the real node. Rebuilds and imports meshkeeper's images,
# removes what a kustomize deployment left in meshkeeper-system, installs meshkeeper's CRDs where
# none are (make install), then runs test/e2e/helm: `helm install` in audit mode, the manager
# Ready, `helm uninstall`. The release is uninstalled and its namespace removed, pass or fail
# (E2E_KEEP=1 keeps them after a failure). Needs the cluster of `make cluster-up`.
set -euo pipefail
SCRIPT_NAME=e2e-helm
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (like the other end-to-end tests)"
kubectl get --raw /readyz >/dev/null 2>&1 || die "no cluster answers at ${KUBECONFIG}; run 'make cluster-up' first"
HELM_VERSION="${HELM_VERSION:-3.21.4}"
export HELM="${ROOT}/bin/helm/${HELM_VERSION}/helm"
ns=meshkeeper-system
n=5

cleanup() {
  local rc=$?
  if [ "${rc}" != 0 ] && [ -n "${E2E_KEEP:-}" ]; then
    log "E2E_KEEP is set: the release is left installed (${HELM} uninstall meshkeeper -n ${ns})"
    return
  fi
  step 5 "${n}" "remove the release (if the test left it) and namespace ${ns}" "done"
  if "${HELM}" status meshkeeper -n "${ns}" >/dev/null 2>&1; then
    "${HELM}" uninstall meshkeeper -n "${ns}" --wait --timeout 2m >&2 || rc=1
  fi
  kubectl delete namespace "${ns}" --ignore-not-found --wait=false >&2 || rc=1
  wait_for "namespace ${ns} gone" 180 gone namespace "${ns}" || rc=1
  exit "${rc}"
}
gone() { ! kubectl get "$@" >/dev/null 2>&1; }

step 1 "${n}" "helm v${HELM_VERSION} (bin/helm, built once) and meshkeeper's images" "make room"
"${here}/osm.sh" helm
"${here}/images.sh"

step 2 "${n}" "make room: a kustomize deployment of meshkeeper (make e2e, make deploy) and its namespace" "CRDs"
if kubectl get namespace "${ns}" >/dev/null 2>&1; then
  log "removing what test/e2e/deploy/injector (a superset of every overlay) deploys, and namespace ${ns}"
  kubectl delete --ignore-not-found -k "${ROOT}/test/e2e/deploy/injector" >&2
  kubectl delete namespace "${ns}" --ignore-not-found --wait=false >&2
  wait_for "namespace ${ns} gone" 180 gone namespace "${ns}"
else
  log "nothing of meshkeeper's in the way"
fi

step 3 "${n}" "CRDs (make install: meshkeeper's where none are installed)" "the test"
make -s -C "${ROOT}" install >/dev/null

trap cleanup EXIT
step 4 "${n}" "go test -tags e2e ./test/e2e/helm (helm install, audit mode)" "clean up"
t0=$(date +%s)
cd "${ROOT}"
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
if go test -tags e2e -count=1 -v -timeout 10m ${E2E_FLAGS:-} ./test/e2e/helm; then
  log "e2e-helm passed: tests took $(($(date +%s) - t0))s"
else
  log "e2e-helm FAILED after $(($(date +%s) - t0))s (logs of the cluster: ${LOGS#"${ROOT}/"}/)"
  exit 1
fi
