#!/usr/bin/env bash
# Stops the cluster hack/cluster/up.sh started (make cluster-down) and restores the host: pods
# are deleted through the kubelet (so CNI releases their networks), every process is stopped by
# its pid file, leftover containers and network namespaces are removed, the iptables chains of
# kube-proxy, the kubelet and the CNI plugins are deleted, mounts are released, routes and
# sysctls are put back. Binaries, image archives, certificates and containerd's images are kept
# for a warm start; PURGE=1 removes the cluster state and containerd's store too.
set -uo pipefail
SCRIPT_NAME=cluster-down
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
N=5

ctr_() { ctr --address "${CONTAINERD_SOCK}" -n k8s.io "$@"; }

step 1 "${N}" "delete pods through the kubelet" "stop the processes"
if running kubelet && running kube-apiserver && kubectl get --raw /readyz >/dev/null 2>&1; then
  # Nothing may recreate or reschedule pods while they go.
  stop kube-controller-manager
  stop kube-scheduler
  kubectl delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1
  for ((i = 0; i < 60; i++)); do
    if [ -z "$(kubectl get pods -A -o name 2>/dev/null)" ] && [ -z "$(ctr_ tasks ls -q 2>/dev/null)" ]; then break; fi
    sleep 1
  done
  log "pods deleted ($(ctr_ tasks ls -q 2>/dev/null | wc -l) containers still running)"
else
  log "no running API server and kubelet: nothing to delete"
fi

step 2 "${N}" "stop the processes" "remove leftover containers"
for c in kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "${c}"; done

step 3 "${N}" "remove leftover containers, then stop containerd" "network state"
if running containerd; then
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "${t}" >/dev/null 2>&1; done
  sleep 1
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "${t}" >/dev/null 2>&1; done
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers rm "${c}" >/dev/null 2>&1; done
  if [ -n "${PURGE:-}" ]; then
    for i in $(ctr_ images ls -q 2>/dev/null); do ctr_ images rm "${i}" >/dev/null 2>&1; done
  fi
fi
stop containerd 30

step 4 "${N}" "network state: namespaces, bridges, routes, iptables chains" "mounts and sysctls"
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "${ns}" 2>/dev/null; done
rm -rf /var/lib/cni/networks/meshkeeper-cluster /var/lib/cni/results/meshkeeper-cluster-* 2>/dev/null
ip link delete cni0 2>/dev/null
ip link delete "${SVC_BRIDGE}" 2>/dev/null
ip route delete blackhole "${POD_CIDR}" 2>/dev/null
[ -x "${K8S_BIN}/kube-proxy" ] && "${K8S_BIN}/kube-proxy" --cleanup >/dev/null 2>&1
# kube-proxy --cleanup leaves the kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...)
# and the CNI plugins' ones: delete every KUBE-* and CNI-* chain and the rules jumping to them,
# and nothing else.
for ipt in iptables ip6tables; do
  command -v "${ipt}" >/dev/null 2>&1 || continue
  for t in nat filter mangle; do
    "${ipt}" -t "${t}" -S 2>/dev/null | grep -E '^-A .* -j (KUBE|CNI)-' | sed 's/^-A/-D/' |
      while read -r rule; do eval "${ipt} -t ${t} ${rule}" 2>/dev/null; done
    chains="$("${ipt}" -t "${t}" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/{print $2}')"
    for ch in ${chains}; do "${ipt}" -t "${t}" -F "${ch}" 2>/dev/null; done
    for ch in ${chains}; do "${ipt}" -t "${t}" -X "${ch}" 2>/dev/null; done
  done
done
rm -f "${CNI_CONF}"

step 5 "${N}" "mounts, kubelet and etcd data, sysctls" "done"
for m in $(awk '$2 ~ "^/var/lib/kubelet" || $2 ~ "^/run/containerd/io.containerd" {print $2}' /proc/mounts | sort -r); do
  umount -l "${m}" 2>/dev/null
done
rm -rf /var/lib/kubelet "${STATE}/etcd"
if [ -f "${RUN}/sysctl.orig" ]; then
  while read -r k v; do
    if [ "${k}" = module ]; then modprobe -r "${v}" 2>/dev/null; else sysctl -qw "${k}=${v}" 2>/dev/null; fi
  done <"${RUN}/sysctl.orig"
  rm -f "${RUN}/sysctl.orig"
fi
if [ -n "${PURGE:-}" ]; then
  for m in $(awk '$2 ~ "^/var/lib/containerd" || $2 ~ "^/run/containerd" {print $2}' /proc/mounts | sort -r); do umount -l "${m}" 2>/dev/null; done
  rm -rf "${STATE}" /var/lib/containerd /run/containerd
fi
left=""
for f in "${RUN}"/*.pid; do
  [ -f "${f}" ] && kill -0 "$(cat "${f}")" 2>/dev/null && left="${left} $(basename "${f}" .pid)"
done
[ -z "${left}" ] || die "still running:${left}"
log "cluster down in $(elapsed); nothing left running"
