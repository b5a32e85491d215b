package admit

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshkeeper/meshkeeper/internal/validation"
)

var _ admission.Validator[*corev1.ConfigMap] = Standalone[*corev1.ConfigMap]{}

// configMaps judges a ConfigMap by its "mode" key: "bad" is invalid, "odd" draws a warning.
var configMaps = Standalone[*corev1.ConfigMap]{
	Kind: corev1.SchemeGroupVersion.WithKind("ConfigMap").GroupKind(),
	Validate: func(cm *corev1.ConfigMap) validation.Result {
		var r validation.Result
		switch cm.Data["mode"] {
		case "bad":
			r.Errors = append(r.Errors, field.Invalid(field.NewPath("data", "mode"), "bad", "not allowed"))
		case "odd":
			r.Warnings = append(r.Warnings, "mode odd is unusual")
		}
		return r
	},
}

func configMap(mode string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + mode}, Data: map[string]string{"mode": mode}}
}

func TestStandalone(t *testing.T) {
	ctx := context.Background()
	if w, err := configMaps.ValidateCreate(ctx, configMap("odd")); err != nil || !slices.Equal(w, admission.Warnings{"mode odd is unusual"}) {
		t.Errorf("create odd: warnings %v, err %v", w, err)
	}
	_, err := configMaps.ValidateCreate(ctx, configMap("bad"))
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create bad: err %v, want Invalid", err)
	}
	if se := err.(*apierrors.StatusError); se.ErrStatus.Details.Name != "cm-bad" || se.ErrStatus.Details.Kind != "ConfigMap" {
		t.Errorf("create bad: details %+v", se.ErrStatus.Details)
	}
	// An update is judged on the new object, whatever the old one was.
	if _, err := configMaps.ValidateUpdate(ctx, configMap("ok"), configMap("bad")); !apierrors.IsInvalid(err) {
		t.Errorf("update to bad: err %v, want Invalid", err)
	}
	if w, err := configMaps.ValidateUpdate(ctx, configMap("bad"), configMap("ok")); err != nil || len(w) != 0 {
		t.Errorf("update from bad: warnings %v, err %v", w, err)
	}
	if w, err := configMaps.ValidateDelete(ctx, configMap("bad")); err != nil || len(w) != 0 {
		t.Errorf("delete: warnings %v, err %v", w, err)
	}
}
