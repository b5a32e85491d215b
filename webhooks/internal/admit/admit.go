package admit

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshkeeper/meshkeeper/internal/validation"
)

// Answer turns a validation result into what controller-runtime's typed validators return: an
// Invalid status error carrying every field error (so kubectl prints them all, each with its
// path and value) plus the warnings, which are shown whether or not the object is admitted.
func Answer(gk schema.GroupKind, name string, r validation.Result) (admission.Warnings, error) {
	w := admission.Warnings(r.Warnings)
	if len(r.Errors) == 0 {
		return w, nil
	}
	return w, apierrors.NewInvalid(gk, name, r.Errors)
}
