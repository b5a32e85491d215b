package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// migrateHelp is the short form of docs/migrating-from-osm.md, where a person in a terminal
// looks first: `kubectl meshkeeper help migrate-from-osm`.
const migrateHelp = `Run meshkeeper beside Open Service Mesh, or take over from it.

Beside OSM (Helm chart in osm-system, or the AKS add-on in kube-system): deploy audit mode and
nothing else.

  kubectl apply --server-side -k config/default     # audit: no pod webhook, no CRDs, read-only RBAC

  It finds the one MeshConfig (or --meshconfig ns/name), works on OSM's CRDs as they are, and where
  they cannot store a status (MeshConfig, Egress) reports by events, metrics and
  'kubectl meshkeeper analyze -A'. Inject mode refuses to inject while OSM's osm-webhook-<mesh> exists.

Taking over (Helm):
  1. audit first, check 'kubectl meshkeeper analyze -A'
  2. kubectl get meshconfig,egress,ingressbackend -A -o yaml > osm-objects.yaml
  3. helm uninstall osm -n osm-system      # OSM's CRDs and objects stay
  4. FORCE_TAKEOVER=1 make install         # server-side apply; objects and OSM's labels are kept
  5. kubectl rollout restart -n meshkeeper-system deploy/meshkeeper-controller-manager
  6. make deploy-injector, then restart workloads namespace by namespace
AKS add-on: disable the add-on first (its reconciler puts OSM's CRDs and webhooks back), then 2-6.

Going back: remove config/injector, reinstall OSM (its osm-bootstrap re-applies its CRDs), deploy
config/default again, restart workloads.

The full guide: docs/migrating-from-osm.md.`

func newMigrateTopic(genericiooptions.IOStreams) *cobra.Command {
	// No Run: cobra lists it under "Additional help topics" and prints it with help.
	return &cobra.Command{Use: "migrate-from-osm", Short: "Run beside OSM, take over from it, and go back", Long: migrateHelp}
}
