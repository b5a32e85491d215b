#!/usr/bin/env bash
# Writes the cluster's container images as archives in bin/images (hack/imagebuild: the manager,
# meshkeeper-init on Debian with iptables, the pod sandbox, the test app and the sidecar stand-in)
# and imports them into containerd, without a container engine or a registry.
#   images.sh                  archives, then import when containerd runs
#   images.sh --archives-only  archives only
#   images.sh --import-only    import only (archives must exist)
# IMAGE_SET=osm does the same for OSM's control-plane images and their stand-ins
# (hack/imagebuild/osm.go), which hack/cluster/osm.sh builds the programs of.
# The Debian root filesystem for the init image is made once with mmdebstrap and kept.
# Programs are rebuilt every time (Go's cache makes that quick) so images follow the code; an
# archive whose content did not change is not imported again.
set -euo pipefail
SCRIPT_NAME=cluster-images
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${here}/lib.sh"
KB_NAME=cluster-images
source "${ROOT}/hack/lib/kube-build.sh"
mode="${1:-all}"
set_flag=(-set "${IMAGE_SET:-}")
rootfs="${IMAGES_DIR}/debian-bookworm-iptables.tar"
mkdir -p "${IMAGES_DIR}"

if [ "${mode}" != --import-only ]; then
  if [ ! -f "${rootfs}" ]; then
    rm -rf "${rootfs}"
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is missing (apt-get install mmdebstrap)"
    kb_run "Debian bookworm root filesystem with iptables (mmdebstrap, about a minute)" \
      mmdebstrap --quiet --variant=minbase --include=iptables bookworm "${IMAGES_DIR}/partial-rootfs.tar"
    mv "${IMAGES_DIR}/partial-rootfs.tar" "${rootfs}"
  fi
  kb_run "bin/imagebuild (go build ./hack/imagebuild; seconds)" \
    env -C "${ROOT}" go build -o "${ROOT}/bin/imagebuild" ./hack/imagebuild
  kb_run "the images' programs and archives (hack/imagebuild ${IMAGE_SET:-meshkeeper}; usually 4-5 min on 2 cores when cold, about 15 s warm)" \
    env -C "${ROOT}" "${ROOT}/bin/imagebuild" "${set_flag[@]}" -out "${IMAGES_DIR}" -rootfs "${rootfs}"
fi

if [ "${mode}" != --archives-only ]; then
  if ! ctr --address "${CONTAINERD_SOCK}" version >/dev/null 2>&1; then
    [ "${mode}" = --import-only ] && die "containerd is not running"
    log "containerd is not running: archives written, not imported"
    exit 0
  fi
  images="$(ctr --address "${CONTAINERD_SOCK}" -n k8s.io images ls -q)"
  while read -r name tags; do
    archive="${IMAGES_DIR}/${name}.tar"
    first="$(echo "${tags}" | tr -d '[]' | awk '{print $1}')"
    case "${first}" in */*/*) ;; */*) first="docker.io/${first}" ;; esac
    sum="$(sha256sum "${archive}" | cut -d' ' -f1)"
    if grep -qx "${first}" <<<"${images}" && [ "$(cat "${IMAGES_DIR}/.imported-${name}" 2>/dev/null)" = "${sum}" ]; then
      continue
    fi
    ctr --address "${CONTAINERD_SOCK}" -n k8s.io images import "${archive}" >/dev/null
    echo "${sum}" >"${IMAGES_DIR}/.imported-${name}"
    log "imported ${name} as ${tags}"
  done < <("${ROOT}/bin/imagebuild" "${set_flag[@]}" -list)
  log "images in containerd: $(ctr --address "${CONTAINERD_SOCK}" -n k8s.io images ls -q | grep -vc '^sha256:') references"
fi
