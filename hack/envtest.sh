#!/usr/bin/env bash
# Builds the control-plane binaries envtest needs (kube-apiserver, etcd) from the Go module proxy
# into bin/k8s/<version>/, so tests never download prebuilt binaries from anywhere else.
# The real-node cluster (hack/cluster/build.sh) builds the rest of the release into the same
# place with the same helpers (hack/lib/kube-build.sh).
# Idempotent: a second run with the binaries present returns at once.
# Prints the assets directory on its last line (use it as KUBEBUILDER_ASSETS).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KB_NAME=envtest
source "${ROOT}/hack/lib/kube-build.sh"
assets="${ROOT}/bin/k8s/${KUBE_VERSION}"

mkdir -p "${assets}"
kb_kube kube-apiserver "${assets}"
kb_etcd "${assets}"
# Tests and the demo shell out to kubectl the way users do: link the machine's one, or build the
# release's own when the machine has none.
if [ ! -e "${assets}/kubectl" ]; then
  if command -v kubectl >/dev/null 2>&1; then
    ln -s "$(command -v kubectl)" "${assets}/kubectl"
  else
    kb_kube kubectl "${assets}"
  fi
fi
kb_log "ready: ${assets}"
echo "${assets}"
