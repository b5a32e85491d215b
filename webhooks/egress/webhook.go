package egress

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/validation"
	"github.com/meshkeeper/meshkeeper/webhooks/internal/admit"
)

// Path is where the API server sends Egress admission reviews.
const Path = "/validate-policy-openservicemesh-io-v1alpha1-egress"

// +kubebuilder:webhook:path=/validate-policy-openservicemesh-io-v1alpha1-egress,mutating=false,failurePolicy=fail,sideEffects=None,groups=policy.openservicemesh.io,resources=egresses,verbs=create;update,versions=v1alpha1,name=egress.meshkeeper.io,admissionReviewVersions=v1,timeoutSeconds=5

// Validator admits Egress policies.
type Validator struct{}

var _ admission.Validator[*policyv1alpha1.Egress] = Validator{}

// SetupWithManager registers the webhook on the manager's webhook server.
func (v Validator) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &policyv1alpha1.Egress{}).WithValidator(v).Complete()
}

func answer(e *policyv1alpha1.Egress) (admission.Warnings, error) {
	return admit.Answer(policyv1alpha1.GroupVersion.WithKind("Egress").GroupKind(), e.Name, validation.Egress(e))
}

// ValidateCreate checks a new Egress.
func (Validator) ValidateCreate(_ context.Context, e *policyv1alpha1.Egress) (admission.Warnings, error) {
	return answer(e)
}

// ValidateUpdate checks the new state.
func (Validator) ValidateUpdate(_ context.Context, _, e *policyv1alpha1.Egress) (admission.Warnings, error) {
	return answer(e)
}

// ValidateDelete admits every deletion.
func (Validator) ValidateDelete(context.Context, *policyv1alpha1.Egress) (admission.Warnings, error) {
	return nil, nil
}
