package meshconfig

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
	"github.com/meshkeeper/meshkeeper/internal/validation"
	"github.com/meshkeeper/meshkeeper/webhooks/internal/admit"
)

// Path is where the API server sends MeshConfig admission reviews (controller-runtime's naming).
const Path = "/validate-config-openservicemesh-io-v1alpha2-meshconfig"

// matchPolicy Equivalent (the default) makes the API server convert v1alpha1 requests to
// v1alpha2 before calling us, so one handler covers both served versions.
//
// +kubebuilder:webhook:path=/validate-config-openservicemesh-io-v1alpha2-meshconfig,mutating=false,failurePolicy=fail,sideEffects=None,groups=config.openservicemesh.io,resources=meshconfigs,verbs=create;update,versions=v1alpha2,name=meshconfig.meshkeeper.io,admissionReviewVersions=v1,matchPolicy=Equivalent,timeoutSeconds=5

// Validator admits MeshConfigs.
type Validator struct {
	// Cluster holds the Service and Pod CIDRs, used only to warn about exclusions that cover them.
	Cluster redirect.ClusterRanges
	// Served is the MeshConfig the operator acts on; others are admitted with a warning.
	Served types.NamespacedName
}

var _ admission.Validator[*configv1alpha2.MeshConfig] = (*Validator)(nil)

// SetupWithManager registers the webhook on the manager's webhook server.
func (v *Validator) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &configv1alpha2.MeshConfig{}).WithValidator(v).Complete()
}

func (v *Validator) validate(mc *configv1alpha2.MeshConfig) (admission.Warnings, error) {
	r := validation.MeshConfig(mc, v.Cluster)
	if v.Served.Name != "" && (mc.Name != v.Served.Name || mc.Namespace != v.Served.Namespace) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("meshkeeper acts on MeshConfig %s only; %s/%s has no effect", v.Served, mc.Namespace, mc.Name))
	}
	return admit.Answer(configv1alpha2.GroupVersion.WithKind("MeshConfig").GroupKind(), mc.Name, r)
}

// ValidateCreate checks a new MeshConfig.
func (v *Validator) ValidateCreate(_ context.Context, mc *configv1alpha2.MeshConfig) (admission.Warnings, error) {
	return v.validate(mc)
}

// ValidateUpdate checks the new state; any MeshConfig change reaches only pods created after it.
func (v *Validator) ValidateUpdate(_ context.Context, _, mc *configv1alpha2.MeshConfig) (admission.Warnings, error) {
	return v.validate(mc)
}

// ValidateDelete admits every deletion.
func (v *Validator) ValidateDelete(context.Context, *configv1alpha2.MeshConfig) (admission.Warnings, error) {
	return nil, nil
}
