#!/usr/bin/env bash
# Writes the cluster's certificates and kubeconfigs into .cluster/pki: one CA signs every client
# and serving certificate (EC P-256, openssl). Kept across restarts; rewritten only when the node
# name, node address or Service range they were made for has changed.
set -euo pipefail
SCRIPT_NAME=cluster-certs
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

made_for="${NODE_NAME} ${NODE_IP} ${SERVICE_CIDR} ${API_PORT}"
if [ -f "${PKI}/ca.crt" ] && [ "$(cat "${PKI}/made-for" 2>/dev/null)" = "${made_for}" ]; then
  log "certificates present in ${PKI#"${ROOT}/"}"
  exit 0
fi
rm -rf "${PKI}"
mkdir -p "${PKI}"
cd "${PKI}"
umask 077

openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=meshkeeper-cluster-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -out ca.crt 2>/dev/null

# issue NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
issue() {
  local ext
  ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$3"
    if [ -n "${4:-}" ]; then echo "subjectAltName=$4"; fi
  } >"${ext}"
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "${ext}" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "${ext}"
}

svc_names="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue apiserver "/CN=kube-apiserver" serverAuth \
  "${svc_names},DNS:localhost,DNS:${NODE_NAME},IP:127.0.0.1,IP:${NODE_IP},IP:${FIRST_SERVICE_IP}"
issue apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
issue admin "/O=system:masters/CN=cluster-admin" clientAuth
issue controller-manager "/CN=system:kube-controller-manager" clientAuth
issue scheduler "/CN=system:kube-scheduler" clientAuth
issue kube-proxy "/CN=system:kube-proxy" clientAuth
issue kubelet "/O=system:nodes/CN=system:node:${NODE_NAME}" clientAuth
issue kubelet-serving "/CN=${NODE_NAME}" serverAuth "DNS:${NODE_NAME},DNS:localhost,IP:127.0.0.1,IP:${NODE_IP}"
# The key pair ServiceAccount tokens are signed and checked with.
openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null

# kubeconfig FILE USER
kubeconfig() {
  cat >"$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: meshkeeper
  cluster:
    certificate-authority: ${PKI}/ca.crt
    server: https://127.0.0.1:${API_PORT}
users:
- name: $2
  user:
    client-certificate: ${PKI}/$1.crt
    client-key: ${PKI}/$1.key
contexts:
- name: meshkeeper
  context: {cluster: meshkeeper, user: $2}
current-context: meshkeeper
KC
}
kubeconfig admin cluster-admin
kubeconfig controller-manager system:kube-controller-manager
kubeconfig scheduler system:kube-scheduler
kubeconfig kube-proxy system:kube-proxy
kubeconfig kubelet "system:node:${NODE_NAME}"
chmod 0644 ./*.crt ./*.kubeconfig
echo "${made_for}" >made-for
log "certificates and kubeconfigs written to ${PKI#"${ROOT}/"}"
