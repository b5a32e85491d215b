package validation

import (
	"testing"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func TestIngressBackend(t *testing.T) {
	const (
		svc   = policyv1alpha1.KindService
		rng   = policyv1alpha1.KindIPRange
		princ = policyv1alpha1.KindAuthenticatedPrincipal
	)
	ingress := func() *ibBuilder {
		return MakeIngressBackend("x").Source(svc, "ingress-nginx-controller", "ingress-nginx")
	}
	tests := []struct {
		name string
		in   *policyv1alpha1.IngressBackend
		want expect
	}{
		{"http from a Service", ingress().Backend("bookstore", 14001, "http").Obj(), expect{}},
		{"http from an IP range", MakeIngressBackend("x").Backend("bookstore", 14001, "http").Source(rng, "10.0.0.0/16", "").Obj(), expect{}},
		{"https with principal and validation", ingress().Source(princ, "ingress-nginx.ingress-nginx.cluster.local", "").
			Backend("bookstore", 14001, "https").TLS(false, "bookstore.app.svc.cluster.local").Obj(), expect{}},
		{"https skipping validation, no principal", ingress().Backend("bookstore", 14001, "https").TLS(true).Obj(), expect{}},
		{"same Service on two ports", ingress().Backend("bookstore", 14001, "http").Backend("bookstore", 14002, "http").Obj(), expect{}},

		// The AuthenticatedPrincipal rule, all four combinations.
		{"principal over http is denied", ingress().Source(princ, "ingress.cluster.local", "").Backend("bookstore", 14001, "http").Obj(),
			expect{errs: []string{"spec.backends[0].port.protocol", "AuthenticatedPrincipal", "must use https"}}},
		{"principal with skipped validation is denied", ingress().Source(princ, "ingress.cluster.local", "").Backend("bookstore", 14001, "https").TLS(true).Obj(),
			expect{errs: []string{"spec.backends[0].tls.skipClientCertValidation", "set skipClientCertValidation to false"}}},
		{"validation without principal warns", ingress().Backend("bookstore", 14001, "https").TLS(false).Obj(),
			expect{warns: []string{"spec.backends[0].tls", "no AuthenticatedPrincipal"}}},
		{"principal checks every backend", ingress().Source(princ, "ingress.cluster.local", "").
			Backend("a", 1, "https").Backend("b", 2, "https").TLS(true).Obj(),
			expect{errs: []string{"spec.backends[1].tls.skipClientCertValidation"}}},

		{"tls on http", ingress().Backend("bookstore", 14001, "http").TLS(true).Obj(),
			expect{errs: []string{"spec.backends[0].tls", "https backends only"}}},
		{"unknown protocol", ingress().Backend("bookstore", 14001, "grpc").Obj(),
			expect{errs: []string{"spec.backends[0].port.protocol", `"grpc"`}}},
		{"duplicate backend", ingress().Backend("bookstore", 14001, "http").Backend("bookstore", 14001, "HTTP").Obj(),
			expect{errs: []string{"spec.backends[1]", "Duplicate"}}},
		{"conflicting backend", ingress().Backend("bookstore", 14001, "http").Backend("bookstore", 14001, "https").TLS(true).Obj(),
			expect{errs: []string{"spec.backends[1]", "conflicts with spec.backends[0]"}}},
		{"bad backend name", ingress().Backend("Book_Store", 14001, "http").Obj(),
			expect{errs: []string{"spec.backends[0].name", "Book_Store"}}},
		{"bad SNI host", ingress().Backend("bookstore", 14001, "https").TLS(true, "not a host").Obj(),
			expect{errs: []string{"spec.backends[0].tls.sniHosts[0]"}}},
		{"service source without namespace", MakeIngressBackend("x").Source(svc, "ingress", "").Backend("b", 1, "http").Obj(),
			expect{errs: []string{"spec.sources[0].namespace"}}},
		{"IP range that is no CIDR", MakeIngressBackend("x").Source(rng, "10.0.0.0", "").Backend("b", 1, "http").Obj(),
			expect{errs: []string{"spec.sources[0].name", `"10.0.0.0"`}}},
		{"catch-all IP range warns", MakeIngressBackend("x").Source(rng, "::/0", "").Backend("b", 1, "http").Obj(),
			expect{warns: []string{"spec.sources[0].name", "any address"}}},
		{"duplicate source", ingress().Source(svc, "ingress-nginx-controller", "ingress-nginx").Backend("b", 1, "http").Obj(),
			expect{errs: []string{"spec.sources[1]", "Duplicate"}}},
		{"unknown source kind", MakeIngressBackend("x").Source("ServiceAccount", "sa", "app").Backend("b", 1, "http").Obj(),
			expect{errs: []string{"spec.sources[0].kind"}}},
		{"matches warn", ingress().Backend("b", 1, "http").Match("HTTPRouteGroup", "r").Obj(),
			expect{warns: []string{"spec.matches", "never implemented"}}},
		{"empty", MakeIngressBackend("x").Obj(), expect{errs: []string{"spec.backends", "spec.sources"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.check(t, IngressBackend(tt.in))
		})
	}
}
