#!/usr/bin/env bash
# Installs meshkeeper's CRDs, but only where nobody else's are installed. Where OSM's CRDs exist
# (Helm install or AKS add-on), meshkeeper's audit mode works on them as they are, and replacing
# them under a running osm-bootstrap breaks it: this script stops and points to the migration
# guide instead. FORCE_TAKEOVER=1 applies over them (the guide's step, after OSM is removed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KUBECTL=${KUBECTL:-kubectl}
crds=(meshconfigs.config.openservicemesh.io egresses.policy.openservicemesh.io ingressbackends.policy.openservicemesh.io)

foreign=()
for crd in "${crds[@]}"; do
  owner=$("$KUBECTL" get crd "$crd" -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/part-of}{"|"}{.metadata.labels.app\.kubernetes\.io/name}' 2>/dev/null || true)
  case "$owner" in
    "") ;;                      # not installed
    meshkeeper\|*) ;;           # ours: apply updates it
    *) foreign+=("$crd (labels: ${owner//|/, })") ;;
  esac
done

if [ "${#foreign[@]}" -gt 0 ] && [ "${FORCE_TAKEOVER:-0}" != 1 ]; then
  echo "These CRDs are installed and are not meshkeeper's (most likely OSM's):" >&2
  printf '  %s\n' "${foreign[@]}" >&2
  cat >&2 <<'MSG'
meshkeeper's audit mode (make deploy) works on them as they are: nothing to install.
To replace them (after removing OSM's control plane), follow docs/migrating-from-osm.md,
which ends with: FORCE_TAKEOVER=1 make install
MSG
  exit 1
fi
force=()
if [ "${FORCE_TAKEOVER:-0}" = 1 ]; then force=(--force-conflicts); fi
echo "applying config/crd (server-side, field manager meshkeeper; labels other managers set are kept)"
"$KUBECTL" apply --server-side --field-manager=meshkeeper "${force[@]}" -k config/crd
