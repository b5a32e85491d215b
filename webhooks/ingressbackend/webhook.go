package ingressbackend

import (
	ctrl "sigs.k8s.io/controller-runtime"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/validation"
	"github.com/meshkeeper/meshkeeper/webhooks/internal/admit"
)

// Path is where the API server sends IngressBackend admission reviews.
const Path = "/validate-policy-openservicemesh-io-v1alpha1-ingressbackend"

// +kubebuilder:webhook:path=/validate-policy-openservicemesh-io-v1alpha1-ingressbackend,mutating=false,failurePolicy=fail,sideEffects=None,groups=policy.openservicemesh.io,resources=ingressbackends,verbs=create;update,versions=v1alpha1,name=ingressbackend.meshkeeper.io,admissionReviewVersions=v1,timeoutSeconds=5

// Validator admits IngressBackends; each is judged on its own content by
// validation.IngressBackend.
type Validator struct{}

var validator = admit.Standalone[*policyv1alpha1.IngressBackend]{Kind: policyv1alpha1.GroupVersion.WithKind("IngressBackend").GroupKind(), Validate: validation.IngressBackend}

// SetupWithManager registers the webhook on the manager's webhook server.
func (Validator) SetupWithManager(mgr ctrl.Manager) error {
	return validator.Register(mgr, &policyv1alpha1.IngressBackend{})
}
