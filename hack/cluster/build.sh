#!/usr/bin/env bash
# Builds every binary the real-node cluster runs from the Go module proxy into bin/k8s/<version>/
# (shared with envtest, which uses kube-apiserver and etcd from the same place): etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet and kubectl.
# Idempotent: binaries already there are kept, so a warm run takes a second.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KB_NAME=cluster-build
source "${ROOT}/hack/lib/kube-build.sh"

out="${ROOT}/bin/k8s/${KUBE_VERSION}"
t0=$(date +%s)
# One at a time on a shared 2-core machine; apiserver first, it is the one envtest needs too.
steps=(etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl)
n=0
for s in "${steps[@]}"; do
  n=$((n + 1))
  if [ -x "${out}/${s}" ] && [ ! -L "${out}/${s}" ]; then continue; fi
  kb_log "[${n}/${#steps[@]}] ${s} (elapsed $(($(date +%s) - t0))s; then: ${steps[*]:n})"
  if [ "${s}" = etcd ]; then kb_etcd "${out}"; else kb_kube "${s}" "${out}"; fi
done
kb_log "binaries ready in ${out} ($(($(date +%s) - t0))s)"
