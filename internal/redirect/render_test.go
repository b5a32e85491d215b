package redirect

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

func mustEffective(t testing.TB, g MeshSettings, ann map[string]string) Config {
	t.Helper()
	cfg, errs := Effective(g, ann)
	if len(errs) != 0 {
		t.Fatalf("Effective: %v", errs)
	}
	return cfg
}

func seqPorts(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

var renderCases = []struct {
	name   string
	global MeshSettings
	ann    map[string]string
}{
	{"default", MeshSettings{}, nil},
	{"exclusions", MeshSettings{
		OutboundIPRangeExclusionList: []string{"1.1.1.1/32", "2.2.2.2/24"},
		OutboundPortExclusionList:    []int{6379, 7070},
		InboundPortExclusionList:     []int{9090},
	}, map[string]string{AnnotationOutboundPortExclusionList: "8080"}},
	{"many-ports", MeshSettings{OutboundPortExclusionList: seqPorts(8000, 20), InboundPortExclusionList: seqPorts(9000, 31)}, nil},
	{"ipv6", MeshSettings{OutboundIPRangeExclusionList: []string{"fd00:10:96::/108", "10.96.0.0/12", "2001:db8::1/128"}}, nil},
	{"podip", MeshSettings{LocalProxyMode: "PodIP"}, nil},
	{"inclusions", MeshSettings{OutboundIPRangeInclusionList: []string{"10.0.0.0/8", "fd00::/8"}, OutboundIPRangeExclusionList: []string{"10.0.0.10/32"}},
		map[string]string{AnnotationOutboundIPRangeInclusionList: "192.168.0.0/16"}},
	{"inclusions-v4-only", MeshSettings{OutboundIPRangeInclusionList: []string{"10.0.0.0/8"}}, nil},
	{"interfaces", MeshSettings{NetworkInterfaceExclusionList: []string{"net1", "eth1.100"}, InboundPortExclusionList: []int{22}}, nil},
}

func describePlan(p Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# needs pod IP: %v\n# --- IPv4 (%d rules) ---\n%s# --- IPv6 (%d rules) ---\n%s",
		p.NeedsPodIP, p.IPv4.RuleCount(), p.IPv4.RestoreInput(), p.IPv6.RuleCount(), p.IPv6.RestoreInput())
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			p := Render(mustEffective(t, tc.global, tc.ann))
			golden.CheckString(t, "render-"+tc.name+".golden", describePlan(p))
			if again := Render(mustEffective(t, tc.global, tc.ann)); describePlan(again) != describePlan(p) {
				t.Error("Render is not deterministic")
			}
		})
	}
}

func TestRenderMultiportChunks(t *testing.T) {
	p := Render(mustEffective(t, MeshSettings{OutboundPortExclusionList: seqPorts(1000, 31)}, nil))
	var sizes []int
	for _, r := range p.IPv4.Chain(ChainOutbound).Rules {
		if len(r.DPorts) > 0 {
			sizes = append(sizes, len(r.DPorts))
		}
	}
	if !slices.Equal(sizes, []int{15, 15, 1}) {
		t.Errorf("multiport chunk sizes %v, want [15 15 1]", sizes)
	}
}

func TestRenderOutboundOrder(t *testing.T) {
	// OSM v1.2 order: fixed rules, interfaces, ranges, ports, then redirect.
	p := Render(mustEffective(t, MeshSettings{
		OutboundIPRangeExclusionList:  []string{"1.1.1.1/32"},
		OutboundPortExclusionList:     []int{6379},
		NetworkInterfaceExclusionList: []string{"net1"},
	}, nil))
	var got []string
	for _, r := range p.IPv4.Chain(ChainOutbound).Rules {
		got = append(got, r.String())
	}
	want := []string{
		"-A OSM_PROXY_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1500 -j OSM_PROXY_IN_REDIRECT",
		"-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner 1500 -j RETURN",
		"-A OSM_PROXY_OUTBOUND -m owner --uid-owner 1500 -j RETURN",
		"-A OSM_PROXY_OUTBOUND -d 127.0.0.1/32 -j RETURN",
		"-A OSM_PROXY_OUTBOUND -o net1 -j RETURN",
		"-A OSM_PROXY_OUTBOUND -d 1.1.1.1/32 -j RETURN",
		"-A OSM_PROXY_OUTBOUND -p tcp -m multiport --dports 6379 -j RETURN",
		"-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("outbound chain\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestInitArgs(t *testing.T) {
	p := Render(mustEffective(t, MeshSettings{}, nil))
	args := InitArgs(p)
	if len(args) != 5 || args[0] != "apply" || args[1] != "--ipv4-rules" || args[3] != "--ipv6-rules" {
		t.Fatalf("args %q", args)
	}
	if args[2] != p.IPv4.RestoreInput() || args[4] != p.IPv6.RestoreInput() {
		t.Error("rules must travel verbatim")
	}
	pp := Render(mustEffective(t, MeshSettings{LocalProxyMode: "PodIP"}, nil))
	args = InitArgs(pp)
	if len(args) != 7 || args[5] != "--pod-ip-env" || args[6] != "POD_IP" {
		t.Errorf("PodIP args %q", args[5:])
	}
	c := InitContainer(pp)
	if c.Name != "meshkeeper-init" || !slices.Equal(c.Command, []string{"/meshkeeper-init"}) || !slices.Equal(c.Args, args) {
		j, _ := json.Marshal(c)
		t.Errorf("container %s", j)
	}
	for _, a := range c.Args {
		if strings.Contains(a, "$") || strings.Contains(a, "`") {
			t.Errorf("shell syntax in args: %q", a)
		}
	}
}

func TestResolvePodIP(t *testing.T) {
	p := Render(mustEffective(t, MeshSettings{LocalProxyMode: "PodIP"}, nil))
	v4, err := ResolvePodIP(p.IPv4.RestoreInput(), IPv4, "10.244.1.7")
	if err != nil || !strings.Contains(v4, "--to-destination 10.244.1.7\n") || strings.Contains(v4, PodIPPlaceholder) {
		t.Errorf("v4: %v\n%s", err, v4)
	}
	// A single-stack IPv4 pod has no IPv6 address to rewrite to: the rule is dropped.
	v6, err := ResolvePodIP(p.IPv6.RestoreInput(), IPv6, "10.244.1.7")
	if err != nil || strings.Contains(v6, "DNAT") || !strings.Contains(v6, "COMMIT") {
		t.Errorf("v6: %v\n%s", err, v6)
	}
	v6, err = ResolvePodIP(p.IPv6.RestoreInput(), IPv6, "fd00::7")
	if err != nil || !strings.Contains(v6, "--to-destination fd00::7\n") {
		t.Errorf("v6 native: %v\n%s", err, v6)
	}
	for _, bad := range []string{"", "10.0.0.1; reboot", "$(id)", "0.0.0.0", "127.0.0.1", "fe80::1%eth0", "224.0.0.1", "10.0.0.1/32"} {
		if _, err := ResolvePodIP(p.IPv4.RestoreInput(), IPv4, bad); err == nil {
			t.Errorf("pod IP %q accepted", bad)
		}
	}
	plain := Render(mustEffective(t, MeshSettings{}, nil)).IPv4.RestoreInput()
	if got, err := ResolvePodIP(plain, IPv4, ""); err != nil || got != plain {
		t.Error("rules without the placeholder must pass unchanged, without needing a pod IP")
	}
	// The resolved text must still parse, with the real address as DNAT destination.
	parsed, err := parseYAML([]byte(v4))
	if err != nil {
		t.Fatal(err)
	}
	if to := parsed.IPv4.Chain(ChainOutput).Rules[0].Target.To; to != "10.244.1.7" {
		t.Errorf("DNAT to %q", to)
	}
}
