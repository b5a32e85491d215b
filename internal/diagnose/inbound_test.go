package diagnose

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// renderedRules are the rules meshkeeper renders for a MeshConfig and pod annotations, as the
// pod would run them.
func renderedRules(t *testing.T, mc *configv1alpha2.MeshConfig, ann map[string]string) *redirect.Parsed {
	t.Helper()
	cfg, errs := redirect.Effective(injection.MeshSettings(&mc.Spec), ann)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	plan := redirect.Render(cfg)
	return &redirect.Parsed{IPv4: &plan.IPv4, IPv6: &plan.IPv6}
}

func TestRouteInbound(t *testing.T) {
	ingressOn := func(s *configv1alpha2.MeshConfigSpec) { s.FeatureFlags.EnableIngressBackendPolicy = true }
	web := service("test", "web", "10.96.0.80", 80)
	web.Spec.Ports[0].TargetPort = intstr.FromInt32(8080)
	web.Spec.Selector = map[string]string{"app": "web"}
	ib := policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "web"},
		Spec: policyv1alpha1.IngressBackendSpec{Backends: []policyv1alpha1.BackendSpec{{Name: "web", Port: policyv1alpha1.BackendPortSpec{Number: 8080, Protocol: "http"}}},
			Sources: []policyv1alpha1.IngressSourceSpec{{Kind: policyv1alpha1.KindService, Namespace: "ingress", Name: "gateway"}}}}
	base := func(mc *configv1alpha2.MeshConfig, ann map[string]string, rules bool) RouteInput {
		b := makePod("web-1").OSMInit(script(t, "seed001-ranges.sh")).Sidecar().Running(initOK)
		for k, v := range ann {
			b.Annotate(k, v)
		}
		pod := b.Obj()
		pod.Labels["app"] = "web"
		pod.Status.PodIP = "10.244.0.7"
		in := RouteInput{Pod: pod, MeshConfigRef: meshRef, MeshConfig: mc, Services: []corev1.Service{web},
			IngressBackends: []policyv1alpha1.IngressBackend{ib}, Selection: injection.SelectOptions{MeshName: "osm"}}
		if rules {
			in.Rules, in.RulesSource = renderedRules(t, mc, ann), "rendered"
		}
		return in
	}
	inboundAnn := map[string]string{redirect.AnnotationInboundPortExclusionList: "8080"}
	cases := []struct {
		name    string
		in      RouteInput
		port    uint16
		path    Path
		status  Status
		outcome analysis.Outcome
		has     []string
	}{
		{"governed port reaches the sidecar's inbound listener", base(makeMeshConfig(ingressOn), nil, false), 8080, PathSidecar, StatusPass, OutcomeIngressBackend,
			[]string{"10.244.0.7:8080", "inbound listener on port 15003", "IngressBackend test/web admits Service ingress/gateway"}},
		{"port without an IngressBackend: mesh clients only", base(makeMeshConfig(ingressOn), nil, false), 9090, PathSidecar, StatusPass, OutcomeMeshClientsOnly,
			[]string{"no IngressBackend governs port 9090"}},
		{"excluded by the MeshConfig: the IngressBackend is not enforced", base(makeMeshConfig(ingressOn, func(s *configv1alpha2.MeshConfigSpec) {
			s.Traffic.InboundPortExclusionList = []int32{8080}
		}), nil, true), 8080, PathBypass, StatusFail, "",
			[]string{"bypasses the sidecar", "traffic.inboundPortExclusionList", "IngressBackend test/web is not enforced", "unauthenticated"}},
		{"excluded by the pod's own annotation", base(makeMeshConfig(ingressOn), inboundAnn, true), 8080, PathBypass, StatusFail, "",
			[]string{"port 8080 is in the pod's openservicemesh.io/inbound-port-exclusion-list annotation", "not enforced"}},
		{"excluded port nobody governs passes", base(makeMeshConfig(ingressOn), map[string]string{redirect.AnnotationInboundPortExclusionList: "9090"}, true), 9090, PathBypass, StatusPass, "",
			[]string{"no mesh policy applies"}},
		{"the sidecar's own metrics port", base(makeMeshConfig(ingressOn), nil, false), 15010, PathBypass, StatusPass, "",
			[]string{"sidecar's own ports"}},
		{"feature flag off: governed but not programmed", base(makeMeshConfig(), nil, false), 8080, PathSidecar, StatusWarn, OutcomeIngressBackend,
			[]string{"enableIngressBackendPolicy: false"}},
		{"objects not read make a pass a warning", func() RouteInput {
			in := base(makeMeshConfig(ingressOn), nil, false)
			in.Services, in.IngressBackends, in.PolicyUnknown = nil, nil, "offline"
			return in
		}(), 8080, PathSidecar, StatusWarn, OutcomeMeshClientsOnly, []string{"not read (offline)"}},
		{"no init container: governed port is not enforced", RouteInput{Pod: func() *corev1.Pod {
			p := makePod("web-2").Sidecar().Obj()
			p.Labels["app"] = "web"
			return p
		}(), MeshConfigRef: meshRef, Services: []corev1.Service{web}, IngressBackends: []policyv1alpha1.IngressBackend{ib}}, 8080, PathBypass, StatusFail, "",
			[]string{"pod port 8080", "no meshkeeper-init or osm-init init container", "not enforced"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := RouteInbound(tc.in, tc.port, netip.Addr{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Direction != redirect.DirectionInbound || res.Path != tc.path || res.Status != tc.status || res.Outcome != tc.outcome {
				t.Errorf("direction %s, path %s, status %s, outcome %q; want inbound, %s, %s, %q\n%s\n%v", res.Direction, res.Path, res.Status, res.Outcome,
					tc.path, tc.status, tc.outcome, res.Summary, res.Notes)
			}
			all := strings.Join(append([]string{res.Summary, res.Rule, res.Setting}, res.Notes...), "\n")
			for _, s := range tc.has {
				if !strings.Contains(all, s) {
					t.Errorf("result lacks %q:\n%s", s, all)
				}
			}
		})
	}
}

// The decision is the kernel walk of the pod's inbound chain, so a source-specific rule in the
// pod's rules is honoured.
func TestRouteInboundWalksTheRules(t *testing.T) {
	p, err := redirect.Parse([]byte("*nat\n:PREROUTING ACCEPT [0:0]\n:PROXY_INBOUND - [0:0]\n-A PREROUTING -p tcp -j PROXY_INBOUND\n-A PROXY_INBOUND -s 10.1.0.0/16 -j RETURN\n-A PROXY_INBOUND -p tcp -j REDIRECT --to-ports 15003\nCOMMIT\n"))
	if err != nil {
		t.Fatal(err)
	}
	pod := makePod("p").Sidecar().Obj()
	pod.Status.PodIP = "10.244.0.7"
	in := RouteInput{Pod: pod, MeshConfigRef: meshRef, MeshConfig: makeMeshConfig(), Rules: p, RulesSource: "dump.txt"}
	for src, want := range map[string]Path{"10.1.2.3": PathBypass, "10.2.0.1": PathSidecar} {
		res, err := RouteInbound(in, 8080, netip.MustParseAddr(src))
		if err != nil {
			t.Fatal(err)
		}
		if res.Path != want || res.Source != src {
			t.Errorf("from %s: path %s (source %q), want %s; %s", src, res.Path, res.Source, want, res.Rule)
		}
	}
}
