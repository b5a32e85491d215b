# Builds Kubernetes and etcd binaries from the Go module proxy, nothing else reached. Sourced by
# hack/envtest.sh and hack/cluster/build.sh, not run.
#
# Kubernetes is built through a throwaway module under bin/.kube-build that requires
# k8s.io/kubernetes at the release and pins each of its staging modules (k8s.io/api, ...) to the
# matching published v0.x version, the `replace` block of the release's own go.mod with its
# ./staging/src paths swapped for versions. Builds are static (CGO_ENABLED=0: with cgo every
# package's build ID changes and the whole tree recompiles) and one at a time.
#
# Needs: ROOT (the repository root). Optional: KUBE_VERSION, ETCD_VERSION.

KUBE_VERSION="${KUBE_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KUBE_BUILD_WORK="${ROOT}/bin/.kube-build"
# Only the throwaway modules resolve their requirements as they build (GOFLAGS=-mod=mod is set
# on those commands alone, never for the repository's own module).
export GOTOOLCHAIN=local CGO_ENABLED=0

# kb_log and kb_run: the progress of long work (hack/lib/progress.sh).
# shellcheck source=hack/lib/progress.sh
source "${ROOT}/hack/lib/progress.sh"

# kb_ldflags: version stamps so servers and kubectl report the real release.
kb_ldflags() {
  local v=k8s.io/component-base/version
  printf '%s' "-s -w -X ${v}.gitVersion=v${KUBE_VERSION} -X ${v}.gitMajor=1 -X ${v}.gitMinor=$(echo "${KUBE_VERSION}" | cut -d. -f2) -X ${v}.gitTreeState=clean -X ${v}.buildDate=1970-01-01T00:00:00Z"
}

# kb_kube_module: prints the throwaway module's directory, writing its go.mod on first use.
kb_kube_module() {
  local dir="${KUBE_BUILD_WORK}/kubernetes-${KUBE_VERSION}" gomod staging="0.${KUBE_VERSION#1.}"
  if [ ! -f "${dir}/go.mod" ]; then
    mkdir -p "${dir}"
    kb_log "resolving k8s.io/kubernetes v${KUBE_VERSION} from the module proxy"
    gomod="$(cd "${dir}" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
    {
      printf 'module meshkeeper.local/kube-build\n\ngo 1.26\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "${KUBE_VERSION}"
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v'"${staging}"'#p' "${gomod}"
      echo ")"
    } >"${dir}/go.mod.tmp"
    mv "${dir}/go.mod.tmp" "${dir}/go.mod"
  fi
  echo "${dir}"
}

# kb_usual NAME: how long building NAME usually takes on 2 cores with cold caches (docs/benchmarks.md;
# the Kubernetes binaries share most packages, so the first one built pays for the others).
kb_usual() {
  case "$1" in
    kube-apiserver) echo "7-8 min, the first Kubernetes binary compiles most shared packages" ;;
    kube-controller-manager) echo "5-14 min" ;;
    kubelet | kubectl) echo "3-4 min" ;;
    kube-scheduler | kube-proxy) echo "1-2 min" ;;
    etcd) echo "3-4 min" ;;
    *) echo "minutes" ;;
  esac
}

# kb_kube NAME OUTDIR: builds k8s.io/kubernetes/cmd/NAME into OUTDIR/NAME unless present.
kb_kube() {
  local name="$1" out="$2" dir
  [ -x "${out}/${name}" ] && [ ! -L "${out}/${name}" ] && return 0
  mkdir -p "${out}"
  dir="$(kb_kube_module)"
  if [ ! -f "${dir}/.got-${name}" ]; then
    kb_run "fetching ${name} v${KUBE_VERSION} dependencies" \
      bash -c "cd '${dir}' && GOFLAGS=-mod=mod go get 'k8s.io/kubernetes/cmd/${name}@v${KUBE_VERSION}'"
    touch "${dir}/.got-${name}"
  fi
  kb_run "building ${name} v${KUBE_VERSION} (usually $(kb_usual "${name}") on 2 cores when cold)" \
    bash -c "cd '${dir}' && GOFLAGS=-mod=mod go build -trimpath -ldflags '$(kb_ldflags)' -o '${out}/${name}.tmp' 'k8s.io/kubernetes/cmd/${name}'"
  mv -f "${out}/${name}.tmp" "${out}/${name}"
}

# kb_etcd OUTDIR: builds etcd v$ETCD_VERSION into OUTDIR/etcd unless present.
kb_etcd() {
  local out="$1" dir="${KUBE_BUILD_WORK}/etcd-${ETCD_VERSION}"
  [ -x "${out}/etcd" ] && return 0
  mkdir -p "${dir}" "${out}"
  [ -f "${dir}/go.mod" ] || printf 'module meshkeeper.local/etcd-build\n\ngo 1.26\n' >"${dir}/go.mod"
  kb_run "fetching etcd v${ETCD_VERSION} dependencies" \
    bash -c "cd '${dir}' && GOFLAGS=-mod=mod go get 'go.etcd.io/etcd/server/v3@v${ETCD_VERSION}'"
  kb_run "building etcd v${ETCD_VERSION} (usually $(kb_usual etcd) on 2 cores when cold)" \
    bash -c "cd '${dir}' && GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o '${out}/etcd.tmp' go.etcd.io/etcd/server/v3"
  mv -f "${out}/etcd.tmp" "${out}/etcd"
}
