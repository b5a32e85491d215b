# Settings and helpers shared by the hack/cluster scripts. Sourced, not run.
#
# Everything the cluster writes lives in .cluster/ at the repository root (git-ignored):
# certificates and kubeconfigs (pki/), component configs (etc/), logs (log/), pid files and the
# host settings to restore (run/), etcd's data (etcd/). Binaries are in bin/k8s/<version>/ and
# image archives in bin/images/, both kept between runs.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KUBE_VERSION="${KUBE_VERSION:-1.36.3}"
STATE="${CLUSTER_STATE:-${ROOT}/.cluster}"
K8S_BIN="${ROOT}/bin/k8s/${KUBE_VERSION}"
IMAGES_DIR="${ROOT}/bin/images"
PKI="${STATE}/pki"
ETC="${STATE}/etc"
LOGS="${STATE}/log"
RUN="${STATE}/run"
POD_CIDR="${POD_CIDR:-10.244.0.0/16}"
NODE_POD_CIDR="${NODE_POD_CIDR:-10.244.0.0/24}"
SERVICE_CIDR="${SERVICE_CIDR:-10.96.0.0/16}"
FIRST_SERVICE_IP="${FIRST_SERVICE_IP:-10.96.0.1}"
NODE_NAME="${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}"
# The node's address: pods reach the apiserver (the `kubernetes` Service) through it.
NODE_IP="${NODE_IP:-$(ip -4 -o addr show scope global 2>/dev/null | awk '{split($4,a,"/"); print a[1]; exit}')}"
NODE_IP="${NODE_IP:-127.0.0.1}"
API_PORT="${API_PORT:-6443}"
CNI_CONF=/etc/cni/net.d/10-meshkeeper-cluster.conflist
SVC_BRIDGE=mk-svc0
CONTAINERD_SOCK=/run/containerd/containerd.sock
export KUBECONFIG="${PKI}/admin.kubeconfig"
export PATH="${K8S_BIN}:${PATH}"
export GOTOOLCHAIN=local

CLUSTER_T0="${CLUSTER_T0:-$(date +%s)}"
export CLUSTER_T0

elapsed() { echo "$(($(date +%s) - CLUSTER_T0))s"; }
log() { printf '[%s +%s] %s\n' "${SCRIPT_NAME:-cluster}" "$(elapsed)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# step N TOTAL WHAT NEXT: announces a step of a script, with what comes after it.
step() { log "== step $1/$2: $3${4:+ (then: $4)}"; }

# start NAME CMD...: runs CMD in its own session, output to $LOGS/NAME.log, pid to $RUN/NAME.pid.
start() {
  local name="$1"
  shift
  mkdir -p "${LOGS}" "${RUN}"
  if running "${name}"; then
    log "${name} already running (pid $(cat "${RUN}/${name}.pid"))"
    return 0
  fi
  setsid "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null &
  echo $! >"${RUN}/${name}.pid"
  log "started ${name} (pid $!, log ${LOGS#"${ROOT}/"}/${name}.log)"
}

running() { [ -f "${RUN}/$1.pid" ] && kill -0 "$(cat "${RUN}/$1.pid")" 2>/dev/null; }

# stop NAME [TIMEOUT_S]: SIGTERM to the process of $RUN/NAME.pid, SIGKILL after TIMEOUT_S.
stop() {
  local name="$1" timeout="${2:-20}" pid i
  [ -f "${RUN}/${name}.pid" ] || return 0
  pid="$(cat "${RUN}/${name}.pid")"
  if kill -0 "${pid}" 2>/dev/null; then
    kill -TERM "${pid}" 2>/dev/null
    for ((i = 0; i < timeout * 10; i++)); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "${pid}" 2>/dev/null; then
      log "${name} ignored SIGTERM for ${timeout}s: SIGKILL"
      kill -KILL "${pid}" 2>/dev/null
      sleep 0.5
    fi
    log "stopped ${name} (pid ${pid})"
  fi
  rm -f "${RUN}/${name}.pid"
}

# start_containerd: containerd with the configuration up.sh wrote, until it answers. up.sh and
# restart-node.sh start it the same way.
start_containerd() {
  start containerd containerd --config "${ETC}/containerd.toml"
  wait_for "containerd" 30 ctr --address "${CONTAINERD_SOCK}" version
}

# start_kubelet: the kubelet with the configuration and credentials up.sh wrote.
start_kubelet() {
  start kubelet "${K8S_BIN}/kubelet" --config="${ETC}/kubelet.yaml" --kubeconfig="${PKI}/kubelet.kubeconfig" \
    --hostname-override="${NODE_NAME}" --node-ip="${NODE_IP}" --v=1
}

# await_kubelet TIMEOUT_S: waits for the kubelet's /healthz and starts the kubelet again when it
# exited, a second later, as systemd's Restart= does on a real node: a kubelet started while
# containerd's CRI plugin still recovers its containers (after a restart with many of them)
# exits at once with "server is not initialized yet".
await_kubelet() {
  local timeout="$1" t0 starts=1
  t0=$(date +%s)
  until curl -fsS http://127.0.0.1:10248/healthz >/dev/null 2>&1; do
    if (($(date +%s) - t0 > timeout)); then
      die "timed out after ${timeout}s waiting for kubelet /healthz (${starts} starts)"
    fi
    if ! running kubelet; then
      log "kubelet exited: $(grep -E '^E[0-9]' "${LOGS}/kubelet.log" | tail -1 | cut -c1-240)"
      sleep 1
      rm -f "${RUN}/kubelet.pid"
      start_kubelet
      starts=$((starts + 1))
    fi
    sleep 0.5
  done
  log "kubelet /healthz: ready after $(($(date +%s) - t0))s (${starts} starts)"
}

# wait_for WHAT TIMEOUT_S CMD...: polls CMD twice a second until it succeeds.
wait_for() {
  local what="$1" timeout="$2" t0
  shift 2
  t0=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) - t0 > timeout)); then
      die "timed out after ${timeout}s waiting for ${what}"
    fi
    sleep 0.5
  done
  log "${what}: ready after $(($(date +%s) - t0))s"
}

# put FILE: writes stdin to FILE only when the content differs (kube-proxy exits when its
# config file is touched, even with the same content).
put() {
  local tmp
  tmp="$(mktemp)"
  cat >"${tmp}"
  if cmp -s "${tmp}" "$1"; then
    rm -f "${tmp}"
  else
    mv "${tmp}" "$1"
    chmod 0644 "$1"
  fi
}
