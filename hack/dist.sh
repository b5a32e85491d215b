#!/usr/bin/env bash
# make dist: the kubectl plugin's release archives for every platform of plugins/meshkeeper.yaml,
# their checksums, and the krew manifest with both filled in, under dist/.
#   VERSION  the release (vX.Y.Z); default: the tag at HEAD, else v0.0.0-dev.<commit>
# Archives are reproducible: same tree and VERSION, same bytes (sorted entries, fixed times and
# owners, gzip without a timestamp), so the checksums can be checked by rebuilding.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
ROOT="${root}" KB_NAME=dist
# shellcheck source=hack/lib/kube-build.sh # for kb_run, the heartbeat of long builds
source "${root}/hack/lib/kube-build.sh"
export GOTOOLCHAIN=local CGO_ENABLED=0
t0=$(date +%s)
log() { printf '[dist +%ss] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }

version="${VERSION:-$(git describe --tags --exact-match 2>/dev/null || echo "v0.0.0-dev.$(git rev-parse --short=12 HEAD)")}"
[[ "${version}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || {
  echo "dist: VERSION ${version} is not a semantic version (vX.Y.Z)" >&2
  exit 2
}
platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
out="${root}/dist"
rm -rf "${out}"
mkdir -p "${out}"
manifest="$(grep -v "^#" plugins/meshkeeper.yaml)"
manifest="${manifest//VERSION/${version}}"
n=0
for p in "${platforms[@]}"; do
  n=$((n + 1))
  os="${p%/*}" arch="${p#*/}"
  name="kubectl-meshkeeper_${os}_${arch}"
  log "(${n}/${#platforms[@]}) ${name}.tar.gz: ${version} for ${p} (cold, every dependency is compiled for that platform: 5-15 min on 2 cores; seconds when cached)"
  stage="${out}/.stage/${name}"
  mkdir -p "${stage}"
  kb_run "go build ./cmd/meshkeeper for ${p}" env GOOS="${os}" GOARCH="${arch}" go build -trimpath \
    -ldflags "-s -w -X github.com/meshkeeper/meshkeeper/internal/version.Version=${version}" \
    -o "${stage}/kubectl-meshkeeper" ./cmd/meshkeeper
  cp README.md "${stage}/"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "${stage}" -cf - kubectl-meshkeeper README.md |
    gzip -n -9 >"${out}/${name}.tar.gz"
  sum="$(sha256sum "${out}/${name}.tar.gz" | cut -d' ' -f1)"
  manifest="${manifest//SHA256_${os}_${arch}/${sum}}"
done
rm -rf "${out}/.stage"
(cd "${out}" && sha256sum ./*.tar.gz | sed 's| \./| |' >checksums.txt)
printf '%s\n' "${manifest}" >"${out}/meshkeeper.yaml"
if grep -q 'SHA256_\|VERSION' "${out}/meshkeeper.yaml"; then
  echo "dist: a placeholder of plugins/meshkeeper.yaml was left unfilled (a platform without an archive?)" >&2
  exit 1
fi
log "done: dist/ holds $(ls "${out}"/*.tar.gz | wc -l) archives, checksums.txt and the krew manifest meshkeeper.yaml for ${version}"
