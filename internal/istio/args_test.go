package istio

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestParseArgs(t *testing.T) {
	cases := []struct {
		name string
		argv []string
		want func(s *Settings)
	}{
		{
			// The current injection template: pilot-agent's istio-iptables subcommand.
			name: "subcommand form",
			argv: []string{"istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
				"-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"},
			want: func(s *Settings) {
				s.OutboundIPRanges.All, s.InboundPorts.All = true, true
				s.ExcludeInboundPorts = []uint16{15090, 15021, 15020}
			},
		},
		{
			// Seed 002: the 1.0 template, flags only, image entry point istio-iptables.sh.
			name: "bare flag form",
			argv: []string{"-p", "15001", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "9080,", "-d", ""},
			want: func(s *Settings) {
				s.OutboundIPRanges.All = true
				s.InboundPorts.List = []uint16{9080}
			},
		},
		{
			name: "exclusions, inclusions and interfaces",
			argv: []string{"/usr/local/bin/pilot-agent", "istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-g", "1338",
				"-m", "TPROXY", "-i", "10.0.0.0/8, 172.16.0.0/12", "-x", "10.0.0.6/32", "-b", "8080,9090", "-d", "15090,15021,15020",
				"-q", "443", "-o", "7000,7001", "-k", "net1", "-c", "eth1", "--dual-stack", "--run-validation=false"},
			want: func(s *Settings) {
				s.ProxyGIDs = []int64{1338}
				s.Interception = redirect.InterceptTProxy
				s.OutboundIPRanges.List = prefixes("10.0.0.0/8", "172.16.0.0/12")
				s.ExcludeOutboundIPRanges = prefixes("10.0.0.6/32")
				s.InboundPorts.List = []uint16{8080, 9090}
				s.ExcludeInboundPorts = []uint16{15090, 15021, 15020}
				s.OutboundPorts = []uint16{443}
				s.ExcludeOutboundPorts = []uint16{7000, 7001}
				s.RerouteInterfaces = []string{"net1"}
				s.ExcludeInterfaces = []string{"eth1"}
				s.DualStack = true
			},
		},
		{
			name: "long names and = values",
			argv: []string{"istio-iptables", "--envoy-port=15101", "--inbound-capture-port", "15106", "--proxy-uid=1000",
				"--istio-service-cidr=*", "--istio-inbound-ports=", "--istio-local-outbound-ports-exclude=3306", "--skip-rule-apply"},
			want: func(s *Settings) {
				s.ProxyPort, s.InboundCapturePort = 15101, 15106
				s.ProxyUIDs = []int64{1000}
				s.OutboundIPRanges.All = true
				s.ExcludeOutboundPorts = []uint16{3306}
				s.SkipRuleApply = true
			},
		},
		{
			name: "IPv6 ranges",
			argv: []string{"istio-iptables", "-i", "*", "-x", "fd00::/8,10.96.0.0/12", "-b", "*"},
			want: func(s *Settings) {
				s.OutboundIPRanges.All, s.InboundPorts.All = true, true
				s.ExcludeOutboundIPRanges = prefixes("fd00::/8", "10.96.0.0/12")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.argv)
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultSettings()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseArgs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{nil, "argument 0 (\"\"): no command or args"},
		{[]string{"sh", "-c", "iptables -t nat -A OUTPUT -j RETURN"}, `argument 0 ("sh"): does not run istio-iptables`},
		{[]string{"istio-iptables", "-p"}, `argument 1 ("-p"): needs a value`},
		{[]string{"istio-iptables", "-p", "99999"}, `argument 2 ("99999"): value of -p: "99999" is not a port (1-65535)`},
		{[]string{"istio-iptables", "-x", "10.0.0.0"}, `argument 2 ("10.0.0.0"): value of -x: "10.0.0.0": must be a CIDR with a prefix length`},
		{[]string{"istio-iptables", "-x", "*"}, `value of -x: the wildcard * is not allowed in this list`},
		{[]string{"istio-iptables", "-m", "tproxy"}, `value of -m: "tproxy" is not an interception mode`},
		{[]string{"istio-iptables", "--exclude", "10.0.0.0/8"}, `argument 1 ("--exclude"): unknown istio-iptables option`},
		{[]string{"istio-iptables", "-k", "eth0;rm"}, `"eth0;rm" is not a network interface name`},
		{[]string{"istio-iptables", "--dual-stack=maybe"}, `expected true or false after =`},
		{[]string{"istio-iptables", "-u", ""}, `empty list of IDs`},
	}
	for _, tc := range cases {
		_, err := ParseArgs(tc.argv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseArgs(%q) = %v, want an error containing %q", tc.argv, err, tc.want)
		}
	}
}

func TestExclusionsOfSettings(t *testing.T) {
	s, err := ParseArgs([]string{"istio-iptables", "-u", "1337", "-i", "", "-b", "80,80", "-x", "10.0.0.10/24"})
	if err != nil {
		t.Fatal(err)
	}
	ex := s.Exclusions()
	if ex.OutboundCapture != redirect.CaptureOff || ex.InboundCapture != redirect.CaptureOn {
		t.Errorf("capture: outbound %v inbound %v, want off and on", ex.OutboundCapture, ex.InboundCapture)
	}
	if !reflect.DeepEqual(ex.InboundPortInclusions, []uint16{80}) || !reflect.DeepEqual(ex.OutboundIPRanges, prefixes("10.0.0.0/24")) {
		t.Errorf("lists not canonical: %+v", ex)
	}
	if ex.ProxyUID != 1337 || ex.ProxyGID != 1337 {
		t.Errorf("UID/GID %d/%d, want 1337/1337 (the GID defaults to the UID)", ex.ProxyUID, ex.ProxyGID)
	}
	// Reading the same settings twice never aliases the settings' own slices.
	ex.InboundPortInclusions[0] = 1
	if s.InboundPorts.List[0] != 80 {
		t.Error("Exclusions shares its slices with the settings")
	}
}
