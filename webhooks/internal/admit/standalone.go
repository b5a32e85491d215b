package admit

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshkeeper/meshkeeper/internal/validation"
)

// Standalone admits a kind whose objects are judged on their own content: a create or an update
// is checked by Validate on the new object only (an update may change anything a create could
// set), and a deletion is always admitted. The policy kinds need nothing more, so their webhooks
// differ only in the kind and the validation function.
type Standalone[T client.Object] struct {
	Kind     schema.GroupKind
	Validate func(T) validation.Result
}

// Register makes s the validating webhook of obj's kind on the manager's webhook server.
func (s Standalone[T]) Register(mgr ctrl.Manager, obj T) error {
	return ctrl.NewWebhookManagedBy(mgr, obj).WithValidator(s).Complete()
}

// ValidateCreate checks a new object.
func (s Standalone[T]) ValidateCreate(_ context.Context, obj T) (admission.Warnings, error) {
	return Answer(s.Kind, obj.GetName(), s.Validate(obj))
}

// ValidateUpdate checks the new state.
func (s Standalone[T]) ValidateUpdate(_ context.Context, _, obj T) (admission.Warnings, error) {
	return Answer(s.Kind, obj.GetName(), s.Validate(obj))
}

// ValidateDelete admits every deletion.
func (Standalone[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}
