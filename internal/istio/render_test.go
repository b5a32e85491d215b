package istio

import (
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// TestRenderSaveIstioOrder pins the parts of istio-iptables' layout the kernel tests showed to
// decide where connections go: -q rules ahead of the range rules and never replacing -i *, and
// -k's redirects limited to the included ranges, followed by a RETURN for the interface.
func TestRenderSaveIstioOrder(t *testing.T) {
	cases := []struct {
		args []string
		want []string // in this order, among the rendered lines
		not  []string
	}{
		{
			args: []string{"istio-iptables", "-i", "*", "-q", "443,80", "-b", "*"},
			want: []string{
				"-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
				"-A ISTIO_OUTPUT -p tcp -m tcp --dport 443 -j ISTIO_REDIRECT",
				"-A ISTIO_OUTPUT -p tcp -m tcp --dport 80 -j ISTIO_REDIRECT",
				"-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
			},
		},
		{
			args: []string{"istio-iptables", "-i", "10.0.0.0/8,fd00::/8,172.16.0.0/12", "-q", "443", "-k", "eth1,eth2", "-c", "eth3", "-b", "*"},
			want: []string{
				"-A PREROUTING -d 172.16.0.0/12 -i eth2 -j ISTIO_REDIRECT",
				"-A PREROUTING -d 172.16.0.0/12 -i eth1 -j ISTIO_REDIRECT",
				"-A PREROUTING -d 10.0.0.0/8 -i eth2 -j ISTIO_REDIRECT",
				"-A PREROUTING -d 10.0.0.0/8 -i eth1 -j ISTIO_REDIRECT",
				"-A PREROUTING -i eth2 -j RETURN",
				"-A PREROUTING -i eth1 -j RETURN",
				"-A PREROUTING -i eth3 -j RETURN",
				"-A PREROUTING -p tcp -j ISTIO_INBOUND",
				"-A ISTIO_OUTPUT -p tcp -m tcp --dport 443 -j ISTIO_REDIRECT",
				"-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT",
				"-A ISTIO_OUTPUT -d 172.16.0.0/12 -j ISTIO_REDIRECT",
			},
			not: []string{"-A ISTIO_OUTPUT -j ISTIO_REDIRECT", "fd00::/8", "-A PREROUTING -i eth1 -j ISTIO_REDIRECT"},
		},
		{
			args: []string{"istio-iptables", "-i", "", "-k", "eth1", "-b", ""},
			want: []string{"-A PREROUTING -i eth1 -j RETURN", "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"},
			not:  []string{"-j ISTIO_INBOUND", "-i eth1 -j ISTIO_REDIRECT", "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"},
		},
	}
	for _, tc := range cases {
		s, err := ParseArgs(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		out := RenderSave(s, redirect.IPv4)
		lines := strings.Split(out, "\n")
		at := 0
		for _, w := range tc.want {
			found := false
			for at < len(lines) {
				at++
				if lines[at-1] == w {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%q: %q missing or out of order in\n%s", tc.args, w, out)
				break
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("%q: %q should not be rendered:\n%s", tc.args, n, out)
			}
		}
		if _, err := redirect.Parse([]byte(out)); err != nil {
			t.Errorf("%q: rendering does not parse: %v", tc.args, err)
		}
	}
}

// TestParsedIPv6 covers settings that reach the IPv6 rules (--dual-stack, or an IPv6 range):
// their rendering reads back as IPv6 rules, which Parsed keeps as the IPv6 ruleset.
func TestParsedIPv6(t *testing.T) {
	for _, argv := range [][]string{
		{"istio-iptables", "-p", "15001", "-u", "1337", "--dual-stack"},
		{"istio-iptables", "-x", "fd00::/8"},
	} {
		s, err := ParseArgs(argv)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parsed(s, "istio-init")
		if err != nil {
			t.Fatalf("%q: %v", argv, err)
		}
		if p.IPv4 == nil || p.IPv6 == nil || p.IPv4.Family != redirect.IPv4 || p.IPv6.Family != redirect.IPv6 {
			t.Fatalf("%q: IPv4 %+v, IPv6 %+v", argv, p.IPv4, p.IPv6)
		}
	}
	p, ok, err := ReadCommandLine("istio-iptables -p 15001 -u 1337 --dual-stack")
	if !ok || err != nil || p.IPv6 == nil {
		t.Fatalf("ReadCommandLine --dual-stack: ok %v, err %v, rules %+v", ok, err, p)
	}
}
