package istio_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/istio"
	"github.com/meshkeeper/meshkeeper/internal/netnstest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// These tests load the nat table istio-iptables writes (as RenderSave renders it, and seed 003's
// own iptables-save) into real network namespaces with iptables-restore and open real TCP
// connections. They run as root in CI and skip elsewhere. Every address belongs to a
// documentation or private range and only exists inside the namespaces the test creates.
//
// The pod namespace holds the proxy's two listeners, stand-ins for Envoy (no Envoy runs here:
// whatever accepts on 15001 and 15006 is what Envoy would have been handed), and the
// application's listeners; the peer namespace holds the destinations.

var kernelTools = []string{"iptables-restore", "iptables-save"}

const (
	envoyOutbound = "envoy-outbound-stand-in:15001"
	envoyInbound  = "envoy-inbound-stand-in:15006"
)

// The pod's and the peer's addresses. 192.0.2.0/24 is the pod network, 198.51.100.0/24 and
// 203.0.113.0/24 stand for two other destinations (a range excluded with -x, a range left out
// of -i), 10.0.0.0/24 is seed 003's cluster network.
var (
	labPodAddrs  = []string{"192.0.2.1/24", "198.51.100.1/24", "203.0.113.1/24", "10.0.0.5/24"}
	labPeerAddrs = []string{"192.0.2.2/24", "192.0.2.200/24", "198.51.100.2/24", "203.0.113.2/24", "10.0.0.6/24"}
)

type kernelLab struct {
	pod, peer *netnstest.NS
	// vm, when set, is joined to the pod by net1, as a KubeVirt virtual machine is (-k).
	vm       *netnstest.NS
	podAddrs map[netip.Addr]bool
}

// newKernelLab creates the pod and peer namespaces joined by eth0 <-> eth0, Envoy's stand-ins
// on 15001 and 15006 and the application's ports in the pod, and a destination listener on
// each peer port.
func newKernelLab(t *testing.T, appPorts, peerPorts []int) *kernelLab {
	t.Helper()
	l := &kernelLab{pod: netnstest.New(t), peer: netnstest.New(t), podAddrs: map[netip.Addr]bool{}}
	netnstest.Link(t, l.pod, "eth0", labPodAddrs, l.peer, "eth0", labPeerAddrs)
	for _, a := range labPodAddrs {
		l.podAddrs[netip.MustParsePrefix(a).Addr()] = true
	}
	l.pod.Listen(envoyOutbound, "tcp", ":15001")
	l.pod.Listen(envoyInbound, "tcp", ":15006")
	for _, p := range appPorts {
		l.pod.Listen(appName(p), "tcp", ":"+strconv.Itoa(p))
	}
	for _, p := range peerPorts {
		l.peer.Listen(destName(p), "tcp", ":"+strconv.Itoa(p))
	}
	return l
}

// addVM joins a third namespace to the pod by net1 (172.16.0.0/24) and routes the pod's
// 10.0.0.0/24 address through it, the way a virtual machine behind the pod reaches the network.
func (l *kernelLab) addVM(t *testing.T) {
	t.Helper()
	l.vm = netnstest.New(t)
	netnstest.Link(t, l.pod, "net1", []string{"172.16.0.1/24"}, l.vm, "eth0", []string{"172.16.0.2/24"})
	l.vm.MustRun("ip", "route", "add", "10.0.0.0/24", "via", "172.16.0.1")
	l.podAddrs[netip.MustParseAddr("172.16.0.1")] = true
}

func appName(port int) string  { return "app:" + strconv.Itoa(port) }
func destName(port int) string { return "destination:" + strconv.Itoa(port) }

// conn is one real connection and the listener it must land on.
type conn struct {
	dir  redirect.Direction
	dst  netip.AddrPort
	uid  int // -1: the application (root)
	want string
	why  string
	// fromVM: inbound from the virtual machine behind net1 rather than from the peer on eth0.
	fromVM bool
}

func (c conn) String() string {
	s := fmt.Sprintf("%s %s", c.dir, c.dst)
	if c.fromVM {
		s += " via net1"
	}
	if c.uid >= 0 {
		s += " as uid " + strconv.Itoa(c.uid)
	}
	return s + " (" + c.why + ")"
}

func outbound(dst, want, why string) conn {
	return conn{dir: redirect.DirectionOutbound, dst: netip.MustParseAddrPort(dst), uid: -1, want: want, why: why}
}

func inbound(dst, want, why string) conn {
	return conn{dir: redirect.DirectionInbound, dst: netip.MustParseAddrPort(dst), uid: -1, want: want, why: why}
}

func viaVM(c conn) conn { c.fromVM = true; return c }

// fromProxy opens the connection as the proxy's UID (1337).
func fromProxy(c conn) conn { c.uid = int(istio.DefaultProxyUID); return c }

// landing is one connection's outcome, for the report the test logs.
type landing struct {
	conn
	got, predicted string
}

// check opens c for real and compares where the kernel sent it with the expectation and with
// what redirect.Explain predicts from rs, the rules read back from the kernel.
func (l *kernelLab) check(t *testing.T, rs *redirect.Ruleset, c conn) landing {
	t.Helper()
	from := l.pod
	if c.dir == redirect.DirectionInbound {
		from = l.peer
		if c.fromVM {
			from = l.vm
		}
	}
	var opts []netnstest.DialOption
	if c.uid >= 0 {
		opts = append(opts, netnstest.AsUID(c.uid))
	}
	got, err := from.Dial(c.dst.String(), opts...)
	if err != nil {
		got = "error: " + err.Error()
	}
	if got != c.want {
		t.Errorf("%s: the kernel sent it to %q, want %q", c, got, c.want)
	}
	pkt := redirect.Packet{Direction: c.dir, Dst: c.dst}
	if c.uid >= 0 {
		pkt.UID = uint32(c.uid)
	}
	local := c.dir == redirect.DirectionInbound || l.podAddrs[c.dst.Addr()] || c.dst.Addr().IsLoopback()
	if c.dir == redirect.DirectionOutbound && local {
		// The kernel routes a connection to the pod's own address over the loopback interface.
		pkt.OutInterface = "lo"
	}
	if c.fromVM {
		pkt.InInterface = "net1"
	}
	v := redirect.Explain(rs, pkt)
	var predicted string
	switch v.Kind {
	case redirect.VerdictRedirect:
		predicted = map[uint16]string{15001: envoyOutbound, 15006: envoyInbound}[v.Port]
		if predicted == "" {
			predicted = "redirect to " + strconv.Itoa(int(v.Port))
		}
	case redirect.VerdictBypass:
		predicted = destName(int(c.dst.Port()))
		if local {
			predicted = appName(int(c.dst.Port()))
		}
	default:
		predicted = string(v.Kind)
	}
	if predicted != got {
		t.Errorf("%s: Explain predicts %q (%s), the kernel sent it to %q", c, predicted, v.Kind, got)
	}
	return landing{conn: c, got: got, predicted: predicted}
}

var counters = regexp.MustCompile(`\[[0-9]+:[0-9]+\]`)

// kernelNat is the nat table as iptables-save prints it, without comments and counters.
func kernelNat(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(ns.MustRun("iptables-save", "-t", "nat"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b.WriteString(counters.ReplaceAllString(line, "[0:0]"))
		b.WriteByte('\n')
	}
	return b.String()
}

// load replaces the pod's nat table with rules and returns what the kernel holds, parsed back.
func (l *kernelLab) load(t *testing.T, rules string) *redirect.Ruleset {
	t.Helper()
	if _, err := l.pod.Exec([]byte(rules), "iptables-restore"); err != nil {
		t.Fatalf("iptables-restore: %v\n%s", err, rules)
	}
	saved := kernelNat(t, l.pod)
	parsed, err := redirect.Parse([]byte(saved))
	if err != nil {
		t.Fatalf("Parse of the kernel's iptables-save: %v\n%s", err, saved)
	}
	if parsed.IPv4 == nil {
		t.Fatalf("no IPv4 rules parsed from\n%s", saved)
	}
	return parsed.IPv4
}

func logLandings(t *testing.T, ls []landing) {
	t.Helper()
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "\n  %-70s -> %s", l.String(), l.got)
	}
	t.Log("connections:" + b.String())
}

// TestRenderedRulesOnRealKernel loads what RenderSave writes for istio-iptables arguments into
// a pod namespace and checks, connection by connection, that the kernel sends each where
// Istio's rules do, and that Explain, walking the rules read back from the kernel, agrees.
func TestRenderedRulesOnRealKernel(t *testing.T) {
	netnstest.Require(t, kernelTools...)
	const (
		other    = "192.0.2.2"    // a destination captured unless told otherwise
		excluded = "198.51.100.2" // in the range -x excludes; outside -i's ranges
		outside  = "203.0.113.2"  // outside -i's ranges
		podIP    = "192.0.2.1"
	)
	cases := []struct {
		name  string
		args  string
		conns []conn
	}{
		{
			name: "capture everything, exclusions",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i * -x 198.51.100.0/24 -b * -d 15090,15021,15020,8443 -o 9090",
			conns: []conn{
				outbound(other+":8080", envoyOutbound, "captured"),
				outbound(excluded+":8080", destName(8080), "excluded range (-x)"),
				outbound(other+":9090", destName(9090), "excluded outbound port (-o)"),
				fromProxy(outbound(other+":8080", destName(8080), "the proxy's own UID")),
				fromProxy(outbound(excluded+":9090", destName(9090), "the proxy's own UID, excluded anyway")),
				outbound("127.0.0.1:8080", appName(8080), "loopback"),
				fromProxy(outbound("127.0.0.1:8080", appName(8080), "the proxy to loopback (its inbound cluster)")),
				outbound(podIP+":8080", appName(8080), "the application to its own pod address, over lo"),
				fromProxy(outbound(podIP+":8080", envoyInbound, "the proxy to the pod address: back through inbound capture")),
				fromProxy(outbound(podIP+":15008", appName(15008), "the proxy to the pod address, tunnel port")),
				inbound(podIP+":8080", envoyInbound, "captured"),
				inbound(podIP+":8443", appName(8443), "excluded inbound port (-d)"),
				inbound(podIP+":15020", appName(15020), "status port (-d)"),
				inbound(podIP+":15008", appName(15008), "HBONE tunnel port, always exempt"),
			},
		},
		{
			name: "included ranges only, inbound port list",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i 192.0.2.0/24,10.0.0.0/24 -x 192.0.2.128/25 -b 8080,8443 -d 8443",
			conns: []conn{
				outbound(other+":8080", envoyOutbound, "in an included range (-i)"),
				outbound("10.0.0.6:7000", envoyOutbound, "in the second included range (-i)"),
				outbound("192.0.2.200:8080", destName(8080), "in an included range and an excluded one (-x wins)"),
				outbound(excluded+":8080", destName(8080), "outside the included ranges"),
				outbound(outside+":8080", destName(8080), "outside the included ranges"),
				fromProxy(outbound(other+":8080", destName(8080), "the proxy's own UID")),
				inbound(podIP+":8080", envoyInbound, "listed inbound port (-b)"),
				inbound(podIP+":8443", envoyInbound, "listed inbound port: -d applies only with -b *"),
				inbound(podIP+":9090", appName(9090), "inbound port not listed"),
			},
		},
		{
			name: "outbound port inclusions, no ranges, no inbound capture",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '' -q 443,9090 -o 9090 -b ''",
			conns: []conn{
				outbound(other+":443", envoyOutbound, "included outbound port (-q)"),
				outbound(other+":8080", destName(8080), "port not included, no range included"),
				outbound(other+":9090", destName(9090), "included (-q) but excluded (-o): the exclusion comes first"),
				fromProxy(outbound(other+":443", destName(443), "the proxy's own UID")),
				inbound(podIP+":8080", appName(8080), "inbound capture off (-b '')"),
			},
		},
		{
			name: "outbound port inclusions next to included ranges",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i 203.0.113.0/24 -q 443 -b *",
			conns: []conn{
				outbound(excluded+":443", envoyOutbound, "included outbound port (-q) outside the ranges"),
				outbound(outside+":8080", envoyOutbound, "in an included range (-i)"),
				outbound(excluded+":8080", destName(8080), "neither port nor range included"),
			},
		},
		{
			// istio-iptables writes the -q rules and then, for -i *, a rule sending everything
			// left to the proxy: the port inclusions add nothing to capturing everything.
			name: "outbound port inclusions with every range",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i * -q 443 -b *",
			conns: []conn{
				outbound(other+":443", envoyOutbound, "included outbound port (-q)"),
				outbound(other+":8080", envoyOutbound, "every range is included (-i *)"),
			},
		},
		{
			// A KubeVirt virtual machine's traffic arrives on net1 (-k): what it sends to an
			// included range goes to the outbound listener, the rest bypasses capture, even the
			// inbound capture (-b *) the same port would get on eth0.
			name: "rerouted interface, included ranges",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i 10.0.0.0/24 -b * -k net1",
			conns: []conn{
				viaVM(inbound("10.0.0.5:8080", envoyOutbound, "from net1 (-k) to an included range")),
				viaVM(inbound("172.16.0.1:8080", appName(8080), "from net1 (-k) elsewhere: not captured")),
				inbound(podIP+":8080", envoyInbound, "from eth0: inbound capture"),
			},
		},
		{
			name: "rerouted interface, every range",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i * -b * -k net1",
			conns: []conn{
				viaVM(inbound("172.16.0.1:8080", envoyOutbound, "from net1 (-k): to the outbound listener")),
				inbound(podIP+":8080", envoyInbound, "from eth0: inbound capture"),
			},
		},
		{
			name: "rerouted interface, no range",
			args: "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '' -b * -k net1",
			conns: []conn{
				viaVM(inbound("10.0.0.5:8080", appName(8080), "from net1 (-k), nothing included: not captured")),
				inbound(podIP+":8080", envoyInbound, "from eth0: inbound capture"),
			},
		},
		{
			name: "another proxy UID and GID, another outbound port",
			args: "istio-iptables -p 15002 -z 15006 -u 2000 -g 2001 -m REDIRECT -i * -b *",
			conns: []conn{
				fromProxy(outbound(other+":8080", "redirect to 15002", "uid 1337 is not the proxy here")),
				{dir: redirect.DirectionOutbound, dst: netip.MustParseAddrPort(other + ":8080"), uid: 2000,
					want: destName(8080), why: "the proxy's UID (-u)"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			words, err := redirect.CommandWords(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			s, err := istio.ParseArgs(words)
			if err != nil {
				t.Fatal(err)
			}
			rules := istio.RenderSave(s, redirect.IPv4)
			l := newKernelLab(t, []int{8080, 8443, 9090, 15008, 15020}, []int{443, 7000, 8080, 9090})
			if s.ProxyPort != istio.DefaultProxyPort {
				// The only redirect a case expects elsewhere gets a listener naming it.
				l.pod.Listen("redirect to "+strconv.Itoa(int(s.ProxyPort)), "tcp", ":"+strconv.Itoa(int(s.ProxyPort)))
			}
			if len(s.RerouteInterfaces) > 0 {
				l.addVM(t)
			}
			rs := l.load(t, rules)
			var ls []landing
			for _, c := range tc.conns {
				ls = append(ls, l.check(t, rs, c))
			}
			logLandings(t, ls)
			if t.Failed() {
				t.Logf("rendered rules:\n%s", rules)
			}
		})
	}
}

// TestSeed003RulesOnRealKernel loads the iptables-save seed 003's pod printed, before and after
// the fix (10.0.0.0/24 excluded), and follows the connection to 10.0.0.6:7000: the kernel hands
// it to Envoy's outbound listener before the fix and to the destination after it, and Explain
// says so both times.
func TestSeed003RulesOnRealKernel(t *testing.T) {
	netnstest.Require(t, kernelTools...)
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join("..", "analysis", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	before, after := read("istio-seed003-iptables.txt"), read("istio-seed003-iptables-excluded.txt")
	l := newKernelLab(t, []int{8080, 22}, []int{7000, 8080})

	rs := l.load(t, before)
	ls := []landing{
		l.check(t, rs, outbound("10.0.0.6:7000", envoyOutbound, "seed 003 before the fix: captured")),
		l.check(t, rs, fromProxy(outbound("10.0.0.6:7000", destName(7000), "the proxy's own UID"))),
		l.check(t, rs, outbound("192.0.2.2:8080", envoyOutbound, "captured")),
		l.check(t, rs, inbound("10.0.0.5:22", appName(22), "excluded inbound port")),
		l.check(t, rs, inbound("10.0.0.5:8080", envoyInbound, "captured inbound")),
	}

	// The fix: the same pod restarted with 10.0.0.0/24 excluded. iptables-restore replaces the
	// nat table, as a new sandbox would start with only the new rules.
	rs = l.load(t, after)
	ls = append(ls,
		l.check(t, rs, outbound("10.0.0.6:7000", destName(7000), "seed 003 after the fix: excluded range")),
		l.check(t, rs, outbound("192.0.2.2:8080", envoyOutbound, "still captured")),
	)
	logLandings(t, ls)
}
