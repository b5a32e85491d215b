#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster on this machine (make cluster-up):
# Debian packages -> binaries built from the Go module proxy -> container images -> host network
# settings -> containerd (images imported) -> certificates -> etcd -> kube-apiserver ->
# kube-controller-manager + kube-scheduler -> kubelet -> kube-proxy -> node Ready.
# Every process runs in its own session with a pid file under .cluster/run; hack/cluster/down.sh
# stops them and restores the host. Running it on a cluster that is up changes nothing.
set -euo pipefail
SCRIPT_NAME=cluster-up
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet and host networking)"
mkdir -p "${STATE}" "${ETC}" "${LOGS}" "${RUN}"
N=9
# One cluster per machine: its port, containerd and host routes are shared. A cluster started
# from another checkout is named rather than fought with (envtest's apiservers use other ports).
for comp in kube-apiserver kubelet; do
  for pid in $(pgrep -x "${comp}" 2>/dev/null || true); do
    [ "$(cat "${RUN}/${comp}.pid" 2>/dev/null)" = "${pid}" ] && continue
    if [ "${comp}" = kube-apiserver ] && ! tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q -- "--secure-port=${API_PORT} "; then
      continue
    fi
    die "another ${comp} runs on this machine (pid ${pid}, $(readlink "/proc/${pid}/exe" 2>/dev/null || echo '?')); stop that cluster first (make cluster-down in its checkout)"
  done
done

# ---- packages ---------------------------------------------------------------------------------
step 1 "${N}" "Debian packages" "build the binaries"
pkgs=(containerd runc containernetworking-plugins iptables conntrack mmdebstrap ethtool socat
  iproute2 openssl util-linux kmod curl ca-certificates)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "${p}" >/dev/null 2>&1 || missing+=("${p}"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "packages installed"
else
  log "all present"
fi

# ---- binaries and image archives ---------------------------------------------------------------
step 2 "${N}" "Kubernetes v${KUBE_VERSION} and etcd binaries (about 15 min cold, seconds warm)" "image archives"
"${here}/build.sh"
step 3 "${N}" "image archives in bin/images" "host network settings"
"${here}/images.sh" --archives-only

# ---- host networking ---------------------------------------------------------------------------
step 4 "${N}" "host network settings" "containerd"
if [ ! -f "${RUN}/sysctl.orig" ]; then
  # The values down.sh puts back.
  for k in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
    v="$(sysctl -n "${k}" 2>/dev/null || true)"
    [ -n "${v}" ] && echo "${k} ${v}"
  done >"${RUN}/sysctl.orig"
  [ -e /proc/sys/net/bridge ] || echo "module br_netfilter" >>"${RUN}/sysctl.orig"
fi
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null || true
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
  die "br_netfilter is missing: Service traffic between pods on one bridge needs it"
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
# Keep cluster addresses on this host. Pod addresses nobody holds hit a blackhole route (the
# bridge's /24 is more specific). Service addresses kube-proxy did not translate go into an empty
# bridge and die there: a blackhole route would also drop host -> ClusterIP traffic, because
# routing happens before the OUTPUT chain translates it (and this kernel has no dummy links).
ip route replace blackhole "${POD_CIDR}"
ip link show "${SVC_BRIDGE}" >/dev/null 2>&1 || ip link add "${SVC_BRIDGE}" type bridge
ip link set "${SVC_BRIDGE}" up
ip route replace "${SERVICE_CIDR}" dev "${SVC_BRIDGE}" src "${NODE_IP}"
mkdir -p /etc/cni/net.d
# containerd uses the first config in name order; ours sorts first and others are left alone.
put "${CNI_CONF}" <<EOC
{
  "cniVersion": "1.0.0",
  "name": "meshkeeper-cluster",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "${NODE_POD_CIDR}"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOC
log "ip_forward and bridge netfilter on, routes for ${POD_CIDR} and ${SERVICE_CIDR}, CNI bridge config"

# ---- containerd --------------------------------------------------------------------------------
step 5 "${N}" "containerd and the images" "certificates"
restrict_oom=false
# Without CAP_SYS_RESOURCE no process may lower its oom_score_adj (the pause container asks for
# -998 and runc fails with "can't get final child's PID from pipe"): clamp requested scores.
(echo -1 >/proc/self/oom_score_adj) 2>/dev/null || restrict_oom=true
put "${ETC}/containerd.toml" <<EOC
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "${CONTAINERD_SOCK}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/meshkeeper/pause:dev"
  tolerate_missing_hugetlb_controller = true
  restrict_oom_score_adj = ${restrict_oom}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOC
start_containerd
"${here}/images.sh" --import-only

# ---- certificates ------------------------------------------------------------------------------
step 6 "${N}" "certificates and kubeconfigs" "etcd and kube-apiserver"
"${here}/certs.sh"

# ---- control plane -----------------------------------------------------------------------------
step 7 "${N}" "etcd and kube-apiserver" "controller-manager and scheduler"
start etcd "${K8S_BIN}/etcd" --name meshkeeper --data-dir "${STATE}/etcd" \
  --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
  --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
  --initial-cluster meshkeeper=http://127.0.0.1:12380 --listen-metrics-urls http://127.0.0.1:12381 \
  --unsafe-no-fsync --log-level warn
wait_for "etcd" 60 curl -fsS http://127.0.0.1:12381/health
start kube-apiserver "${K8S_BIN}/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:12379 \
  --bind-address=0.0.0.0 --secure-port="${API_PORT}" --advertise-address="${NODE_IP}" \
  --tls-cert-file="${PKI}/apiserver.crt" --tls-private-key-file="${PKI}/apiserver.key" \
  --client-ca-file="${PKI}/ca.crt" \
  --kubelet-client-certificate="${PKI}/apiserver-kubelet-client.crt" --kubelet-client-key="${PKI}/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="${PKI}/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="${PKI}/sa.pub" --service-account-signing-key-file="${PKI}/sa.key" \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false --v=1
wait_for "kube-apiserver /readyz" 180 kubectl get --raw /readyz
# The apiserver's client identity towards kubelets may use their API (logs, exec, port-forward).
kubectl get clusterrolebinding meshkeeper-cluster:apiserver-kubelet >/dev/null 2>&1 ||
  kubectl create clusterrolebinding meshkeeper-cluster:apiserver-kubelet \
    --clusterrole=system:kubelet-api-admin --user=kube-apiserver-kubelet-client >/dev/null

step 8 "${N}" "kube-controller-manager and kube-scheduler" "kubelet and kube-proxy"
start kube-controller-manager "${K8S_BIN}/kube-controller-manager" \
  --kubeconfig="${PKI}/controller-manager.kubeconfig" \
  --authentication-kubeconfig="${PKI}/controller-manager.kubeconfig" \
  --authorization-kubeconfig="${PKI}/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="${PKI}/sa.key" --root-ca-file="${PKI}/ca.crt" \
  --cluster-signing-cert-file="${PKI}/ca.crt" --cluster-signing-key-file="${PKI}/ca.key" \
  --use-service-account-credentials=true --service-cluster-ip-range="${SERVICE_CIDR}" \
  --allocate-node-cidrs=true --cluster-cidr="${POD_CIDR}" --node-cidr-mask-size=24 --v=1
put "${ETC}/kube-scheduler.yaml" <<EOC
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${PKI}/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOC
start kube-scheduler "${K8S_BIN}/kube-scheduler" --config="${ETC}/kube-scheduler.yaml" \
  --authentication-kubeconfig="${PKI}/scheduler.kubeconfig" --authorization-kubeconfig="${PKI}/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --v=1

# ---- node --------------------------------------------------------------------------------------
step 9 "${N}" "kubelet and kube-proxy" "node Ready"
put "${ETC}/kubelet.yaml" <<EOC
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${PKI}/kubelet-serving.crt
tlsPrivateKeyFile: ${PKI}/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
cgroupDriver: cgroupfs
# kubelet >= 1.35 refuses cgroup v1 hosts unless told to accept them.
failCgroupV1: false
failSwapOn: false
# Images exist only locally (nothing can be pulled): never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
EOC
start_kubelet
wait_for "node ${NODE_NAME} registered" 120 kubectl get node "${NODE_NAME}"
wait_for "node pod range assigned" 60 bash -c "[ -n \"\$(kubectl get node '${NODE_NAME}' -o jsonpath='{.spec.podCIDR}')\" ]"
got="$(kubectl get node "${NODE_NAME}" -o jsonpath='{.spec.podCIDR}')"
[ "${got}" = "${NODE_POD_CIDR}" ] || die "node pod range ${got} differs from the CNI range ${NODE_POD_CIDR}"
put "${ETC}/kube-proxy.yaml" <<EOC
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${PKI}/kube-proxy.kubeconfig
hostnameOverride: ${NODE_NAME}
mode: iptables
clusterCIDR: ${POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["primary"]
conntrack:
  maxPerCore: 0
EOC
start kube-proxy "${K8S_BIN}/kube-proxy" --config="${ETC}/kube-proxy.yaml" --v=1
wait_for "kube-proxy" 60 curl -fsS http://127.0.0.1:10256/healthz
wait_for "node Ready" 180 kubectl wait --for=condition=Ready "node/${NODE_NAME}" --timeout=5s
wait_for "default ServiceAccount" 60 kubectl get serviceaccount default -n default

log "cluster up in $(elapsed); use it with:"
echo "export KUBECONFIG=${KUBECONFIG} PATH=${K8S_BIN}:\$PATH"
