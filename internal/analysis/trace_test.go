package analysis

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestTrace(t *testing.T) {
	frontend := types.NamespacedName{Namespace: "shop", Name: "frontend"}
	services := []corev1.Service{
		makeService("shop", "rediscluster").clusterIP("10.96.5.5").port(7000, 7000).obj(),
		makeService("shop", "web").clusterIP("10.96.0.20").port(80, 8080).obj(),
		makeService("shop", "db").headless().port(5432, 5432).obj(),
		makeService("outside", "ignored").clusterIP("10.96.9.9").port(9000, 9000).obj(),
	}
	egresses := []policyv1alpha1.Egress{*seed003Egress().obj(),
		*makeEgress("shop", "other-sa").source("shop", "batch").ips("192.0.2.0/24").port(9000, "tcp").obj()}
	base := func(m *meshB, ann map[string]string) TraceInput {
		mesh := m.mesh()
		cfg, errs := redirect.Effective(mesh.Settings, ann)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return TraceInput{Config: cfg, ServiceAccount: frontend, Mesh: mesh, Services: services,
			Monitored: map[string]bool{"shop": true}, Egresses: egresses}
	}
	tests := []struct {
		name     string
		in       TraceInput
		dst      string
		outcome  Outcome
		collides bool
		str      []string
	}{
		{"seed 003: external Redis on the colliding port", base(makeMesh(), nil), "10.0.0.6:7000", OutcomeServiceListener, true,
			[]string{"rediscluster", "PORT COLLISION", "Egress shop/redis port 7000/tcp (10.0.0.6/32)"}},
		{"seed 003: the other Redis ports go out through the policy", base(makeMesh(), nil), "10.0.0.6:7003", OutcomeEgressPolicy, false,
			[]string{"allowed by Egress shop/redis port 7003/tcp"}},
		{"mesh Service by ClusterIP", base(makeMesh(), nil), "10.96.5.5:7000", OutcomeMeshService, false, []string{"to ClusterIP Service shop/rediscluster port 7000"}},
		{"headless listener takes any address on its port", base(makeMesh(), nil), "192.0.2.7:5432", OutcomeServiceListener, false, []string{"Headless Service shop/db"}},
		{"unmonitored Service has no listener; policy of another SA does not apply", base(makeMesh(), nil), "192.0.2.1:9000", OutcomeDenied, false, nil},
		{"open egress", base(makeMesh().egressOpen(), nil), "198.51.100.1:443", OutcomeEgressOpen, false, nil},
		{"excluded range", base(makeMesh().excludeIPs("10.0.0.0/24"), nil), "10.0.0.6:7000", OutcomeBypassed, false, []string{"inside outbound IP range exclusion 10.0.0.0/24"}},
		{"excluded port", base(makeMesh().excludePorts(7000), nil), "10.0.0.6:7000", OutcomeBypassed, false, []string{"port 7000"}},
		{"pod annotation exclusion", base(makeMesh(), map[string]string{redirect.AnnotationOutboundIPRangeExclusionList: "10.0.0.6/32"}), "10.0.0.6:7000", OutcomeBypassed, false, nil},
		{"outside inclusion list", base(makeMesh().includeIPs("10.96.0.0/12"), nil), "10.0.0.6:7000", OutcomeBypassed, false, []string{"outside the outbound IP range inclusion list"}},
		{"inside inclusion list", base(makeMesh().includeIPs("10.96.0.0/12"), nil), "10.96.0.20:80", OutcomeMeshService, false, nil},
		{"an IPv6-only inclusion list bypasses all IPv4 traffic, as the rendered rules do", base(makeMesh().includeIPs("fd00::/8"), nil), "10.0.0.6:7003", OutcomeBypassed, false, []string{"outside the outbound IP range inclusion list"}},
		{"loopback", base(makeMesh(), nil), "127.0.0.1:7000", OutcomeBypassed, false, []string{"loopback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Trace(tt.in, netip.MustParseAddrPort(tt.dst))
			if r.Outcome != tt.outcome || r.Collides() != tt.collides {
				t.Fatalf("outcome = %s collides=%v, want %s collides=%v\n%s", r.Outcome, r.Collides(), tt.outcome, tt.collides, r)
			}
			for _, s := range tt.str {
				if !strings.Contains(r.String(), s) {
					t.Errorf("%q lacks %q", r.String(), s)
				}
			}
		})
	}
}

func TestBypassOfMatchesRenderedRules(t *testing.T) {
	// The order of checks must follow the rendered chain: a range exclusion wins over a port one.
	cfg, errs := redirect.Effective(redirect.MeshSettings{OutboundIPRangeExclusionList: []string{"10.0.0.0/8"}, OutboundPortExclusionList: []int{7000}}, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	b, ok := BypassOf(cfg, netip.MustParseAddrPort("10.1.1.1:7000"))
	if !ok || b.Kind != BypassIPRangeExclusion {
		t.Fatalf("got %v %v", b, ok)
	}
	if _, ok := BypassOf(cfg, netip.MustParseAddrPort("192.0.2.1:7001")); ok {
		t.Fatal("7001 should be intercepted")
	}
}

func TestTraceUsesActualRules(t *testing.T) {
	// A pod admitted before 10.0.0.0/24 was excluded still redirects it: the rules decide.
	old, _ := redirect.Effective(redirect.MeshSettings{}, nil)
	plan := redirect.Render(old)
	cur, _ := redirect.Effective(redirect.MeshSettings{OutboundIPRangeExclusionList: []string{"10.0.0.0/24"}}, nil)
	in := TraceInput{Config: cur, Rules: &plan, ServiceAccount: types.NamespacedName{Namespace: "shop", Name: "frontend"},
		Mesh: makeMesh().mesh(), Egresses: []policyv1alpha1.Egress{*seed003Egress().obj()}}
	r := Trace(in, netip.MustParseAddrPort("10.0.0.6:7001"))
	if r.Outcome != OutcomeEgressPolicy || r.Rules.Kind != redirect.VerdictRedirect {
		t.Fatalf("got %s (%s)", r, r.Rules)
	}
	in.Rules = nil
	if r := Trace(in, netip.MustParseAddrPort("10.0.0.6:7001")); r.Outcome != OutcomeBypassed || len(r.Rules.Trace) == 0 {
		t.Fatalf("got %s (%s)", r, r.Rules)
	}
}

// BypassOf names the setting responsible for a bypass; it must never disagree with the rule walk.
func TestBypassOfAgreesWithRuleWalk(t *testing.T) {
	settings := []redirect.MeshSettings{
		{},
		{OutboundIPRangeExclusionList: []string{"10.0.0.0/8", "192.0.2.128/25"}, OutboundPortExclusionList: []int{7000, 5432}},
		{OutboundIPRangeInclusionList: []string{"10.96.0.0/12", "192.0.2.0/24"}, OutboundPortExclusionList: []int{443}},
		{OutboundIPRangeInclusionList: []string{"fd00::/8"}},
		{OutboundIPRangeExclusionList: []string{"0.0.0.0/0"}},
	}
	dsts := []string{"10.0.0.6:7000", "10.96.1.1:80", "192.0.2.1:443", "192.0.2.200:7001", "198.51.100.9:5432", "127.0.0.1:80", "[fd00::1]:80", "[2001:db8::1]:7000"}
	for _, s := range settings {
		cfg, errs := redirect.Effective(s, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		plan := redirect.Render(cfg)
		for _, d := range dsts {
			dst := netip.MustParseAddrPort(d)
			rs := &plan.IPv4
			if dst.Addr().Is6() {
				rs = &plan.IPv6
			}
			walk := redirect.Explain(rs, redirect.Packet{Direction: redirect.DirectionOutbound, Dst: dst})
			_, bypass := BypassOf(cfg, dst)
			if bypass != (walk.Kind != redirect.VerdictRedirect) {
				t.Errorf("%+v %s: BypassOf=%v, rules say %s", s, d, bypass, walk)
			}
		}
	}
}
