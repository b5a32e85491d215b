package analysis

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func TestAnalyzeIngressBackend(t *testing.T) {
	web := makeService("shop", "web").port(80, 8080).obj()
	gw := makeService("ingress", "gateway").port(443, 8443).obj()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		in       IngressBackendInput
		want     []string
		contains map[string][]string
		effect   map[string]string // code -> Condition=Reason
	}{{
		name: "clean",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{web, gw}},
		want: []string{},
	}, {
		name: "port is the Service port, not the targetPort",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 80).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{web, gw}},
		want:     []string{conditions.FindingBackendTargetPortMismatch},
		contains: map[string][]string{conditions.FindingBackendTargetPortMismatch: {"shop/web", "port 80", "80->8080", "set port.number to 8080"}},
		effect:   map[string]string{conditions.FindingBackendTargetPortMismatch: "ResolvedRefs=TargetPortMismatch"},
	}, {
		name: "unrelated port on a multi-port Service",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 9999).sourceRange("10.0.0.0/8").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{makeService("shop", "web").port(80, 8080).port(443, 8443).obj()}},
		want:     []string{conditions.FindingBackendTargetPortMismatch},
		contains: map[string][]string{conditions.FindingBackendTargetPortMismatch: {"80->8080, 443->8443"}},
	}, {
		name: "unset targetPort defaults to the port",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 80).sourceRange("10.0.0.0/8").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{makeService("shop", "web").port(80, 0).obj()}},
		want: []string{},
	}, {
		name: "named targetPort is not judged",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 1234).sourceRange("10.0.0.0/8").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{makeService("shop", "web").namedPort(80, "http").obj()}},
		want: []string{},
	}, {
		name: "backend and source Services missing",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh()},
		want:   []string{conditions.FindingBackendServiceNotFound, conditions.FindingSourceServiceNotFound},
		effect: map[string]string{conditions.FindingBackendServiceNotFound: "ResolvedRefs=RefNotFound", conditions.FindingSourceServiceNotFound: "ResolvedRefs=RefNotFound"},
	}, {
		name: "backend port excluded from inbound interception",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().excludeInbound(8080).mesh(), Services: []corev1.Service{web, gw}},
		want:     []string{conditions.FindingBackendPortNotIntercepted},
		contains: map[string][]string{conditions.FindingBackendPortNotIntercepted: {"inboundPortExclusionList", "remove 8080"}},
		effect:   map[string]string{conditions.FindingBackendPortNotIntercepted: "Ready=Bypassed"},
	}, {
		name: "feature flag off",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().noIngressBackendPolicy().mesh(), Services: []corev1.Service{web, gw}},
		want:   []string{conditions.FindingIngressBackendPolicyDisabled},
		effect: map[string]string{conditions.FindingIngressBackendPolicyDisabled: "Accepted=FeatureDisabled"},
	}, {
		name: "newer claim of the same backend loses",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web-2").created(t0.Add(time.Hour)).backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{web, gw},
			Others: []policyv1alpha1.IngressBackend{*makeIngressBackend("shop", "web-1").created(t0).backend("web", 8080).obj()}},
		want:     []string{conditions.FindingBackendClaimedTwice},
		contains: map[string][]string{conditions.FindingBackendClaimedTwice: {"shop/web-1 already claims backend web port 8080"}},
		effect:   map[string]string{conditions.FindingBackendClaimedTwice: "Accepted=Conflict"},
	}, {
		name: "older claim wins with a warning; same name different port is fine",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web-1").created(t0).backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{web, gw},
			Others: []policyv1alpha1.IngressBackend{
				*makeIngressBackend("shop", "web-2").created(t0.Add(time.Hour)).backend("web", 8080).obj(),
				*makeIngressBackend("shop", "web-3").created(t0.Add(time.Hour)).backend("web", 9090).obj(),
				*makeIngressBackend("other", "web-4").created(t0.Add(-time.Hour)).backend("web", 8080).obj(),
			}},
		want:   []string{conditions.FindingBackendClaimedTwice},
		effect: map[string]string{conditions.FindingBackendClaimedTwice: "="},
	}, {
		name: "MeshConfig missing",
		in:   IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 80).obj(), Mesh: MeshOf(meshRef, nil)},
		want: []string{conditions.FindingMeshConfigNotFound},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AnalyzeIngressBackend(tt.in)
			if g := codes(got); !slices.Equal(g, tt.want) {
				t.Fatalf("codes = %v, want %v\n%v", g, tt.want, got)
			}
			for code, subs := range tt.contains {
				for _, s := range subs {
					if f := find(got, code); !strings.Contains(f.Message, s) {
						t.Errorf("%s message lacks %q:\n%s", code, s, f.Message)
					}
				}
			}
			for code, eff := range tt.effect {
				f := find(got, code)
				if g := f.Condition + "=" + f.Reason; g != eff {
					t.Errorf("%s effect = %s, want %s", code, g, eff)
				}
			}
		})
	}
}

func TestIndexKeys(t *testing.T) {
	ib := makeIngressBackend("shop", "web").backend("web", 8080).backend("web", 8080).backend("api", 80).sourceService("ingress", "gateway").sourceRange("10.0.0.0/8").obj()
	if got, want := Claims(ib), []string{"shop/web:8080", "shop/api:80"}; !slices.Equal(got, want) {
		t.Errorf("Claims = %v, want %v", got, want)
	}
	if got, want := ReferencedServices(ib), []string{"shop/web", "shop/api", "ingress/gateway"}; !slices.Equal(got, want) {
		t.Errorf("ReferencedServices = %v, want %v", got, want)
	}
	e := seed003Egress().source("shop", "frontend").port(7000, "tcp").obj()
	if got, want := EgressPorts(e), []int32{7000, 7001, 7002, 7003}; !slices.Equal(got, want) {
		t.Errorf("EgressPorts = %v, want %v", got, want)
	}
	if got, want := EgressServiceAccounts(e), []string{"shop/frontend"}; !slices.Equal(got, want) {
		t.Errorf("EgressServiceAccounts = %v, want %v", got, want)
	}
}
