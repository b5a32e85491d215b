package egress

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func TestValidator(t *testing.T) {
	e := &policyv1alpha1.Egress{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "app"},
		Spec: policyv1alpha1.EgressSpec{
			Sources: []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Name: "a", Namespace: "app"}},
			Ports:   []policyv1alpha1.PortSpec{{Number: 5432, Protocol: "tcp"}},
		},
	}
	w, err := validator.ValidateCreate(context.Background(), e)
	if err != nil || !strings.Contains(strings.Join(w, "\n"), "no ipAddresses") {
		t.Errorf("open tcp port: warnings %v err %v", w, err)
	}
	e.Spec.Ports[0].Protocol = "udp"
	if _, err := validator.ValidateUpdate(context.Background(), nil, e); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "udp") {
		t.Errorf("udp: err = %v", err)
	}
}
