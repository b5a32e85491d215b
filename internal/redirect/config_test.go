package redirect

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errStrings(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func TestEffectiveErrors(t *testing.T) {
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	manyPorts := make([]int, MaxPorts+1)
	for i := range manyPorts {
		manyPorts[i] = i + 1
	}
	cases := []struct {
		name   string
		global MeshSettings
		ann    map[string]string
		want   []string // substrings, one per expected error, in order
	}{
		{"global port too big", MeshSettings{OutboundPortExclusionList: []int{80, 443, 70000}},
			nil, []string{"spec.traffic.outboundPortExclusionList[2]: Invalid value: 70000: port must be between 1 and 65535"}},
		{"global port zero", MeshSettings{InboundPortExclusionList: []int{0}},
			nil, []string{"spec.traffic.inboundPortExclusionList[0]: Invalid value: 0: port must be between 1 and 65535"}},
		{"global negative port", MeshSettings{InboundPortExclusionList: []int{8080, -1}},
			nil, []string{"spec.traffic.inboundPortExclusionList[1]: Invalid value: -1"}},
		{"global bad CIDR", MeshSettings{OutboundIPRangeExclusionList: []string{"10.0.0.0/8", "999.1.1.1/32"}},
			nil, []string{`spec.traffic.outboundIPRangeExclusionList[1]: Invalid value: "999.1.1.1/32": must be a valid IPv4 or IPv6 CIDR`}},
		{"global CIDR without length", MeshSettings{OutboundIPRangeInclusionList: []string{"10.0.0.1"}},
			nil, []string{`spec.traffic.outboundIPRangeInclusionList[0]: Invalid value: "10.0.0.1": must be a CIDR with a prefix length`}},
		{"global CIDR shell injection", MeshSettings{OutboundIPRangeExclusionList: []string{"$(reboot)1.1.1.1/32"}},
			nil, []string{`spec.traffic.outboundIPRangeExclusionList[0]: Invalid value: "$(reboot)1.1.1.1/32"`}},
		{"global 4in6", MeshSettings{OutboundIPRangeExclusionList: []string{"::ffff:10.0.0.0/104"}},
			nil, []string{"IPv4-mapped IPv6 ranges are not supported"}},
		{"global prefix too long", MeshSettings{OutboundIPRangeExclusionList: []string{"10.0.0.0/33"}},
			nil, []string{"outboundIPRangeExclusionList[0]"}},
		{"interface injection", MeshSettings{NetworkInterfaceExclusionList: []string{"eth0", "$(id)"}},
			nil, []string{`spec.traffic.networkInterfaceExclusionList[1]: Invalid value: "$(id)": interface name must be`}},
		{"interface too long", MeshSettings{NetworkInterfaceExclusionList: []string{"abcdefghijklmnop"}},
			nil, []string{"networkInterfaceExclusionList[0]"}},
		{"interface dot", MeshSettings{NetworkInterfaceExclusionList: []string{".."}},
			nil, []string{"networkInterfaceExclusionList[0]"}},
		{"interface empty", MeshSettings{NetworkInterfaceExclusionList: []string{""}},
			nil, []string{"networkInterfaceExclusionList[0]"}},
		{"mode", MeshSettings{LocalProxyMode: "podip"},
			nil, []string{`spec.sidecar.localProxyMode: Unsupported value: "podip": supported values: "Localhost", "PodIP"`}},
		{"too many ranges", MeshSettings{OutboundIPRangeExclusionList: many(MaxIPRanges+1, func(i int) string { return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}).String() + "/24" })},
			nil, []string{"spec.traffic.outboundIPRangeExclusionList: Too many: 257: must have at most 256 items"}},
		{"too many ports", MeshSettings{OutboundPortExclusionList: manyPorts},
			nil, []string{"spec.traffic.outboundPortExclusionList: Too many"}},
		{"too many interfaces", MeshSettings{NetworkInterfaceExclusionList: many(MaxInterfaces+1, func(i int) string { return "eth" + strings.Repeat("x", i%10) })},
			nil, []string{"spec.traffic.networkInterfaceExclusionList: Too many"}},
		{"annotation port too big", MeshSettings{},
			map[string]string{AnnotationOutboundPortExclusionList: "8080, 70000"},
			[]string{`metadata.annotations[openservicemesh.io/outbound-port-exclusion-list]: Invalid value: "70000": "70000": port must be between 1 and 65535`}},
		{"annotation port not a number", MeshSettings{},
			map[string]string{AnnotationInboundPortExclusionList: "http"},
			[]string{`metadata.annotations[openservicemesh.io/inbound-port-exclusion-list]: Invalid value: "http": "http": port must be a decimal number`}},
		{"annotation empty element", MeshSettings{},
			map[string]string{AnnotationInboundPortExclusionList: "80,,90"},
			[]string{"empty element in comma-separated list"}},
		{"annotation bad CIDR", MeshSettings{},
			map[string]string{AnnotationOutboundIPRangeExclusionList: "1.1.1.1/32,1.1.1.1/40"},
			[]string{`metadata.annotations[openservicemesh.io/outbound-ip-range-exclusion-list]: Invalid value: "1.1.1.1/40": "1.1.1.1/40": must be a valid`}},
		{"annotation bad inclusion", MeshSettings{},
			map[string]string{AnnotationOutboundIPRangeInclusionList: "example.com"},
			[]string{`metadata.annotations[openservicemesh.io/outbound-ip-range-inclusion-list]: Invalid value: "example.com"`}},
		{"annotation too long", MeshSettings{},
			map[string]string{AnnotationOutboundPortExclusionList: strings.Repeat("1,", MaxAnnotationBytes)},
			[]string{"metadata.annotations[openservicemesh.io/outbound-port-exclusion-list]: Too long"}},
		{"merged too many ports", MeshSettings{OutboundPortExclusionList: manyPorts[:MaxPorts]},
			map[string]string{AnnotationOutboundPortExclusionList: "60000"},
			[]string{"spec.traffic.outboundPortExclusionList: Too many: 257"}},
		{"several errors reported together", MeshSettings{OutboundPortExclusionList: []int{70000}, NetworkInterfaceExclusionList: []string{"a b"}},
			map[string]string{AnnotationInboundPortExclusionList: "0"},
			[]string{"outboundPortExclusionList[0]", "networkInterfaceExclusionList[0]", "inbound-port-exclusion-list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := Effective(tc.global, tc.ann)
			got := errStrings(errs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors %q, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestEffectiveMerge(t *testing.T) {
	cfg, errs := Effective(MeshSettings{
		OutboundIPRangeExclusionList:  []string{"10.0.0.0/8", " 2.2.2.2/24 ", "fd00::1/64"},
		OutboundIPRangeInclusionList:  []string{"192.168.0.0/16"},
		OutboundPortExclusionList:     []int{6379, 7070, 6379},
		InboundPortExclusionList:      []int{9000},
		NetworkInterfaceExclusionList: []string{"net1", "net1", "eth1"},
		LocalProxyMode:                "PodIP",
	}, map[string]string{
		AnnotationOutboundIPRangeExclusionList: "1.1.1.1/32, 10.1.2.3/8,FD00::/64",
		AnnotationOutboundIPRangeInclusionList: "172.16.0.0/12",
		AnnotationOutboundPortExclusionList:    " 8080 ,7070",
		AnnotationInboundPortExclusionList:     "",
		"unrelated":                            "x",
	})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	pfx := func(ss ...string) []netip.Prefix {
		out := make([]netip.Prefix, len(ss))
		for i, s := range ss {
			out[i] = netip.MustParsePrefix(s)
		}
		return out
	}
	// IP ranges: pod first, then global; duplicates by meaning (10.1.2.3/8 == 10.0.0.0/8).
	if want := pfx("1.1.1.1/32", "10.0.0.0/8", "fd00::/64", "2.2.2.0/24"); !slices.Equal(cfg.OutboundIPRangeExclusions, want) {
		t.Errorf("exclusions %v, want %v", cfg.OutboundIPRangeExclusions, want)
	}
	if want := pfx("172.16.0.0/12", "192.168.0.0/16"); !slices.Equal(cfg.OutboundIPRangeInclusions, want) {
		t.Errorf("inclusions %v, want %v", cfg.OutboundIPRangeInclusions, want)
	}
	// Ports: global first, then pod.
	if want := []uint16{6379, 7070, 8080}; !slices.Equal(cfg.OutboundPortExclusions, want) {
		t.Errorf("outbound ports %v, want %v", cfg.OutboundPortExclusions, want)
	}
	if want := []uint16{9000}; !slices.Equal(cfg.InboundPortExclusions, want) {
		t.Errorf("inbound ports %v, want %v", cfg.InboundPortExclusions, want)
	}
	if want := []string{"net1", "eth1"}; !slices.Equal(cfg.NetworkInterfaceExclusions, want) {
		t.Errorf("interfaces %v, want %v", cfg.NetworkInterfaceExclusions, want)
	}
	if cfg.LocalProxyMode != LocalProxyModePodIP || cfg.ProxyUID != 1500 || cfg.OutboundListenerPort != 15001 ||
		cfg.InboundListenerPort != 15003 || cfg.AdminPort != 15000 || cfg.MetricsPort != 15010 || cfg.HealthcheckPort != 15904 ||
		!slices.Equal(cfg.ProbePorts, []uint16{15901, 15902, 15903}) {
		t.Errorf("fixed facts wrong: %+v", cfg)
	}
}

func TestEffectiveDefaults(t *testing.T) {
	cfg, errs := Effective(MeshSettings{}, nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if cfg.LocalProxyMode != LocalProxyModeLocalhost || len(cfg.OutboundIPRangeExclusions) != 0 || len(cfg.InboundPortExclusions) != 0 {
		t.Errorf("unexpected defaults %+v", cfg)
	}
}

func TestValidateSettingsAndAnnotations(t *testing.T) {
	errs := ValidateSettings(MeshSettings{OutboundPortExclusionList: []int{1, 65536}}, field.NewPath("spec"))
	if len(errs) != 1 || errs[0].Field != "spec.traffic.outboundPortExclusionList[1]" {
		t.Errorf("got %v", errs)
	}
	errs = ValidateSettings(MeshSettings{LocalProxyMode: "Sidecar"}, nil)
	if len(errs) != 1 || errs[0].Field != "spec.sidecar.localProxyMode" {
		t.Errorf("got %v", errs)
	}
	if errs := ValidateSettings(MeshSettings{OutboundIPRangeExclusionList: []string{"::/0"}}, nil); len(errs) != 0 {
		t.Errorf("::/0 is legal (a warning, not an error): %v", errs)
	}
	errs = ValidateAnnotations(map[string]string{
		AnnotationOutboundPortExclusionList:    "1,2",
		AnnotationOutboundIPRangeExclusionList: "bogus",
		"openservicemesh.io/sidecar-injection": "enabled",
	})
	if len(errs) != 1 || errs[0].Field != "metadata.annotations[openservicemesh.io/outbound-ip-range-exclusion-list]" {
		t.Errorf("got %v", errs)
	}
	if !strings.Contains(errs[0].Detail, `"bogus"`) {
		t.Errorf("detail should name the element: %q", errs[0].Detail)
	}
}

func TestDigest(t *testing.T) {
	a, _ := Effective(MeshSettings{OutboundPortExclusionList: []int{7070, 6379}, OutboundIPRangeExclusionList: []string{"2.2.2.0/24", "1.1.1.1/32"}}, nil)
	b, _ := Effective(MeshSettings{OutboundPortExclusionList: []int{6379}, OutboundIPRangeExclusionList: []string{"1.1.1.1/32"}},
		map[string]string{AnnotationOutboundPortExclusionList: "7070", AnnotationOutboundIPRangeExclusionList: "2.2.2.9/24"})
	if a.Digest() != b.Digest() {
		t.Errorf("same sets, different digests: %s %s", a.Digest(), b.Digest())
	}
	if len(a.Digest()) != 16 {
		t.Errorf("digest %q should be 16 hex characters", a.Digest())
	}
	c, _ := Effective(MeshSettings{OutboundPortExclusionList: []int{6379}, InboundPortExclusionList: []int{7070}, OutboundIPRangeExclusionList: []string{"2.2.2.0/24", "1.1.1.1/32"}}, nil)
	if a.Digest() == c.Digest() {
		t.Error("moving a port from outbound to inbound must change the digest")
	}
	d, _ := Effective(MeshSettings{OutboundPortExclusionList: []int{7070, 6379}, OutboundIPRangeExclusionList: []string{"2.2.2.0/24", "1.1.1.1/32"}, LocalProxyMode: "PodIP"}, nil)
	if a.Digest() == d.Digest() {
		t.Error("local proxy mode must change the digest")
	}
}

func TestWarnings(t *testing.T) {
	cfg, errs := Effective(MeshSettings{
		OutboundIPRangeExclusionList: []string{"0.0.0.0/0", "10.0.0.0/8", "8.8.8.8/32"},
		OutboundIPRangeInclusionList: []string{"10.244.0.0/16"},
	}, nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	ws := Warnings(cfg, ClusterRanges{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
		PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	})
	var codes []string
	for _, w := range ws {
		codes = append(codes, w.Code+" "+w.Value)
		if w.Field == "" || w.Message == "" {
			t.Errorf("incomplete warning %+v", w)
		}
	}
	want := []string{
		"CaptureDisabled 0.0.0.0/0",
		"ExclusionOverlapsServiceCIDR 10.0.0.0/8",
		"ExclusionOverlapsPodCIDR 10.0.0.0/8",
		"InclusionListBypass 10.244.0.0/16",
		"InclusionMissesServiceCIDR 10.96.0.0/12",
	}
	if !slices.Equal(codes, want) {
		t.Errorf("warnings\n%q\nwant\n%q", codes, want)
	}
	v6, _ := Effective(MeshSettings{OutboundIPRangeExclusionList: []string{"::/0"}}, nil)
	if ws := Warnings(v6, ClusterRanges{}); len(ws) != 1 || ws[0].Code != WarnCaptureDisabled || !strings.Contains(ws[0].Message, "IPv6") {
		t.Errorf("::/0: %+v", ws)
	}
	clean, _ := Effective(MeshSettings{OutboundIPRangeExclusionList: []string{"8.8.8.8/32"}}, nil)
	if ws := Warnings(clean, ClusterRanges{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}}); len(ws) != 0 {
		t.Errorf("no warning expected, got %+v", ws)
	}
}

// TestEffectiveSources: every merged value says who listed it and how, so reports need not read
// the MeshConfig or the annotations a second time.
func TestEffectiveSources(t *testing.T) {
	cfg, errs := Effective(MeshSettings{
		OutboundIPRangeExclusionList: []string{" 10.0.0.10/24", "192.168.0.0/16"},
		InboundPortExclusionList:     []int{9090, 70000},
	}, map[string]string{
		AnnotationOutboundIPRangeExclusionList: "10.0.0.0/24, 172.16.1.1/16",
		AnnotationInboundPortExclusionList:     "9090,8080",
		AnnotationOutboundPortExclusionList:    "443",
	})
	if len(errs) != 1 {
		t.Fatalf("errs = %v, want only the port 70000", errs)
	}
	mesh := func(list string) string { return "spec.traffic." + list }
	tests := []struct {
		list, value string
		want        Source
	}{
		{ListOutboundIPRangeExclusions, "10.0.0.0/24", Source{MeshConfigField: mesh(ListOutboundIPRangeExclusions), Annotation: AnnotationOutboundIPRangeExclusionList, Spelled: "10.0.0.10/24"}},
		{ListOutboundIPRangeExclusions, "192.168.0.0/16", Source{MeshConfigField: mesh(ListOutboundIPRangeExclusions), Spelled: "192.168.0.0/16"}},
		{ListOutboundIPRangeExclusions, "172.16.0.0/16", Source{Annotation: AnnotationOutboundIPRangeExclusionList, Spelled: "172.16.1.1/16"}},
		{ListInboundPortExclusions, "9090", Source{MeshConfigField: mesh(ListInboundPortExclusions), Annotation: AnnotationInboundPortExclusionList, Spelled: "9090"}},
		{ListInboundPortExclusions, "8080", Source{Annotation: AnnotationInboundPortExclusionList, Spelled: "8080"}},
		{ListInboundPortExclusions, "70000", Source{}},
		{ListOutboundPortExclusions, "443", Source{Annotation: AnnotationOutboundPortExclusionList, Spelled: "443"}},
		{ListOutboundPortExclusions, "9090", Source{}},
	}
	for _, tt := range tests {
		if got := cfg.SourceOf(tt.list, tt.value); got != tt.want {
			t.Errorf("SourceOf(%s, %s) = %+v, want %+v", tt.list, tt.value, got, tt.want)
		}
	}
	if got := cfg.PortSource(ListInboundPortExclusions, 8080); !got.Known() {
		t.Errorf("PortSource(8080) = %+v, want the annotation", got)
	}
	if got := cfg.PrefixSource(ListOutboundIPRangeExclusions, netip.MustParsePrefix("172.16.0.0/16")); got.Spelled != "172.16.1.1/16" {
		t.Errorf("PrefixSource spelled %q, want the annotation's spelling", got.Spelled)
	}
}
