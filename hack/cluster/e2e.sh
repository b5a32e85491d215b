#!/usr/bin/env bash
# make e2e: rebuilds and imports the images, installs the CRDs (make install), then runs the
# end-to-end tests (go test -tags e2e ./test/e2e), which deploy the operator with the overlay in
# E2E_OVERLAY (test/e2e/deploy/injector unless set) and check real pods on the real node.
# Needs the cluster of `make cluster-up`. Extra `go test` flags: E2E_FLAGS (e.g. -run Manager).
set -euo pipefail
SCRIPT_NAME=e2e
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (the tests read pods' network namespaces with nsenter)"
kubectl get --raw /readyz >/dev/null 2>&1 || die "no cluster answers at ${KUBECONFIG}; run 'make cluster-up' first"
export E2E_OVERLAY="${E2E_OVERLAY:-test/e2e/deploy/injector}"

step 1 3 "images (rebuilt from the tree, imported into containerd when changed)" "CRDs"
"${here}/images.sh"
step 2 3 "CRDs (make install)" "the tests"
make -s -C "${ROOT}" install >/dev/null
step 3 3 "go test -tags e2e ./test/e2e (operator from ${E2E_OVERLAY})" "done"
t0=$(date +%s)
cd "${ROOT}"
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
if go test -tags e2e -count=1 -v -timeout 20m ${E2E_FLAGS:-} ./test/e2e; then
  log "e2e passed: tests took $(($(date +%s) - t0))s"
else
  log "e2e FAILED after $(($(date +%s) - t0))s (logs of the cluster: ${LOGS#"${ROOT}/"}/)"
  exit 1
fi
