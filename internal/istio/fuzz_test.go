package istio

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// checkAccepted holds every reader's settings to the same promises: their exclusions are
// canonical (sorted, unique, ranges masked), the rules RenderSave writes for them parse back
// in both families, and Explain walks those rules without trouble.
func checkAccepted(t *testing.T, s Settings) {
	t.Helper()
	ex := s.Exclusions()
	if !reflect.DeepEqual(ex, ex.Canonical()) {
		t.Fatalf("exclusions not canonical:\n%+v\ncanonical:\n%+v", ex, ex.Canonical())
	}
	for _, ports := range [][]uint16{ex.OutboundPorts, ex.InboundPorts, ex.OutboundPortInclusions, ex.InboundPortInclusions} {
		if !strictlySorted(ports, func(a, b uint16) int { return int(a) - int(b) }) {
			t.Fatalf("ports %v not sorted and unique", ports)
		}
	}
	for _, names := range [][]string{ex.Interfaces, ex.RerouteInterfaces} {
		if !strictlySorted(names, strings.Compare) {
			t.Fatalf("interfaces %q not sorted and unique", names)
		}
	}
	for _, ranges := range [][]netip.Prefix{ex.OutboundIPRanges, ex.OutboundIPRangeInclusions} {
		for i, p := range ranges {
			if p != p.Masked() || slices.Contains(ranges[:i], p) {
				t.Fatalf("ranges %v not masked and unique", ranges)
			}
		}
	}
	for _, fam := range []redirect.Family{redirect.IPv4, redirect.IPv6} {
		text := RenderSave(s, fam)
		p, err := redirect.Parse([]byte(text))
		if err != nil {
			t.Fatalf("RenderSave for IPv%d does not parse back: %v\n%s", fam, err, text)
		}
		rs := p.IPv4
		if fam == redirect.IPv6 {
			rs = p.IPv6
		}
		if rs == nil {
			t.Fatalf("RenderSave for IPv%d parsed to no rules of that family:\n%s", fam, text)
		}
		explainSome(rs, s)
	}
	p, err := Parsed(s, "c")
	if err != nil {
		t.Fatalf("Parsed: %v", err)
	}
	if p.IPv4 == nil || (s.DualStack || hasV6(s)) != (p.IPv6 != nil) {
		t.Fatalf("Parsed: IPv4 rules %v, IPv6 rules %v, for dual stack %v", p.IPv4 != nil, p.IPv6 != nil, s.DualStack)
	}
	_ = p.Exclusions()
}

func strictlySorted[T any](s []T, cmp func(a, b T) int) bool {
	for i := 1; i < len(s); i++ {
		if cmp(s[i-1], s[i]) >= 0 {
			return false
		}
	}
	return true
}

// explainSome walks a few connections the settings name, in both directions, as the proxy and
// as the application.
func explainSome(rs *redirect.Ruleset, s Settings) {
	dsts := []netip.Addr{netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fd00::6")}
	for _, r := range append(slices.Clone(s.ExcludeOutboundIPRanges), s.OutboundIPRanges.List...) {
		dsts = append(dsts, r.Addr())
	}
	ports := append([]uint16{80, 15008}, s.ExcludeOutboundPorts...)
	ports = append(ports, s.OutboundPorts...)
	ports = append(ports, s.ExcludeInboundPorts...)
	for _, d := range dsts[:min(len(dsts), 8)] {
		for _, port := range ports[:min(len(ports), 8)] {
			for _, dir := range []redirect.Direction{redirect.DirectionOutbound, redirect.DirectionInbound} {
				for _, uid := range []uint32{0, uint32(DefaultProxyUID)} {
					v := redirect.Explain(rs, redirect.Packet{Direction: dir, UID: uid, Dst: netip.AddrPortFrom(d, port)})
					if v.Kind == redirect.VerdictRedirect && v.Port == 0 {
						panic("redirect to port 0")
					}
				}
			}
		}
	}
	for _, iface := range append(slices.Clone(s.RerouteInterfaces), s.ExcludeInterfaces...) {
		_ = redirect.Explain(rs, redirect.Packet{Direction: redirect.DirectionInbound, InInterface: iface, Dst: netip.MustParseAddrPort("10.0.0.5:80")})
		_ = redirect.Explain(rs, redirect.Packet{Direction: redirect.DirectionOutbound, OutInterface: iface, Dst: netip.MustParseAddrPort("10.0.0.6:80")})
	}
}

// argvSep separates the arguments of one fuzz input: a NUL never appears in a real argument.
const argvSep = "\x00"

// FuzzParseArgs: any argument list either reads as istio-iptables settings or yields an
// *ArgError pointing into the list; never a panic. What is read holds to checkAccepted.
func FuzzParseArgs(f *testing.F) {
	for _, argv := range [][]string{
		{"istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"},
		{"-p", "15001", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "9080,", "-d", ""},
		{"/usr/local/bin/pilot-agent", "istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-g", "1338",
			"-m", "TPROXY", "-i", "10.0.0.0/8, 172.16.0.0/12", "-x", "10.0.0.6/32", "-b", "8080,9090", "-d", "15090,15021,15020",
			"-q", "443", "-o", "7000,7001", "-k", "net1", "-c", "eth1", "--dual-stack", "--run-validation=false"},
		{"istio-iptables", "--envoy-port=15002", "--proxy-uid=1,2", "--proxy-gid=3", "--istio-service-cidr=fd00::/8,10.0.0.1/8", "-q", "443,443,80", "-o", "80,80"},
		{"istio-iptables", "-i", "", "-b", "", "-k", "eth1,eth1", "-c", "eth1", "--skip-rule-apply"},
		{"istio-iptables", "-p"},
		{"pilot-agent", "proxy"},
	} {
		f.Add(strings.Join(argv, argvSep))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var argv []string
		if joined != "" {
			argv = strings.Split(joined, argvSep)
		}
		s, err := ParseArgs(argv)
		if err != nil {
			var ae *ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *ArgError: %v", err, err)
			}
			if ae.Index < 0 || ae.Index > len(argv) || (ae.Index < len(argv) && ae.Arg != argv[ae.Index]) || ae.Msg == "" {
				t.Fatalf("error %+v does not point into %q", ae, argv)
			}
			return
		}
		if s.ProxyPort == 0 || s.InboundCapturePort == 0 || len(s.ProxyUIDs) == 0 {
			t.Fatalf("accepted settings without a proxy port or UID: %+v", s)
		}
		checkAccepted(t, s)
	})
}

// FuzzParseValues: any ConfigMap values key is read or refused with an error naming the key,
// never a panic; what is read yields, through Expected and ExpectedCNI, settings that hold to
// checkAccepted whenever those report no error.
func FuzzParseValues(f *testing.F) {
	f.Add(`{"global":{"proxy":{"includeIPRanges":"*","excludeIPRanges":"10.0.0.0/24","includeInboundPorts":"*","excludeOutboundPorts":7000,"statusPort":15020}}}`)
	f.Add(`{"global":{"proxy":{"includeIPRanges":"10.0.0.0/8,fd00::/8","includeOutboundPorts":"443,80","excludeInboundPorts":"8443","interceptionMode":"TPROXY"}},"pilot":{"cni":{"enabled":true}}}`)
	f.Add(`{"global":{"proxy":{"statusPort":0,"includeInboundPorts":"","excludeIPRanges":null}},"pilot":{"cni":{"enabled":"false"}}}`)
	f.Add(`{"global":{"proxy":{"excludeIPRanges":["10.0.0.0/8"]}}}`)
	f.Add(`{"global":{"proxy":[]}}`)
	f.Add(`{"global":{"proxy":{"statusPort":1e400}}}`)
	f.Add("")
	f.Add("{")
	if data, err := os.ReadFile(filepath.Join("..", "analysis", "testdata", "istio-seed003-objects.yaml")); err == nil {
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, data string) {
		v, err := ParseValues(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), InjectorValuesKey) && !strings.HasPrefix(err.Error(), "key "+InjectorValuesKey) {
				t.Fatalf("error does not name the key: %v", err)
			}
			return
		}
		if d, errs := Expected(v, nil, DefaultProxyUID); len(errs) == 0 {
			checkAccepted(t, d.Settings)
			if !reflect.DeepEqual(d.Exclusions(), d.Settings.Exclusions()) {
				t.Fatal("Desired.Exclusions differs from its settings'")
			}
		}
		if d, errs := ExpectedCNI(v, nil, DefaultProxyUID); len(errs) == 0 {
			checkAccepted(t, d.Settings)
		}
	})
}

// FuzzCNISettings: any annotations and proxy UID are read as the istio-cni plugin reads them,
// or refused with an *AnnotationError naming one of them; never a panic.
func FuzzCNISettings(f *testing.F) {
	f.Add("*", "", "*", "15020", "", "15020", "REDIRECT", "", "", int64(1337))
	f.Add("10.0.0.0/8,fd00::/8", "10.0.0.6/32", "8080,9090", "", "443", "7000,7001", "TPROXY", "net1", "eth1", int64(2000))
	f.Add("", "", "", "", "", "", "", "eth1,eth1", "", int64(0))
	f.Add("*", "*", "70000", ",,", "a", "0", "redirect", "eth0 eth1", "-c", int64(-1))
	f.Fuzz(func(t *testing.T, incRanges, excRanges, incIn, excIn, incOut, excOut, mode, reroute, excIfaces string, uid int64) {
		ann := map[string]string{
			AnnotationIncludeOutboundIPRanges: incRanges,
			AnnotationExcludeOutboundIPRanges: excRanges,
			AnnotationIncludeInboundPorts:     incIn,
			AnnotationExcludeInboundPorts:     excIn,
			AnnotationIncludeOutboundPorts:    incOut,
			AnnotationExcludeOutboundPorts:    excOut,
			AnnotationInterceptionMode:        mode,
			AnnotationRerouteInterfaces:       reroute,
			AnnotationExcludeInterfaces:       excIfaces,
		}
		// Annotations the pod leaves out take the plugin's defaults; an empty fuzz value stands
		// for a missing one half the time.
		if uid%2 == 0 {
			for k, v := range ann {
				if v == "" {
					delete(ann, k)
				}
			}
		}
		s, err := CNISettings(ann, uid)
		if err != nil && (uid < 0 || uid > MaxID) {
			if !strings.Contains(err.Error(), "proxy UID") {
				t.Fatalf("UID %d refused with %v", uid, err)
			}
			return
		}
		if err != nil {
			var ae *AnnotationError
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *AnnotationError: %v", err, err)
			}
			if _, ok := ann[ae.Key]; ae.Key != "" && !ok && ae.Key != AnnotationKubevirtInterfaces {
				t.Fatalf("error names %s, which the pod does not carry: %v", ae.Key, err)
			}
			return
		}
		checkAccepted(t, s)
	})
}

// FuzzReadCommandLine: any pasted line is recognised as an istio-iptables command or not,
// never a panic; what is read has canonical exclusions and rules Explain walks.
func FuzzReadCommandLine(f *testing.F) {
	f.Add(`istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020`)
	f.Add(`/usr/local/bin/pilot-agent istio-iptables -p 15001 -z 15006 -u 1337 -m TPROXY -i 10.0.0.0/8 -x 10.0.0.6/32 -b 8080 -q 443 -o 7000 -k net1 -c eth1 --dual-stack`)
	f.Add(`-p 15001 -u 1337 -m REDIRECT -i '*' -x "" -b 9080, -d ""`)
	f.Add(`istio-iptables -p 15001 && rm -rf /`)
	f.Add(`istio-iptables -p "15001`)
	f.Add("-p 1 -x")
	f.Fuzz(func(t *testing.T, line string) {
		p, ok, err := ReadCommandLine(line)
		if !ok {
			if p != nil || err != nil {
				t.Fatalf("not recognised, yet rules %v or error %v", p != nil, err)
			}
			return
		}
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with rules", err)
			}
			return
		}
		if p == nil || p.IPv4 == nil {
			t.Fatal("recognised and read, but no IPv4 rules")
		}
		ex := p.Exclusions()
		if !reflect.DeepEqual(ex, ex.Canonical()) {
			t.Fatalf("exclusions not canonical: %+v", ex)
		}
		for _, rs := range []*redirect.Ruleset{p.IPv4, p.IPv6} {
			if rs == nil {
				continue
			}
			for _, dir := range []redirect.Direction{redirect.DirectionOutbound, redirect.DirectionInbound} {
				_ = redirect.Explain(rs, redirect.Packet{Direction: dir, Dst: netip.MustParseAddrPort("10.0.0.6:7000")})
				_ = redirect.Explain(rs, redirect.Packet{Direction: dir, UID: uint32(DefaultProxyUID), Dst: netip.MustParseAddrPort("[fd00::6]:443")})
			}
		}
	})
}
