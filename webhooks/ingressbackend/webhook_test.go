package ingressbackend

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func TestValidator(t *testing.T) {
	ib := &policyv1alpha1.IngressBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "bookstore", Namespace: "app"},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.BackendSpec{{Name: "bookstore", Port: policyv1alpha1.BackendPortSpec{Number: 14001, Protocol: "https"}}},
			Sources:  []policyv1alpha1.IngressSourceSpec{{Kind: "AuthenticatedPrincipal", Name: "ingress.cluster.local"}},
		},
	}
	if w, err := validator.ValidateCreate(context.Background(), ib); err != nil || len(w) != 0 {
		t.Errorf("verified https: warnings %v err %v", w, err)
	}
	ib.Spec.Backends[0].TLS.SkipClientCertValidation = true
	_, err := validator.ValidateUpdate(context.Background(), nil, ib)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.backends[0].tls.skipClientCertValidation") {
		t.Errorf("unverified principal: err = %v", err)
	}
}
