package meshconfig

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

func TestValidator(t *testing.T) {
	v := &Validator{Served: types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}}
	ctx := context.Background()
	mc := func(ns string, excl ...string) *configv1alpha2.MeshConfig {
		return &configv1alpha2.MeshConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "osm-mesh-config"},
			Spec:       configv1alpha2.MeshConfigSpec{Traffic: configv1alpha2.TrafficSpec{OutboundIPRangeExclusionList: excl}},
		}
	}

	w, err := v.ValidateCreate(ctx, mc("osm-system", "10.1.0.0/16"))
	if err != nil || len(w) != 0 {
		t.Errorf("valid: warnings %v err %v", w, err)
	}

	_, err = v.ValidateUpdate(ctx, mc("osm-system"), mc("osm-system", "10.1.0.0/16", "300.0.0.0/8"))
	if !apierrors.IsInvalid(err) {
		t.Fatalf("invalid update: err = %v, want an Invalid status", err)
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) || len(st.Status().Details.Causes) != 1 ||
		st.Status().Details.Causes[0].Field != "spec.traffic.outboundIPRangeExclusionList[1]" {
		t.Errorf("causes = %+v", st.Status().Details)
	}

	w, err = v.ValidateCreate(ctx, mc("elsewhere", "0.0.0.0/0"))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(w, "\n")
	for _, want := range []string{"CaptureDisabled", "has no effect"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", joined, want)
		}
	}

	if w, err := v.ValidateDelete(ctx, mc("osm-system", "300.0.0.0/8")); err != nil || w != nil {
		t.Errorf("delete: %v %v", w, err)
	}
}
