package analysis

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
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
		objects  map[string][]string
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
		name: "backend port excluded by the annotation of pods the Service selects",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{selecting(web, "app", "web"), gw},
			Pods: []corev1.Pod{
				labelled(makePod("shop", "web-2", "web", redirect.AnnotationInboundPortExclusionList, "9090,8080"), "app", "web"),
				labelled(makePod("shop", "web-1", "web", redirect.AnnotationInboundPortExclusionList, "8080"), "app", "web"),
				labelled(makePod("shop", "web-3", "web"), "app", "web"),
				labelled(makePod("shop", "api-1", "api", redirect.AnnotationInboundPortExclusionList, "8080"), "app", "api"),
				labelled(makePod("other", "web-9", "web", redirect.AnnotationInboundPortExclusionList, "8080"), "app", "web"),
			}},
		want: []string{conditions.FindingBackendPortNotIntercepted},
		contains: map[string][]string{conditions.FindingBackendPortNotIntercepted: {"openservicemesh.io/inbound-port-exclusion-list annotation of pods shop/web-1, shop/web-2 (selected by Service shop/web)",
			"remove 8080 from the annotation"}},
		effect:  map[string]string{conditions.FindingBackendPortNotIntercepted: "Ready=Bypassed"},
		objects: map[string][]string{conditions.FindingBackendPortNotIntercepted: {"IngressBackend/shop/web", "Service/shop/web", "Pod/shop/web-1", "Pod/shop/web-2"}},
	}, {
		name: "annotations of other ports, of unselected pods, or invalid ones do not count",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{selecting(web, "app", "web"), gw},
			Pods: []corev1.Pod{
				labelled(makePod("shop", "web-1", "web", redirect.AnnotationInboundPortExclusionList, "9090"), "app", "web"),
				labelled(makePod("shop", "web-2", "web", redirect.AnnotationInboundPortExclusionList, "8080,99999"), "app", "web"),
				labelled(makePod("shop", "api-1", "api", redirect.AnnotationInboundPortExclusionList, "8080"), "app", "api"),
			}},
		want: []string{},
	}, {
		name: "a Service without a selector picks no pods",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceRange("10.0.0.0/8").obj(),
			Mesh: makeMesh().mesh(), Services: []corev1.Service{web},
			Pods: []corev1.Pod{labelled(makePod("shop", "web-1", "web", redirect.AnnotationInboundPortExclusionList, "8080"), "app", "web")}},
		want: []string{},
	}, {
		name: "excluded mesh-wide and by a pod: reported once, for the MeshConfig",
		in: IngressBackendInput{IngressBackend: makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").obj(),
			Mesh: makeMesh().excludeInbound(8080).mesh(), Services: []corev1.Service{selecting(web, "app", "web"), gw},
			Pods: []corev1.Pod{labelled(makePod("shop", "web-1", "web", redirect.AnnotationInboundPortExclusionList, "8080"), "app", "web")}},
		want:     []string{conditions.FindingBackendPortNotIntercepted},
		contains: map[string][]string{conditions.FindingBackendPortNotIntercepted: {"traffic.inboundPortExclusionList"}},
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
			for code, objs := range tt.objects {
				if f := find(got, code); !slices.Equal(f.Objects, objs) {
					t.Errorf("%s objects = %v, want %v", code, f.Objects, objs)
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

func selecting(svc corev1.Service, k, v string) corev1.Service {
	svc = *svc.DeepCopy()
	svc.Spec.Selector = map[string]string{k: v}
	return svc
}

func labelled(p corev1.Pod, k, v string) corev1.Pod {
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[k] = v
	return p
}

func TestBackendPods(t *testing.T) {
	svc := selecting(makeService("shop", "web").port(80, 8080).obj(), "app", "web")
	gone := labelled(makePod("shop", "web-0", "web"), "app", "web")
	gone.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	pods := []corev1.Pod{labelled(makePod("shop", "web-b", "web"), "app", "web"), gone, labelled(makePod("shop", "web-a", "web"), "app", "web"),
		labelled(makePod("shop", "api", "api"), "app", "api"), labelled(makePod("other", "web-c", "web"), "app", "web")}
	var got []string
	for _, p := range BackendPods(&svc, pods) {
		got = append(got, p.Name)
	}
	if want := []string{"web-a", "web-b"}; !slices.Equal(got, want) {
		t.Errorf("BackendPods = %v, want %v", got, want)
	}
}

func TestIngressBackendsFor(t *testing.T) {
	pod := labelled(makePod("shop", "web-1", "web"), "app", "web")
	pod.Spec.Containers = []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 9090}}}}
	web := selecting(makeService("shop", "web").port(80, 8080).namedPort(9000, "admin").obj(), "app", "web")
	api := selecting(makeService("shop", "api").port(80, 8080).obj(), "app", "api")
	ibs := []policyv1alpha1.IngressBackend{
		*makeIngressBackend("shop", "web").backend("web", 8080).sourceService("ingress", "gateway").sourceRange("10.0.0.0/8").obj(),
		*makeIngressBackend("shop", "web-admin").backend("web", 9090).sourceRange("192.168.0.0/16").obj(),
		*makeIngressBackend("shop", "web-service-port").backend("web", 80).sourceRange("10.0.0.0/8").obj(),
		*makeIngressBackend("shop", "api").backend("api", 8080).sourceRange("10.0.0.0/8").obj(),
		*makeIngressBackend("other", "web").backend("web", 8080).sourceRange("10.0.0.0/8").obj(),
	}
	svcs := []corev1.Service{web, api}
	for _, tc := range []struct {
		port int32
		want []string
	}{
		{8080, []string{"IngressBackend shop/web backend web port 8080/http (sources: Service ingress/gateway, IPRange 10.0.0.0/8)"}},
		{9090, []string{"IngressBackend shop/web-admin backend web port 9090/http (sources: IPRange 192.168.0.0/16)"}},
		{80, nil}, // the Service port is never what OSM matches
		{7000, nil},
	} {
		var got []string
		for _, m := range IngressBackendsFor(&pod, tc.port, svcs, ibs) {
			got = append(got, m.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("port %d: %v, want %v", tc.port, got, tc.want)
		}
	}
}
