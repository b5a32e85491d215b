package egress

import (
	ctrl "sigs.k8s.io/controller-runtime"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/validation"
	"github.com/meshkeeper/meshkeeper/webhooks/internal/admit"
)

// Path is where the API server sends Egress admission reviews.
const Path = "/validate-policy-openservicemesh-io-v1alpha1-egress"

// +kubebuilder:webhook:path=/validate-policy-openservicemesh-io-v1alpha1-egress,mutating=false,failurePolicy=fail,sideEffects=None,groups=policy.openservicemesh.io,resources=egresses,verbs=create;update,versions=v1alpha1,name=egress.meshkeeper.io,admissionReviewVersions=v1,timeoutSeconds=5

// Validator admits Egress policies; each is judged on its own content by validation.Egress.
type Validator struct{}

var validator = admit.Standalone[*policyv1alpha1.Egress]{Kind: policyv1alpha1.GroupVersion.WithKind("Egress").GroupKind(), Validate: validation.Egress}

// SetupWithManager registers the webhook on the manager's webhook server.
func (Validator) SetupWithManager(mgr ctrl.Manager) error {
	return validator.Register(mgr, &policyv1alpha1.Egress{})
}
