#!/usr/bin/env bash
# make demo CLUSTER=real: the demo on the real one-node cluster of hack/cluster (kubelet,
# containerd, runc on this machine), for users who will wait for Kubernetes to build (about
# 15 minutes cold on 2 cores, under a minute warm). It shows, on real pods and real TCP
# connections:
#   a pod in a meshed namespace injected by meshkeeper (inject mode), the rules meshkeeper-init
#   wrote read from the pod's own network namespace, a connection redirected through the sidecar
#   and one that bypasses it because its port is excluded, then drift after a MeshConfig change
#   and the repair by a rollout restart.
# The sidecar is the project's stand-in (test/e2e/standin): Envoy has no binary that can be had
# here. It proxies to the original destination and records every connection it saw.
# The cluster is started when none answers and left running afterwards (make cluster-down).
set -euo pipefail
SCRIPT_NAME=demo-real
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/cluster/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root (the cluster and nsenter need it)"
cd "${ROOT}"
N=7
MESH_NS=demo-mesh
BACKEND_NS=demo-backend
OVERLAY=test/e2e/deploy/injector
DEMO_RANGE=192.0.2.0/24
standin_admin=http://127.0.0.1:15000/connections

say() { printf '\n    %s\n' "$*"; }
show() {
  printf '    $ %s\n' "$*"
  "$@" 2>&1 | sed 's/^/      /'
}
condition() { # condition POD TYPE FIELD: a field of one of the pod's conditions
  kubectl get pod -n "${MESH_NS}" "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].$3}"
}
# client_pod: the client Deployment's pod that is not being deleted.
client_pod() {
  kubectl get pods -n "${MESH_NS}" -l app=client \
    -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' | awk 'NF == 1 {print $1; exit}'
}
client_running() { [ -n "$(client_pod)" ]; }
# injector_answers: the API server injects a pod of the meshed namespace (a server-side dry run,
# which runs the webhooks and stores nothing). Ready manager pods alone do not mean that: the API
# server reaches them through the Service address, which kube-proxy routes a moment later.
injector_answers() {
  kubectl run injector-probe -n "${MESH_NS}" --image=localhost/meshkeeper/testapp:dev --restart=Never \
    --dry-run=server -o 'jsonpath={.spec.initContainers[*].name}' 2>/dev/null | grep -qw meshkeeper-init
}
# client_reason_is REASON: the client pod's ExclusionsInSync reason is REASON.
client_reason_is() {
  local pod
  pod="$(client_pod)"
  [ -n "${pod}" ] && [ "$(condition "${pod}" meshkeeper.io/ExclusionsInSync reason)" = "$1" ]
}

step 1 "${N}" "a real cluster" "the operator"
if kubectl get --raw /readyz >/dev/null 2>&1; then
  log "a cluster answers at ${KUBECONFIG#"${ROOT}/"}"
else
  log "no cluster answers: starting one (make cluster-up; about 15 min the first time, then seconds)"
  "${here}/cluster/up.sh"
fi

step 2 "${N}" "images, CRDs, the MeshConfig and the operator in inject mode (${OVERLAY})" "the demo pods"
"${here}/cluster/images.sh"
make -s install >/dev/null
kubectl create namespace osm-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# Applying the sample with --force-conflicts also undoes a previous run's MeshConfig change.
kubectl apply --server-side --force-conflicts -f config/samples/config_v1alpha2_meshconfig.yaml >/dev/null
kubectl apply --server-side --force-conflicts -k "${OVERLAY}" >/dev/null
kubectl rollout status deployment/meshkeeper-controller-manager -n meshkeeper-system --timeout=180s >/dev/null
log "operator ready"

step 3 "${N}" "a server outside the mesh, a client Deployment in a meshed namespace" "the rules in the pod"
kubectl delete namespace "${MESH_NS}" "${BACKEND_NS}" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "${BACKEND_NS}" >/dev/null
kubectl create namespace "${MESH_NS}" >/dev/null
kubectl label namespace "${MESH_NS}" openservicemesh.io/monitored-by=osm >/dev/null
kubectl annotate namespace "${MESH_NS}" openservicemesh.io/sidecar-injection=enabled >/dev/null
wait_for "the API server calling the injector" 60 injector_answers
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: ${BACKEND_NS}, labels: {app: server}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: app, image: localhost/meshkeeper/testapp:dev, imagePullPolicy: IfNotPresent, args: [serve, -listen, ":8080,:5432"]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: ${MESH_NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {name: app, image: localhost/meshkeeper/testapp:dev, imagePullPolicy: IfNotPresent, args: [serve, -listen, ":8080"]}
EOF
kubectl wait --for=condition=Ready pod/server -n "${BACKEND_NS}" --timeout=120s >/dev/null
kubectl rollout status deployment/client -n "${MESH_NS}" --timeout=120s >/dev/null
server_ip="$(kubectl get pod server -n "${BACKEND_NS}" -o jsonpath='{.status.podIP}')"
wait_for "the client pod" 30 client_running
client="$(client_pod)"
say "The client pod was admitted through meshkeeper's webhook: an init container and a sidecar were added."
show kubectl get pod "${client}" -n "${MESH_NS}" -o 'jsonpath={"init containers: "}{.spec.initContainers[*].name}{"\ncontainers:      "}{.spec.containers[*].name}{"\n"}'

step 4 "${N}" "the rules meshkeeper-init wrote, read from the pod's own network namespace" "traffic"
cid="$(kubectl get pod "${client}" -n "${MESH_NS}" -o jsonpath='{.status.containerStatuses[?(@.name=="app")].containerID}')"
cid="${cid#containerd://}"
pid="$(ctr --address "${CONTAINERD_SOCK}" -n k8s.io tasks ls | awk -v id="${cid}" '$1 == id {print $2}')"
[ -n "${pid}" ] || die "the client's app container is not a running task"
say "nsenter into the network namespace of pid ${pid} (the client's app container):"
show nsenter -t "${pid}" -n iptables-save -t nat
say "What the operator planned for this pod, from the MeshConfig and the pod's annotations:"
show bin/meshkeeper diagnose pod "${client}" -n "${MESH_NS}"

step 5 "${N}" "traffic: through the sidecar, and around it" "drift"
say "The client connects to the server on port 8080: the rules send it to the sidecar (15001), which
    proxies it to the original destination and records it."
show kubectl exec -n "${MESH_NS}" "${client}" -c app -- /testapp dial "${server_ip}:8080"
say "Port 5432 is in the MeshConfig's outboundPortExclusionList: that connection bypasses the sidecar."
show kubectl exec -n "${MESH_NS}" "${client}" -c app -- /testapp dial "${server_ip}:5432"
say "What the sidecar saw (only the connection to :8080):"
show kubectl exec -n "${MESH_NS}" "${client}" -c app -- /testapp get "${standin_admin}"
records="$(kubectl exec -n "${MESH_NS}" "${client}" -c app -- /testapp get "${standin_admin}")"
grep -q "\"${server_ip}:8080\"" <<<"${records}" || die "the sidecar did not see the connection to ${server_ip}:8080"
if grep -q "\"${server_ip}:5432\"" <<<"${records}"; then
  die "the connection to the excluded port went through the sidecar"
fi
log "redirected and bypassed as planned"

step 6 "${N}" "drift: add ${DEMO_RANGE} to the MeshConfig's outbound exclusions" "repair"
kubectl patch meshconfig osm-mesh-config -n osm-system --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/spec/traffic/outboundIPRangeExclusionList/-\",\"value\":\"${DEMO_RANGE}\"}]" >/dev/null
wait_for "the running pod reports the drift" 60 client_reason_is Drifted
say "The pod keeps running on its old rules; meshkeeper says so on the pod:"
show kubectl get pod "${client}" -n "${MESH_NS}" -o 'jsonpath={range .status.conditions[?(@.type=="meshkeeper.io/ExclusionsInSync")]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'

step 7 "${N}" "repair: kubectl rollout restart (the real controller-manager replaces the pod)" "done"
kubectl rollout restart deployment/client -n "${MESH_NS}" >/dev/null
kubectl rollout status deployment/client -n "${MESH_NS}" --timeout=120s >/dev/null
wait_for "the new pod is in sync" 60 client_reason_is InSync
client="$(client_pod)"
show kubectl get pod "${client}" -n "${MESH_NS}" -o 'jsonpath={range .status.conditions[?(@.type=="meshkeeper.io/ExclusionsInSync")]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'
log "demo done. The cluster keeps running: kubectl (KUBECONFIG=${KUBECONFIG}) to look around;"
log "remove the demo with 'kubectl delete namespace ${MESH_NS} ${BACKEND_NS}', stop everything with 'make cluster-down'."
