package analysis

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// BypassKind says why outbound traffic leaves a pod without passing through its sidecar.
type BypassKind string

const (
	// BypassLoopback: traffic to the loopback address is never redirected.
	BypassLoopback BypassKind = "Loopback"
	// BypassIPRangeExclusion: the destination is in an outbound IP range exclusion.
	BypassIPRangeExclusion BypassKind = "OutboundIPRangeExclusion"
	// BypassPortExclusion: the destination port is in the outbound port exclusion list.
	BypassPortExclusion BypassKind = "OutboundPortExclusion"
	// BypassNotIncluded: an inclusion list is set and the destination is outside all of it.
	BypassNotIncluded BypassKind = "OutsideInclusionList"
	// BypassRules: the pod's rules do not redirect the connection for a reason the configuration
	// does not explain (rules that drifted from it, for example); the rule walk says which.
	BypassRules BypassKind = "Rules"
)

// Bypass is one reason traffic skips the sidecar, with the setting responsible.
type Bypass struct {
	Kind BypassKind
	// Prefix is the excluded range (BypassIPRangeExclusion, BypassLoopback).
	Prefix netip.Prefix
	// Port is the excluded port (BypassPortExclusion).
	Port uint16
	// Partial is true when only part of the destination range is affected.
	Partial bool
	// Rule is the rule that decided the bypass ("CHAIN #N: rule"), when the bypass was read
	// from the rules rather than from a configuration (BypassOfRules).
	Rule string
}

func (b Bypass) String() string {
	if b.Rule != "" {
		return b.withoutRule().String() + ", by rule " + b.Rule
	}
	part := ""
	if b.Partial {
		part = "partly "
	}
	switch b.Kind {
	case BypassLoopback:
		return fmt.Sprintf("loopback address %s is never redirected", b.Prefix)
	case BypassIPRangeExclusion:
		return fmt.Sprintf("%sinside outbound IP range exclusion %s", part, b.Prefix)
	case BypassPortExclusion:
		return fmt.Sprintf("port %d is in the outbound port exclusion list", b.Port)
	case BypassNotIncluded:
		return fmt.Sprintf("%soutside the outbound IP range inclusion list", part)
	case BypassRules:
		return "the pod's rules do not redirect it"
	}
	return string(b.Kind)
}

var (
	loopback4 = netip.MustParsePrefix("127.0.0.1/32")
	loopback6 = netip.MustParsePrefix("::1/128")
)

// BypassOf says whether a connection to dst from a pod with configuration cfg skips the sidecar,
// checking in the order the rendered outbound chain does: loopback, excluded ranges, excluded
// ports, then the inclusion list. Interface exclusions depend on routing and are not judged.
func BypassOf(cfg redirect.Config, dst netip.AddrPort) (Bypass, bool) {
	ip := dst.Addr().Unmap()
	for _, lo := range []netip.Prefix{loopback4, loopback6} {
		if lo.Contains(ip) {
			return Bypass{Kind: BypassLoopback, Prefix: lo}, true
		}
	}
	for _, p := range cfg.OutboundIPRangeExclusions {
		if p.Contains(ip) {
			return Bypass{Kind: BypassIPRangeExclusion, Prefix: p}, true
		}
	}
	if slices.Contains(cfg.OutboundPortExclusions, dst.Port()) {
		return Bypass{Kind: BypassPortExclusion, Port: dst.Port()}, true
	}
	if included, applies := inclusionCovers(cfg, ip); applies && !included {
		return Bypass{Kind: BypassNotIncluded}, true
	}
	return Bypass{}, false
}

// inclusionCovers reports whether ip is inside the inclusion list; applies is false when the
// list is empty (everything is then intercepted). As in the rendered rules, a non-empty list
// applies to both families: an IPv6-only list sends all IPv4 traffic around the sidecar.
func inclusionCovers(cfg redirect.Config, ip netip.Addr) (included, applies bool) {
	applies = len(cfg.OutboundIPRangeInclusions) > 0
	for _, p := range cfg.OutboundIPRangeInclusions {
		if p.Contains(ip) {
			return true, true
		}
	}
	return false, applies
}

// prefixBypass judges a whole destination range on port: the first setting that sends all of it
// past the sidecar, or, failing that, every setting that sends part of it past.
func prefixBypass(cfg redirect.Config, dst netip.Prefix, port uint16) (full *Bypass, partial []Bypass) {
	if slices.Contains(cfg.OutboundPortExclusions, port) {
		return &Bypass{Kind: BypassPortExclusion, Port: port}, nil
	}
	for _, lo := range []netip.Prefix{loopback4, loopback6} {
		if covers(lo, dst) {
			return &Bypass{Kind: BypassLoopback, Prefix: lo}, nil
		}
	}
	for _, p := range cfg.OutboundIPRangeExclusions {
		switch {
		case covers(p, dst):
			return &Bypass{Kind: BypassIPRangeExclusion, Prefix: p}, nil
		case p.Overlaps(dst):
			partial = append(partial, Bypass{Kind: BypassIPRangeExclusion, Prefix: p, Partial: true})
		}
	}
	applies, inside, overlaps := len(cfg.OutboundIPRangeInclusions) > 0, false, false
	for _, p := range cfg.OutboundIPRangeInclusions {
		if covers(p, dst) {
			inside = true
		} else if p.Overlaps(dst) {
			overlaps = true
		}
	}
	switch {
	case applies && !inside && !overlaps:
		return &Bypass{Kind: BypassNotIncluded}, nil
	case applies && !inside:
		partial = append(partial, Bypass{Kind: BypassNotIncluded, Partial: true})
	}
	return nil, partial
}

// covers reports whether outer contains every address of inner.
func covers(outer, inner netip.Prefix) bool {
	return outer.Addr().Is4() == inner.Addr().Is4() && outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

func (b Bypass) withoutRule() Bypass { b.Rule = ""; return b }

// BypassOfRules names why rules that did not redirect a connection let it go, from the rule
// that decided it (the last rule the walk matched): a RETURN or ACCEPT on a destination range
// is an IP range exclusion (or the loopback rule), one on a destination port a port exclusion.
// Anything else is BypassRules with the rule named. It is what TraceWith reports when no
// configuration is known, so that a pod of any mesh is explained from its own rules.
func BypassOfRules(rs *redirect.Ruleset, v redirect.Verdict) Bypass {
	for i := len(v.Trace) - 1; i >= 0; i-- {
		s := v.Trace[i]
		if !s.Matched || s.Index == 0 {
			continue
		}
		b := Bypass{Kind: BypassRules, Rule: fmt.Sprintf("%s #%d: %s", s.Chain, s.Index, s.Rule)}
		c := rs.Chain(s.Chain)
		if c == nil || s.Index > len(c.Rules) {
			return b
		}
		r := &c.Rules[s.Index-1]
		if r.Target.Kind != redirect.TargetReturn && r.Target.Kind != redirect.TargetAccept {
			return b
		}
		switch {
		case r.Dst.IsValid() && !r.NegDst && (r.Dst == loopback4 || r.Dst == loopback6):
			b.Kind, b.Prefix = BypassLoopback, r.Dst
		case r.Dst.IsValid() && !r.NegDst && !r.HasUID && len(r.DPorts) == 0:
			b.Kind, b.Prefix = BypassIPRangeExclusion, r.Dst
		case len(r.DPorts) == 1 && !r.NegDPorts && !r.Dst.IsValid() && !r.HasUID:
			b.Kind, b.Port = BypassPortExclusion, r.DPorts[0]
		}
		return b
	}
	return Bypass{Kind: BypassRules, Rule: "no rule matched; chain policy ACCEPT"}
}
