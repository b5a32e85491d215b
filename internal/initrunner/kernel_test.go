package initrunner_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/netnstest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// These tests load rules into real network namespaces with the real meshkeeper-init binary (or
// OSM's own rules with plain iptables-restore) and open real TCP connections. They run as root in
// CI and skip elsewhere. Every address belongs to a documentation range and only exists inside
// the namespaces the test creates.

var tools = []string{"setpriv", "tee", "iptables-restore", "iptables-save",
	"iptables-nft-restore", "iptables-nft-save", "ip6tables-nft-restore", "ip6tables-nft-save",
	"iptables-legacy-restore", "iptables-legacy-save", "ip6tables-legacy-restore", "ip6tables-legacy-save"}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// initBinary builds cmd/meshkeeper-init once per test run.
func initBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go not in PATH: %w", err)
			return
		}
		if buildDir, err = os.MkdirTemp("", "meshkeeper-init-test-"); err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command(goTool, "build", "-o", filepath.Join(buildDir, "meshkeeper-init"),
			"github.com/meshkeeper/meshkeeper/cmd/meshkeeper-init").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "meshkeeper-init")
}

// Addresses of the two namespaces. pod is where rules are loaded; peer stands for the rest of
// the network. 198.51.100.0/24 and 2001:db8:1::/64 are the ranges the tests exclude.
var (
	podAddrs  = []string{"192.0.2.1/24", "198.51.100.1/24", "2001:db8::1/64", "2001:db8:1::1/64"}
	peerAddrs = []string{"192.0.2.2/24", "198.51.100.2/24", "2001:db8::2/64", "2001:db8:1::2/64"}
)

type lab struct {
	pod, peer *netnstest.NS
}

// newLab creates the two namespaces joined by eth0 <-> eth0, the sidecar's two listeners in the
// pod, and a listener named after its namespace and port for each application port.
func newLab(t *testing.T, podPorts, peerPorts []int) *lab {
	t.Helper()
	l := &lab{pod: netnstest.New(t), peer: netnstest.New(t)}
	netnstest.Link(t, l.pod, "eth0", podAddrs, l.peer, "eth0", peerAddrs)
	for _, p := range append([]int{15001, 15003}, podPorts...) {
		l.pod.Listen("pod:"+strconv.Itoa(p), "tcp", ":"+strconv.Itoa(p))
	}
	for _, p := range peerPorts {
		l.peer.Listen("peer:"+strconv.Itoa(p), "tcp", ":"+strconv.Itoa(p))
	}
	return l
}

// probe is one real connection and the listener it must land on.
type probe struct {
	dir  redirect.Direction
	dst  netip.AddrPort
	uid  int // -1: root
	want string
}

func (p probe) String() string {
	s := fmt.Sprintf("%s %s", p.dir, p.dst)
	if p.uid >= 0 {
		s += fmt.Sprintf(" as uid %d", p.uid)
	}
	return s
}

func out(dst string, want string) probe {
	return probe{dir: redirect.DirectionOutbound, dst: netip.MustParseAddrPort(dst), uid: -1, want: want}
}

func in(dst string, want string) probe {
	return probe{dir: redirect.DirectionInbound, dst: netip.MustParseAddrPort(dst), uid: -1, want: want}
}

func asProxy(p probe) probe { p.uid = int(redirect.ProxyUID); return p }

// check opens the probe's connection and compares where it landed with the expectation and with
// what redirect.Explain predicts from rules (parsed back from the kernel).
func (l *lab) check(t *testing.T, parsed *redirect.Parsed, p probe) {
	t.Helper()
	from := l.pod
	if p.dir == redirect.DirectionInbound {
		from = l.peer
	}
	var opts []netnstest.DialOption
	if p.uid >= 0 {
		opts = append(opts, netnstest.AsUID(p.uid))
	}
	got, err := from.Dial(p.dst.String(), opts...)
	if err != nil {
		got = "error: " + err.Error()
	}
	if got != p.want {
		t.Errorf("%s: landed on %q, want %q", p, got, p.want)
	}
	if parsed == nil {
		return
	}
	rs := parsed.IPv4
	if p.dst.Addr().Is6() {
		rs = parsed.IPv6
	}
	if rs == nil {
		t.Errorf("%s: no parsed %s rules to explain with", p, map[bool]string{true: "IPv6", false: "IPv4"}[p.dst.Addr().Is6()])
		return
	}
	pkt := redirect.Packet{Direction: p.dir, Dst: p.dst}
	if p.uid >= 0 {
		pkt.UID = uint32(p.uid)
	}
	v := redirect.Explain(rs, pkt)
	predicted := ""
	switch v.Kind {
	case redirect.VerdictRedirect:
		predicted = "pod:" + strconv.Itoa(int(v.Port))
	case redirect.VerdictBypass:
		predicted = "peer:" + strconv.Itoa(int(p.dst.Port()))
		if p.dir == redirect.DirectionInbound {
			predicted = "pod:" + strconv.Itoa(int(p.dst.Port()))
		}
	default:
		predicted = string(v.Kind)
	}
	if predicted != got {
		t.Errorf("%s: Explain predicts %q (%s), the kernel sent it to %q", p, predicted, v.Kind, got)
	}
}

var countersRE = regexp.MustCompile(`\[[0-9]+:[0-9]+\]`)

// natTable is the nat table as the given save program prints it, without comments and counters.
func natTable(t *testing.T, ns *netnstest.NS, save string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(ns.MustRun(save, "-t", "nat"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b.WriteString(countersRE.ReplaceAllString(line, "[0:0]"))
		b.WriteByte('\n')
	}
	return b.String()
}

func runInit(t *testing.T, ns *netnstest.NS, args ...string) string {
	t.Helper()
	return runInitEnv(t, ns, nil, args...)
}

func runInitEnv(t *testing.T, ns *netnstest.NS, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, initBinary(t)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("meshkeeper-init %s: %v\n%s", args[0], err, stderr.String())
	}
	return stderr.String()
}

var backendRE = regexp.MustCompile(`using the (\w+) iptables backend`)

func renderPlan(t *testing.T, settings redirect.MeshSettings, ann map[string]string) redirect.Plan {
	t.Helper()
	cfg, errs := redirect.Effective(settings, ann)
	if len(errs) > 0 {
		t.Fatalf("Effective: %v", errs.ToAggregate())
	}
	return redirect.Render(cfg)
}

var labSettings = redirect.MeshSettings{
	OutboundIPRangeExclusionList: []string{"198.51.100.0/24", "2001:db8:1::/64"},
	OutboundPortExclusionList:    []int{9090},
	InboundPortExclusionList:     []int{8443},
}

// TestInitBinaryRedirectsRealTraffic applies rendered rules with the init binary, twice, and
// checks real connections of both families against the expectation and against Explain.
func TestInitBinaryRedirectsRealTraffic(t *testing.T) {
	netnstest.Require(t, tools...)
	plan := renderPlan(t, labSettings, nil)
	for _, backend := range []string{"auto", "nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "legacy" {
				requireLegacyKernel(t)
			}
			l := newLab(t, []int{8080, 8443, 15010, 15901, 15902, 15903, 15904}, []int{8080, 9090})
			args := redirect.InitArgs(plan)
			if backend != "auto" {
				args = append(args, "--backend", backend)
			}
			log := runInit(t, l.pod, args...)
			m := backendRE.FindStringSubmatch(log)
			if m == nil {
				t.Fatalf("init log does not name the backend:\n%s", log)
			}
			used := m[1]
			if backend != "auto" && used != backend {
				t.Fatalf("asked for %s, init used %s", backend, used)
			}
			save4, save6 := "iptables-"+used+"-save", "ip6tables-"+used+"-save"
			first4, first6 := natTable(t, l.pod, save4), natTable(t, l.pod, save6)

			// A second run (kubelet restarting the init container) must not change anything.
			runInit(t, l.pod, args...)
			if again := natTable(t, l.pod, save4); again != first4 {
				t.Errorf("IPv4 nat table changed on the second run:\nfirst:\n%s\nsecond:\n%s", first4, again)
			}
			if again := natTable(t, l.pod, save6); again != first6 {
				t.Errorf("IPv6 nat table changed on the second run:\nfirst:\n%s\nsecond:\n%s", first6, again)
			}
			for _, tbl := range []string{first4, first6} {
				if n := strings.Count(tbl, "-A OUTPUT "); n != 1 {
					t.Errorf("%d OUTPUT hooks, want 1:\n%s", n, tbl)
				}
				if n := strings.Count(tbl, "-A PREROUTING "); n != 1 {
					t.Errorf("%d PREROUTING hooks, want 1:\n%s", n, tbl)
				}
			}

			// What the kernel holds means what the plan says.
			parsed4, err := redirect.Parse([]byte(first4))
			if err != nil {
				t.Fatalf("Parse IPv4 save: %v\n%s", err, first4)
			}
			parsed6, err := redirect.Parse([]byte(first6))
			if err != nil {
				t.Fatalf("Parse IPv6 save: %v\n%s", err, first6)
			}
			parsed := &redirect.Parsed{IPv4: parsed4.IPv4, IPv6: parsed6.IPv6}
			cfg, _ := redirect.Effective(labSettings, nil)
			if d := redirect.Diff(cfg.Exclusions(), parsed.Exclusions()); !d.Empty() {
				t.Errorf("kernel rules differ from the configuration: %+v", d)
			}

			probes := []probe{
				out("192.0.2.2:8080", "pod:15001"),          // captured
				out("198.51.100.2:8080", "peer:8080"),       // excluded range
				out("192.0.2.2:9090", "peer:9090"),          // excluded port
				asProxy(out("192.0.2.2:8080", "peer:8080")), // the proxy itself
				out("[2001:db8::2]:8080", "pod:15001"),
				out("[2001:db8:1::2]:8080", "peer:8080"),
				out("[2001:db8::2]:9090", "peer:9090"),
				asProxy(out("[2001:db8::2]:8080", "peer:8080")),
			}
			for _, addr := range []string{"192.0.2.1", "[2001:db8::1]"} {
				probes = append(probes,
					in(addr+":8080", "pod:15003"),
					in(addr+":8443", "pod:8443"))
				for _, p := range []int{15010, 15901, 15902, 15903, 15904} {
					probes = append(probes, in(addr+":"+strconv.Itoa(p), "pod:"+strconv.Itoa(p)))
				}
			}
			for _, p := range probes {
				l.check(t, parsed, p)
			}
		})
	}
}

// requireLegacyKernel skips when the kernel lacks the x_tables interface the legacy tools use
// (nf_tables-only kernels), which is a property of the machine, not of the code under test.
func requireLegacyKernel(t *testing.T) {
	t.Helper()
	ns := netnstest.New(t)
	for _, restore := range []string{"iptables-legacy-restore", "ip6tables-legacy-restore"} {
		if _, err := ns.Exec([]byte("*nat\nCOMMIT\n"), restore, "--noflush"); err != nil {
			t.Skipf("this kernel cannot load legacy x_tables rules: %v", err)
		}
	}
}

// TestInitReplacesOSMRulesAndEarlierConfig shows that running the init binary over rules OSM
// left behind, or over an earlier meshkeeper configuration, yields exactly the ruleset a fresh
// namespace gets.
func TestInitReplacesOSMRulesAndEarlierConfig(t *testing.T) {
	netnstest.Require(t, tools...)
	osmRules, err := os.ReadFile(filepath.Join("testdata", "osm-v1.2-nat.rules"))
	if err != nil {
		t.Fatal(err)
	}
	args := append(redirect.InitArgs(renderPlan(t, labSettings, nil)), "--backend", "nft")

	fresh := netnstest.New(t)
	runInit(t, fresh, args...)
	want4, want6 := natTable(t, fresh, "iptables-nft-save"), natTable(t, fresh, "ip6tables-nft-save")

	overOSM := netnstest.New(t)
	if _, err := overOSM.Exec(osmRules, "iptables-nft-restore", "--noflush"); err != nil {
		t.Fatal(err)
	}
	runInit(t, overOSM, args...)

	overOld := netnstest.New(t)
	older := redirect.MeshSettings{OutboundIPRangeExclusionList: []string{"203.0.113.0/24"}, OutboundPortExclusionList: []int{1, 2, 3}}
	runInit(t, overOld, append(redirect.InitArgs(renderPlan(t, older, nil)), "--backend", "nft")...)
	runInit(t, overOld, args...)

	for name, ns := range map[string]*netnstest.NS{"over OSM v1.2 rules": overOSM, "over an earlier configuration": overOld} {
		if got := natTable(t, ns, "iptables-nft-save"); got != want4 {
			t.Errorf("%s: IPv4 nat table\n%s\nwant (fresh namespace)\n%s", name, got, want4)
		}
		if got := natTable(t, ns, "ip6tables-nft-save"); got != want6 {
			t.Errorf("%s: IPv6 nat table\n%s\nwant (fresh namespace)\n%s", name, got, want6)
		}
	}
}

// TestInitSkipsIPv6WhenDisabled: with IPv6 switched off in the pod, the IPv6 rules are skipped
// with a log line and the run still succeeds.
func TestInitSkipsIPv6WhenDisabled(t *testing.T) {
	netnstest.Require(t, tools...)
	ns := netnstest.New(t)
	if _, err := ns.Exec([]byte("1\n"), "tee", "/proc/sys/net/ipv6/conf/all/disable_ipv6"); err != nil {
		t.Fatal(err)
	}
	log := runInit(t, ns, append(redirect.InitArgs(renderPlan(t, labSettings, nil)), "--backend", "nft")...)
	if !strings.Contains(log, "IPv6 is disabled in this pod (net.ipv6.conf.all.disable_ipv6 = 1); skipping the IPv6 rules") {
		t.Errorf("log does not explain the skip:\n%s", log)
	}
	if v6 := natTable(t, ns, "ip6tables-nft-save"); strings.Contains(v6, "OSM_PROXY") {
		t.Errorf("IPv6 rules were applied:\n%s", v6)
	}
	if v4 := natTable(t, ns, "iptables-nft-save"); !strings.Contains(v4, "-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND") {
		t.Errorf("IPv4 rules missing:\n%s", v4)
	}
}

// TestInitRefusesBadInputBeforeTouchingKernel: a rejected ruleset leaves the namespace alone and
// the failure is one line naming the problem.
func TestInitRefusesBadInputBeforeTouchingKernel(t *testing.T) {
	netnstest.Require(t, tools...)
	ns := netnstest.New(t)
	before := natTable(t, ns, "iptables-nft-save")
	cmd := exec.Command("ip", "netns", "exec", ns.Name, initBinary(t), "apply",
		"--ipv4-rules", "*nat\n:OSM_PROXY_OUTBOUND - [0:0]\n-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND\nCOMMIT\n*filter\n-A INPUT -j DROP\nCOMMIT\n")
	outb, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("accepted a filter table:\n%s", outb)
	}
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	want := `meshkeeper-init: error: IPv4 rules line 5: table "filter": only one table, nat, is allowed`
	if lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
	if after := natTable(t, ns, "iptables-nft-save"); after != before {
		t.Errorf("nat table changed:\n%s", after)
	}
}

// TestOSMRulesParseMatchesKernel loads OSM v1.2's own rules with plain iptables-restore, parses
// what iptables-save prints, and checks that every exclusion the parser reports really bypasses
// the proxy, that everything else is captured, and that Explain predicts each connection.
func TestOSMRulesParseMatchesKernel(t *testing.T) {
	netnstest.Require(t, tools...)
	osmRules, err := os.ReadFile(filepath.Join("testdata", "osm-v1.2-nat.rules"))
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t, nil, []int{8080, 15000})
	if _, err := l.pod.Exec(osmRules, "iptables-restore", "--noflush"); err != nil {
		t.Fatal(err)
	}
	saved := natTable(t, l.pod, "iptables-save")
	parsed, err := redirect.Parse([]byte(saved))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, saved)
	}
	if parsed.Format != redirect.FormatIPTablesSave || parsed.IPv4 == nil {
		t.Fatalf("parsed format %s, IPv4 %v", parsed.Format, parsed.IPv4 != nil)
	}
	ex := parsed.Exclusions()
	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	want := redirect.Exclusions{
		OutboundIPRanges: prefixes("198.51.100.0/24", "203.0.113.0/24"),
		OutboundPorts:    []uint16{9090, 9091},
		InboundPorts:     []uint16{8443, 9443},
		Interfaces:       []string{"eth9"},
		ProxyUID:         int64(redirect.ProxyUID),
		// OSM's rules send inbound traffic to the proxy on 127.0.0.1: no DNAT to the pod IP.
		LocalProxyMode: redirect.LocalProxyModeLocalhost,
	}
	if d := redirect.Diff(want, ex); !d.Empty() {
		t.Fatalf("parsed exclusions %+v differ from the fixture's: %+v", ex, d)
	}

	// Every parsed exclusion must bypass in the kernel; listeners for them are added now.
	var probes []probe
	for _, p := range ex.OutboundPorts {
		l.peer.Listen("peer:"+strconv.Itoa(int(p)), "tcp", ":"+strconv.Itoa(int(p)))
		probes = append(probes, out("192.0.2.2:"+strconv.Itoa(int(p)), "peer:"+strconv.Itoa(int(p))))
	}
	for _, p := range ex.InboundPorts {
		l.pod.Listen("pod:"+strconv.Itoa(int(p)), "tcp", ":"+strconv.Itoa(int(p)))
		probes = append(probes, in("192.0.2.1:"+strconv.Itoa(int(p)), "pod:"+strconv.Itoa(int(p))))
	}
	reachable := 0
	for _, r := range ex.OutboundIPRanges {
		for _, a := range peerAddrs {
			if addr := netip.MustParsePrefix(a).Addr(); r.Contains(addr) {
				probes = append(probes, out(netip.AddrPortFrom(addr, 8080).String(), "peer:8080"))
				reachable++
			}
		}
	}
	if reachable == 0 {
		t.Fatal("no excluded range contains a peer address; the lab cannot test range exclusions")
	}
	for _, p := range []int{15010, 15904} {
		l.pod.Listen("pod:"+strconv.Itoa(p), "tcp", ":"+strconv.Itoa(p))
		probes = append(probes, in("192.0.2.1:"+strconv.Itoa(p), "pod:"+strconv.Itoa(p)))
	}
	// Everything else is captured, including port 15000 (OSM's ACCEPT for it is unreachable).
	l.pod.Listen("pod:9090", "tcp", ":9090")
	probes = append(probes,
		out("192.0.2.2:8080", "pod:15001"),
		out("192.0.2.2:15000", "pod:15001"),
		asProxy(out("192.0.2.2:8080", "peer:8080")),
		in("192.0.2.1:9090", "pod:15003"),
	)
	slices.SortStableFunc(probes, func(a, b probe) int { return strings.Compare(string(a.dir), string(b.dir)) })
	for _, p := range probes {
		l.check(t, parsed, p)
	}
}

// TestInitPodIPMode: in PodIP local proxy mode the proxy's connections to localhost reach the
// application on the pod address, the address comes from the environment, and a second run does
// not stack a second DNAT rule.
func TestInitPodIPMode(t *testing.T) {
	netnstest.Require(t, tools...)
	settings := labSettings
	settings.LocalProxyMode = string(redirect.LocalProxyModePodIP)
	plan := renderPlan(t, settings, nil)
	args := append(redirect.InitArgs(plan), "--backend", "nft")
	if !slices.Contains(args, redirect.PodIPEnvVar) {
		t.Fatalf("InitArgs for PodIP mode lack --pod-ip-env: %q", args)
	}
	l := newLab(t, nil, []int{8080})
	app := l.pod.Listen("pod:8080", "tcp", ":8080")
	env := []string{redirect.PodIPEnvVar + "=192.0.2.1"}
	runInitEnv(t, l.pod, env, args...)
	first := natTable(t, l.pod, "iptables-nft-save")
	runInitEnv(t, l.pod, env, args...)
	if again := natTable(t, l.pod, "iptables-nft-save"); again != first {
		t.Errorf("nat table changed on the second run:\nfirst:\n%s\nsecond:\n%s", first, again)
	}
	if n := strings.Count(first, "-j DNAT --to-destination 192.0.2.1"); n != 1 {
		t.Errorf("%d DNAT rules to the pod IP, want 1:\n%s", n, first)
	}
	if v6 := natTable(t, l.pod, "ip6tables-nft-save"); strings.Contains(v6, "DNAT") || !strings.Contains(v6, "OSM_PROXY_OUTBOUND") {
		t.Errorf("IPv6 table of an IPv4-only pod IP should hold the rules without the DNAT:\n%s", v6)
	}

	parsed, err := redirect.Parse([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	l.check(t, nil, asProxy(out("127.0.0.1:8080", "pod:8080")))
	l.check(t, parsed, out("192.0.2.2:8080", "pod:15001"))
	acc := app.Accepted()
	if len(acc) != 1 || acc[0].Local != "192.0.2.1:8080" {
		t.Errorf("the application saw %+v, want one connection to 192.0.2.1:8080", acc)
	}
}
