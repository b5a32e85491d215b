package istio

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// FormatIstio names rules rendered from istio-iptables settings (arguments or annotations).
const FormatIstio redirect.Format = "istio"

// inboundTunnelPort is the HBONE port istio-iptables always exempts from capture.
const inboundTunnelPort = 15008

// RenderSave writes the nat table istio-iptables installs for s, as iptables-save prints it,
// for one family. The layout follows what istio-iptables writes (chains ISTIO_INBOUND,
// ISTIO_IN_REDIRECT, ISTIO_OUTPUT, ISTIO_REDIRECT; outbound port exclusions first, then the
// loopback and proxy-owner rules, then ranges), so explain walks what the kernel would. DNS
// capture and TPROXY's mangle rules are left out: they do not decide whether a TCP connection
// reaches the proxy's outbound listener (TPROXY inbound is described, not walked).
func RenderSave(s Settings, family redirect.Family) string {
	var b strings.Builder
	loop, passthroughSrc := "127.0.0.1/32", "127.0.0.6/32"
	if family == redirect.IPv6 {
		loop, passthroughSrc = "::1/128", "::6/128"
	}
	inFamily := func(p netip.Prefix) bool { return p.Addr().Is4() == (family == redirect.IPv4) }
	add := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	add("*nat")
	for _, c := range []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"} {
		add(":%s ACCEPT [0:0]", c)
	}
	for _, c := range []string{"ISTIO_INBOUND", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT", "ISTIO_REDIRECT"} {
		add(":%s - [0:0]", c)
	}
	// istio-iptables inserts the -k rules at the head of PREROUTING one by one, so they read in
	// reverse: first a redirect to the outbound listener for each included range (or for
	// everything with -i *), then a RETURN for each interface, so that what arrives there for
	// anything else is not captured at all.
	for i := len(s.RerouteInterfaces) - 1; i >= 0; i-- {
		iface := s.RerouteInterfaces[i]
		if s.OutboundIPRanges.All {
			add("-A PREROUTING -i %s -j ISTIO_REDIRECT", iface)
		}
	}
	if !s.OutboundIPRanges.All {
		for i := len(s.OutboundIPRanges.List) - 1; i >= 0; i-- {
			if p := s.OutboundIPRanges.List[i]; inFamily(p) {
				for j := len(s.RerouteInterfaces) - 1; j >= 0; j-- {
					add("-A PREROUTING -d %s -i %s -j ISTIO_REDIRECT", p, s.RerouteInterfaces[j])
				}
			}
		}
	}
	for i := len(s.RerouteInterfaces) - 1; i >= 0; i-- {
		add("-A PREROUTING -i %s -j RETURN", s.RerouteInterfaces[i])
	}
	for _, iface := range s.ExcludeInterfaces {
		add("-A PREROUTING -i %s -j RETURN", iface)
		add("-A OUTPUT -o %s -j RETURN", iface)
	}
	inbound := s.InboundPorts.All || len(s.InboundPorts.List) > 0
	if inbound && s.Interception != redirect.InterceptTProxy {
		add("-A PREROUTING -p tcp -j ISTIO_INBOUND")
	}
	add("-A OUTPUT -j ISTIO_OUTPUT")
	add("-A ISTIO_INBOUND -p tcp -m tcp --dport %d -j RETURN", inboundTunnelPort)
	if inbound && s.Interception != redirect.InterceptTProxy {
		if s.InboundPorts.All {
			for _, p := range s.ExcludeInboundPorts {
				add("-A ISTIO_INBOUND -p tcp -m tcp --dport %d -j RETURN", p)
			}
			add("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
		} else {
			for _, p := range s.InboundPorts.List {
				add("-A ISTIO_INBOUND -p tcp -m tcp --dport %d -j ISTIO_IN_REDIRECT", p)
			}
		}
	}
	add("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports %d", s.InboundCapturePort)
	for _, p := range s.ExcludeOutboundPorts {
		add("-A ISTIO_OUTPUT -p tcp -m tcp --dport %d -j RETURN", p)
	}
	add("-A ISTIO_OUTPUT -s %s -o lo -j RETURN", passthroughSrc)
	owners := func(match string, ids []int64) {
		for _, id := range ids {
			v := strconv.FormatInt(id, 10)
			add("-A ISTIO_OUTPUT ! -d %s -o lo -p tcp -m tcp ! --dport %d -m owner --%s-owner %s -j ISTIO_IN_REDIRECT", loop, inboundTunnelPort, match, v)
			add("-A ISTIO_OUTPUT -o lo -m owner ! --%s-owner %s -j RETURN", match, v)
			add("-A ISTIO_OUTPUT -m owner --%s-owner %s -j RETURN", match, v)
		}
	}
	gids := s.ProxyGIDs
	if len(gids) == 0 {
		gids = s.ProxyUIDs
	}
	owners("uid", s.ProxyUIDs)
	owners("gid", gids)
	add("-A ISTIO_OUTPUT -d %s -j RETURN", loop)
	for _, p := range s.ExcludeOutboundIPRanges {
		if inFamily(p) {
			add("-A ISTIO_OUTPUT -d %s -j RETURN", p)
		}
	}
	// Outbound port inclusions (-q) capture their ports whatever the destination, ahead of the
	// ranges; with -i * everything left is captured anyway.
	for _, p := range s.OutboundPorts {
		add("-A ISTIO_OUTPUT -p tcp -m tcp --dport %d -j ISTIO_REDIRECT", p)
	}
	if s.OutboundIPRanges.All {
		add("-A ISTIO_OUTPUT -j ISTIO_REDIRECT")
	} else {
		for _, p := range s.OutboundIPRanges.List {
			if inFamily(p) {
				add("-A ISTIO_OUTPUT -d %s -j ISTIO_REDIRECT", p)
			}
		}
	}
	add("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports %d", s.ProxyPort)
	add("COMMIT")
	return b.String()
}

// Parsed renders s into the shared rule model, so `rules explain` and `explain pod` walk an
// Istio pod's rules like any other. The exclusions are the settings' own, not read back from
// the rendered rules, so nothing Istio expresses is lost in the round trip.
func Parsed(s Settings, container string) (*redirect.Parsed, error) {
	v4, err := redirect.Parse([]byte(RenderSave(s, redirect.IPv4)))
	if err != nil {
		return nil, fmt.Errorf("rendering the istio-iptables rules: %w", err)
	}
	p := &redirect.Parsed{Format: FormatIstio, IPv4: v4.IPv4, Container: container, Declared: ptr.To(s.Exclusions())}
	if s.DualStack || hasV6(s) {
		v6, err := redirect.Parse([]byte(RenderSave(s, redirect.IPv6)))
		if err != nil {
			return nil, fmt.Errorf("rendering the istio-iptables IPv6 rules: %w", err)
		}
		// The IPv6 rendering names IPv6 addresses (::1, ::6), so it parses as IPv6 rules.
		if v6.IPv6 == nil {
			return nil, fmt.Errorf("rendering the istio-iptables IPv6 rules: they read back as IPv4 rules")
		}
		p.IPv6 = v6.IPv6
	}
	return p, nil
}

func hasV6(s Settings) bool {
	for _, list := range [][]netip.Prefix{s.ExcludeOutboundIPRanges, s.OutboundIPRanges.List} {
		for _, p := range list {
			if p.Addr().Is6() {
				return true
			}
		}
	}
	return false
}
