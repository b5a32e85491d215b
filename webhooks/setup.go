package webhooks

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/webhooks/egress"
	"github.com/meshkeeper/meshkeeper/webhooks/ingressbackend"
	"github.com/meshkeeper/meshkeeper/webhooks/meshconfig"
	"github.com/meshkeeper/meshkeeper/webhooks/pod"
)

// Config is what the admission side needs to know about the cluster and the mesh.
type Config struct {
	// MeshName is the value of openservicemesh.io/monitored-by that marks our namespaces.
	MeshName string
	// OperatorNamespace is never injected.
	OperatorNamespace string
	// MeshConfig is the MeshConfig pods are injected from.
	MeshConfig types.NamespacedName
	// Cluster holds the Service and Pod CIDRs used for warnings.
	Cluster redirect.ClusterRanges
	// Injector is set in inject mode only; nil serves the validators alone.
	Injector *InjectorConfig
}

// InjectorConfig is what the pod injector needs beyond Config.
type InjectorConfig struct {
	// Injection carries images, version and bootstrap settings.
	Injection injection.Options
	// Gate pauses injection while another injector serves the mesh; nil never pauses.
	Gate *pod.Gate
}

// Setup registers every admission webhook on the manager's webhook server. The manager adds its
// webhook server the first time it is asked for it, so call this only once serving certificates
// exist.
func Setup(ctx context.Context, mgr ctrl.Manager, c Config) error {
	if c.Injector != nil {
		inj := &pod.Injector{
			MeshConfig: c.MeshConfig,
			Select:     injection.SelectOptions{MeshName: c.MeshName, OperatorNamespace: c.OperatorNamespace},
			Options:    c.Injector.Injection,
			Cluster:    c.Cluster,
			Gate:       c.Injector.Gate,
		}
		if err := inj.SetupWithManager(ctx, mgr); err != nil {
			return err
		}
	}
	if err := (&meshconfig.Validator{Cluster: c.Cluster, Served: c.MeshConfig}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("meshconfig webhook: %w", err)
	}
	if err := (egress.Validator{}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("egress webhook: %w", err)
	}
	if err := (ingressbackend.Validator{}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("ingressbackend webhook: %w", err)
	}
	return nil
}
