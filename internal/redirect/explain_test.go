package redirect

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

func describeVerdict(v Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s\n", v)
	for _, s := range v.Trace {
		mark := " "
		if s.Matched {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %s #%d %s\n", mark, s.Chain, s.Index, s.Rule)
	}
	return b.String()
}

func TestExplainGolden(t *testing.T) {
	cfg := mustEffective(t, MeshSettings{
		OutboundIPRangeExclusionList:  []string{"169.254.169.254/32", "fd00:ec2::254/128"},
		OutboundPortExclusionList:     []int{6379},
		InboundPortExclusionList:      []int{9090},
		NetworkInterfaceExclusionList: []string{"net1"},
		LocalProxyMode:                "PodIP",
	}, nil)
	plan := Render(cfg)
	ap := netip.MustParseAddrPort
	cases := []struct {
		name string
		rs   *Ruleset
		pkt  Packet
		kind VerdictKind
		port uint16
	}{
		{"app-to-service", &plan.IPv4, Packet{Direction: DirectionOutbound, UID: 1000, Dst: ap("10.96.0.20:80")}, VerdictRedirect, 15001},
		{"app-to-excluded-range", &plan.IPv4, Packet{Direction: DirectionOutbound, Dst: ap("169.254.169.254:80")}, VerdictBypass, 0},
		{"app-to-excluded-port", &plan.IPv4, Packet{Direction: DirectionOutbound, Dst: ap("10.0.0.5:6379")}, VerdictBypass, 0},
		{"app-via-excluded-interface", &plan.IPv4, Packet{Direction: DirectionOutbound, Dst: ap("192.168.50.1:443"), OutInterface: "net1"}, VerdictBypass, 0},
		{"proxy-upstream", &plan.IPv4, Packet{Direction: DirectionOutbound, UID: 1500, Dst: ap("10.96.0.20:80")}, VerdictBypass, 0},
		{"proxy-to-local-app-podip", &plan.IPv4, Packet{Direction: DirectionOutbound, UID: 1500, Dst: ap("127.0.0.1:8080")}, VerdictDNAT, 0},
		{"app-to-itself", &plan.IPv4, Packet{Direction: DirectionOutbound, UID: 1000, Dst: ap("127.0.0.1:8080")}, VerdictBypass, 0},
		{"inbound", &plan.IPv4, Packet{Direction: DirectionInbound, Dst: ap("10.244.0.7:8080")}, VerdictRedirect, 15003},
		{"inbound-excluded-port", &plan.IPv4, Packet{Direction: DirectionInbound, Dst: ap("10.244.0.7:9090")}, VerdictBypass, 0},
		{"inbound-metrics", &plan.IPv4, Packet{Direction: DirectionInbound, Dst: ap("10.244.0.7:15010")}, VerdictBypass, 0},
		{"ipv6-excluded", &plan.IPv6, Packet{Direction: DirectionOutbound, Dst: ap("[fd00:ec2::254]:80")}, VerdictBypass, 0},
		{"ipv6-redirect", &plan.IPv6, Packet{Direction: DirectionOutbound, Dst: ap("[fd00:10:96::1]:443")}, VerdictRedirect, 15001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Explain(tc.rs, tc.pkt)
			if v.Kind != tc.kind || v.Port != tc.port {
				t.Errorf("verdict %s port %d, want %s port %d", v.Kind, v.Port, tc.kind, tc.port)
			}
			if tc.kind == VerdictDNAT && v.To != PodIPPlaceholder {
				t.Errorf("dnat to %q", v.To)
			}
			golden.CheckString(t, "explain-"+tc.name+".golden", describeVerdict(v))
		})
	}
}

// OSM's inclusion list: only included ranges are redirected, everything else returns.
func TestExplainOSMInclusions(t *testing.T) {
	data, err := os.ReadFile("testdata/parse-osm-v12-podip.input")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		dst  string
		want VerdictKind
	}{
		{"10.1.2.3:80", VerdictRedirect},
		{"192.168.1.1:80", VerdictRedirect},
		{"10.96.0.10:53", VerdictBypass},   // excluded before inclusions
		{"8.8.8.8:443", VerdictBypass},     // not included
		{"10.1.2.3:6379", VerdictBypass},   // excluded port
		{"172.16.0.1:8080", VerdictBypass}, // not included
	} {
		v := Explain(p.IPv4, Packet{Direction: DirectionOutbound, Dst: ap(tc.dst)})
		if v.Kind != tc.want {
			t.Errorf("%s: %s, want %s\n%s", tc.dst, v.Kind, tc.want, describeVerdict(v))
		}
	}
	// The interface exclusion was inserted with -I: it is evaluated before the port exclusions.
	v := Explain(p.IPv4, Packet{Direction: DirectionInbound, InInterface: "net1", Dst: ap("10.244.0.7:8080")})
	if v.Kind != VerdictBypass || v.Trace[len(v.Trace)-2].Index != 1 {
		t.Errorf("inbound on net1:\n%s", describeVerdict(v))
	}
}

// Duplicated jumps (init ran twice) do not change the outcome, and a missing chain ends at the
// built-in policy.
func TestExplainDuplicatesAndEmpty(t *testing.T) {
	data, _ := os.ReadFile("testdata/parse-iptables-save.input")
	p, err := parseYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	v := Explain(p.IPv4, Packet{Direction: DirectionOutbound, Dst: netip.MustParseAddrPort("1.1.1.1:443")})
	if v.Kind != VerdictBypass {
		t.Errorf("1.1.1.1: %s", describeVerdict(v))
	}
	v = Explain(p.IPv4, Packet{Direction: DirectionOutbound, Dst: netip.MustParseAddrPort("1.1.1.2:443")})
	if v.Kind != VerdictRedirect || v.Port != 15001 {
		t.Errorf("1.1.1.2: %s", describeVerdict(v))
	}
	v = Explain(&Ruleset{Family: IPv4}, Packet{Direction: DirectionOutbound, Dst: netip.MustParseAddrPort("1.1.1.2:443")})
	if v.Kind != VerdictBypass || len(v.Trace) != 1 {
		t.Errorf("empty ruleset: %s", describeVerdict(v))
	}
}

// A chain that jumps to itself must not hang.
func TestExplainLoop(t *testing.T) {
	rs := &Ruleset{Family: IPv4, Chains: []Chain{
		{Name: ChainOutput, Rules: []Rule{{Chain: ChainOutput, Target: Target{Kind: TargetJump, Chain: "LOOP"}}}},
		{Name: "LOOP", Rules: []Rule{{Chain: "LOOP", Target: Target{Kind: TargetJump, Chain: "LOOP"}}}},
	}}
	v := Explain(rs, Packet{Direction: DirectionOutbound, Dst: netip.MustParseAddrPort("1.1.1.1:1")})
	if v.Kind != VerdictBypass {
		t.Errorf("loop: %s", v.Kind)
	}
}
