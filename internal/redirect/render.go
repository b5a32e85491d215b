package redirect

import (
	"fmt"
	"net/netip"
	"strings"
)

// The init container contract shared with cmd/meshkeeper-init.
const (
	// InitContainerName is the name of the init container the injector adds.
	InitContainerName = "meshkeeper-init"
	// InitCommand is the init container's command; InitArgs supplies the arguments.
	InitCommand = "/meshkeeper-init"
	// InitVerbApply is the first argument: apply the given rulesets.
	InitVerbApply = "apply"
	// Flags of the apply verb.
	InitFlagIPv4Rules = "--ipv4-rules"
	InitFlagIPv6Rules = "--ipv6-rules"
	InitFlagPodIPEnv  = "--pod-ip-env"
	// PodIPEnvVar is the downward-API environment variable (status.podIP) read by the init
	// binary in PodIP local proxy mode.
	PodIPEnvVar = "POD_IP"
	// PodIPPlaceholder stands for the pod IP inside rendered rules. OSM wrote a shell `$POD_IP`
	// and let the shell expand it; meshkeeper never runs a shell, so the init binary substitutes
	// this token (see ResolvePodIP) after checking the value parses as an IP address.
	PodIPPlaceholder = "@POD_IP@"
)

// Plan is everything the init container must apply for one pod.
type Plan struct {
	IPv4 Ruleset
	IPv6 Ruleset
	// NeedsPodIP is true when the rules contain PodIPPlaceholder.
	NeedsPodIP bool
}

var (
	loopback4 = netip.MustParsePrefix("127.0.0.1/32")
	loopback6 = netip.MustParsePrefix("::1/128")
)

func loopbackFor(f Family) netip.Prefix {
	if f == IPv6 {
		return loopback6
	}
	return loopback4
}

func familyOf(p netip.Prefix) Family {
	if p.Addr().Is4() {
		return IPv4
	}
	return IPv6
}

// Render turns an effective configuration into the rules of both families. It follows OSM
// v1.2's semantics with two deliberate differences, both about determinism:
//   - every rule is appended (-A) in the order the kernel will hold it, so the text in the pod
//     spec is exactly the evaluation order; OSM inserted inbound exclusions with -I, which
//     reversed them;
//   - the unreachable `--dport 15000 -j ACCEPT` OSM placed after the unconditional REDIRECT in
//     the outbound redirect chain is left out.
//
// IPv4 ranges only appear in the IPv4 ruleset and IPv6 ranges only in the IPv6 one; the
// loopback address is 127.0.0.1/32 or ::1/128 accordingly.
func Render(c Config) Plan {
	p := Plan{NeedsPodIP: c.LocalProxyMode == LocalProxyModePodIP}
	p.IPv4 = renderFamily(c, IPv4)
	p.IPv6 = renderFamily(c, IPv6)
	return p
}

func renderFamily(c Config, f Family) Ruleset {
	lo := loopbackFor(f)
	rs := Ruleset{Family: f, Chains: make([]Chain, 0, 6)}
	tcpJump := func(chain, to string) Rule {
		return Rule{Chain: chain, Protocol: protoTCP, Target: Target{Kind: TargetJump, Chain: to}}
	}
	ret := Target{Kind: TargetReturn}
	ports := func(dst []Rule, chain string, list []uint16) []Rule {
		for start := 0; start < len(list); start += maxMultiportEntries {
			end := min(start+maxMultiportEntries, len(list))
			dst = append(dst, Rule{Chain: chain, Protocol: protoTCP, DPorts: list[start:end:end], Multiport: true, Target: ret})
		}
		return dst
	}
	chunks := func(n int) int { return (n + maxMultiportEntries - 1) / maxMultiportEntries }
	nIfaces := len(c.NetworkInterfaceExclusions)

	// Inbound: exclusions first, then the sidecar's own ports, then everything else to the proxy.
	pre := Chain{Name: ChainPrerouting, Rules: []Rule{tcpJump(ChainPrerouting, ChainInbound)}}
	fixed := make([]uint16, 0, 2+len(c.ProbePorts))
	fixed = append(fixed, c.MetricsPort)
	fixed = append(fixed, c.ProbePorts...)
	fixed = append(fixed, c.HealthcheckPort)
	in := Chain{Name: ChainInbound, Rules: make([]Rule, 0, nIfaces+chunks(len(c.InboundPortExclusions))+len(fixed)+1)}
	for _, iface := range c.NetworkInterfaceExclusions {
		in.Rules = append(in.Rules, Rule{Chain: ChainInbound, InIface: iface, Target: ret})
	}
	in.Rules = ports(in.Rules, ChainInbound, c.InboundPortExclusions)
	for i := range fixed {
		in.Rules = append(in.Rules, Rule{Chain: ChainInbound, Protocol: protoTCP, DPorts: fixed[i : i+1 : i+1], Target: ret})
	}
	in.Rules = append(in.Rules, tcpJump(ChainInbound, ChainInRedirect))
	inRedir := Chain{Name: ChainInRedirect, Rules: []Rule{{Chain: ChainInRedirect, Protocol: protoTCP, Target: Target{Kind: TargetRedirect, Port: c.InboundListenerPort}}}}

	// Outbound, in OSM v1.2's order.
	out := Chain{Name: ChainOutput, Rules: make([]Rule, 0, 2)}
	if c.LocalProxyMode == LocalProxyModePodIP {
		out.Rules = append(out.Rules, Rule{Chain: ChainOutput, Protocol: protoTCP, Dst: lo, OutIface: "lo",
			HasUID: true, UID: c.ProxyUID, Target: Target{Kind: TargetDNAT, To: PodIPPlaceholder}})
	}
	out.Rules = append(out.Rules, tcpJump(ChainOutput, ChainOutbound))
	ob := Chain{Name: ChainOutbound, Rules: make([]Rule, 0, 5+nIfaces+len(c.OutboundIPRangeExclusions)+
		chunks(len(c.OutboundPortExclusions))+len(c.OutboundIPRangeInclusions))}
	ob.Rules = append(ob.Rules,
		Rule{Chain: ChainOutbound, OutIface: "lo", Dst: lo, NegDst: true, HasUID: true, UID: c.ProxyUID, Target: Target{Kind: TargetJump, Chain: ChainInRedirect}},
		Rule{Chain: ChainOutbound, OutIface: "lo", HasUID: true, UID: c.ProxyUID, NegUID: true, Target: ret},
		Rule{Chain: ChainOutbound, HasUID: true, UID: c.ProxyUID, Target: ret},
		Rule{Chain: ChainOutbound, Dst: lo, Target: ret},
	)
	for _, iface := range c.NetworkInterfaceExclusions {
		ob.Rules = append(ob.Rules, Rule{Chain: ChainOutbound, OutIface: iface, Target: ret})
	}
	for _, cidr := range c.OutboundIPRangeExclusions {
		if familyOf(cidr) == f {
			ob.Rules = append(ob.Rules, Rule{Chain: ChainOutbound, Dst: cidr, Target: ret})
		}
	}
	ob.Rules = ports(ob.Rules, ChainOutbound, c.OutboundPortExclusions)
	if len(c.OutboundIPRangeInclusions) > 0 {
		for _, cidr := range c.OutboundIPRangeInclusions {
			if familyOf(cidr) == f {
				ob.Rules = append(ob.Rules, Rule{Chain: ChainOutbound, Dst: cidr, Target: Target{Kind: TargetJump, Chain: ChainOutRedirect}})
			}
		}
		ob.Rules = append(ob.Rules, Rule{Chain: ChainOutbound, Target: ret})
	} else {
		ob.Rules = append(ob.Rules, Rule{Chain: ChainOutbound, Target: Target{Kind: TargetJump, Chain: ChainOutRedirect}})
	}
	outRedir := Chain{Name: ChainOutRedirect, Rules: []Rule{{Chain: ChainOutRedirect, Protocol: protoTCP, Target: Target{Kind: TargetRedirect, Port: c.OutboundListenerPort}}}}

	rs.Chains = append(rs.Chains, pre, in, inRedir, out, ob, outRedir)
	return rs
}

// InitArgs is the init container's argv after the program name. The rules travel as readable
// iptables-restore text so that `kubectl describe pod` shows exactly what was applied.
func InitArgs(p Plan) []string {
	args := make([]string, 0, 7)
	args = append(args, InitVerbApply, InitFlagIPv4Rules, p.IPv4.RestoreInput(), InitFlagIPv6Rules, p.IPv6.RestoreInput())
	if p.NeedsPodIP {
		args = append(args, InitFlagPodIPEnv, PodIPEnvVar)
	}
	return args
}

// InitContainer is the part of the injected init container that carries the plan: its name and
// argv. internal/redirect/podspec dresses it as a Kubernetes container (image, NET_ADMIN, the
// pod IP from the downward API); keeping that out of here keeps the Kubernetes API types out of
// the init container program.
func InitContainer(p Plan) Container {
	return Container{Name: InitContainerName, Command: []string{InitCommand}, Args: InitArgs(p)}
}

// ResolvePodIP replaces PodIPPlaceholder in one family's iptables-restore text with the pod IP.
// The value comes from the environment, so it is checked before it reaches iptables: it must be
// a plain unicast address. When the pod IP belongs to the other family (a single-stack pod), the
// rules that need it are dropped from this family's text: there is no local pod address to
// rewrite to in that family.
func ResolvePodIP(rules string, f Family, podIP string) (string, error) {
	if !strings.Contains(rules, PodIPPlaceholder) {
		return rules, nil
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(podIP))
	if err != nil || addr.Zone() != "" {
		return "", fmt.Errorf("pod IP %q is not a valid IP address", podIP)
	}
	addr = addr.Unmap()
	if addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() {
		return "", fmt.Errorf("pod IP %q is not a unicast pod address", podIP)
	}
	af := IPv6
	if addr.Is4() {
		af = IPv4
	}
	if af == f {
		return strings.ReplaceAll(rules, PodIPPlaceholder, addr.String()), nil
	}
	var b strings.Builder
	b.Grow(len(rules))
	for line := range strings.Lines(rules) {
		if !strings.Contains(line, PodIPPlaceholder) {
			b.WriteString(line)
		}
	}
	return b.String(), nil
}
