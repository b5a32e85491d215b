#!/usr/bin/env bash
# Restarts the node of hack/cluster/up.sh as a power loss would leave it: the kubelet and
# containerd stop (SIGTERM, as an orderly shutdown of those two would), then every containerd
# shim and every container process of the cluster is killed with SIGKILL, so no workload gets to
# clean up and nobody records how the containers ended; then containerd and the kubelet start
# again, with the same configuration. The kubelet finds its pods' sandboxes dead and recreates
# them, running the init containers again, as after a reboot.
#
# What a reboot would also lose and this keeps: the host's kernel state (the pods' old network
# namespaces and mounts until containerd and the kubelet clean them up, the host's iptables
# rules) and the files under /run. The control plane (etcd, kube-apiserver, the controller
# manager, the scheduler) and kube-proxy keep running, as they would on another machine.
#
# Processes are found by id only: the container processes from containerd's own task list, the
# shims as the other members of containerd's session (containerd starts them there).
#
#   restart-node.sh [--spare NAMESPACE]... [--down SECONDS]
#     --spare NAMESPACE  the pods of NAMESPACE survive (their shims and containers are not
#                        killed; containerd and the kubelet adopt them again), standing in for
#                        pods on another node, such as the operator watching this node restart
#     --down SECONDS     how long the node stays down between the kill and the start (0)
set -euo pipefail
SCRIPT_NAME=restart-node
# Times in the log count from this restart, also when called from make e2e.
CLUSTER_T0="$(date +%s)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
spare=()
down_s=0
while [ $# -gt 0 ]; do
  case "$1" in
    --spare) [ $# -ge 2 ] || die "--spare needs a namespace"; spare+=("$2"); shift 2 ;;
    --down) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--down needs a number of seconds"; down_s="$2"; shift 2 ;;
    *) die "unknown argument $1 (usage: restart-node.sh [--spare NAMESPACE]... [--down SECONDS])" ;;
  esac
done
running kubelet || die "the kubelet of this checkout is not running (make cluster-up)"
running containerd || die "containerd of this checkout is not running (make cluster-up)"
N=4

step 1 "${N}" "stop the kubelet" "stop containerd"
stop kubelet 30

step 2 "${N}" "stop containerd, then SIGKILL its shims and every container" "start containerd"
containerd_pid="$(cat "${RUN}/containerd.pid")"
ctr_() { ctr --address "${CONTAINERD_SOCK}" -n k8s.io "$@"; }
# Every container (sandboxes included) of the spared namespaces: their tasks, and the shims
# serving their sandboxes, live on.
declare -A spared=()
for ns in "${spare[@]}"; do
  for id in $(ctr_ containers ls -q "labels.\"io.kubernetes.pod.namespace\"==${ns}"); do spared["${id}"]=1; done
done
tasks=()
while read -r id pid status; do
  [ "${status}" = RUNNING ] && [[ "${pid}" =~ ^[0-9]+$ ]] && [ -z "${spared[${id}]:-}" ] && tasks+=("${pid}")
done < <(ctr_ tasks ls 2>/dev/null | tail -n +2)
shims=()
kept=0
for pid in $(ps -e -o pid=,sid= | awk -v sid="${containerd_pid}" '$2 == sid && $1 != sid {print $1}'); do
  # A shim's command line names the sandbox it serves: ... -id <sandbox id> ...
  id="$(tr '\0' '\n' <"/proc/${pid}/cmdline" 2>/dev/null | awk 'prev == "-id" {print; exit} {prev = $0}')"
  if [ -n "${id}" ] && [ -n "${spared[${id}]:-}" ]; then
    kept=$((kept + 1))
    continue
  fi
  shims+=("${pid}")
done
[ "${#spare[@]}" -eq 0 ] || log "sparing the ${kept} pods' shims of namespaces ${spare[*]}"
stop containerd 30
# Shims first: with them gone, nothing observes the containers' end.
[ "${#shims[@]}" -eq 0 ] || kill -KILL "${shims[@]}" 2>/dev/null || true
[ "${#tasks[@]}" -eq 0 ] || kill -KILL "${tasks[@]}" 2>/dev/null || true
gone() {
  local p
  for p in "$@"; do kill -0 "${p}" 2>/dev/null && return 1; done
  return 0
}
wait_for "${#shims[@]} shims and ${#tasks[@]} containers gone" 30 gone "${shims[@]}" "${tasks[@]}"
if [ "${down_s}" -gt 0 ]; then
  log "node down for ${down_s}s"
  sleep "${down_s}"
fi

step 3 "${N}" "start containerd" "start the kubelet"
start_containerd

step 4 "${N}" "start the kubelet" "done"
start_kubelet
await_kubelet 90
log "node restarted in $(elapsed)"
