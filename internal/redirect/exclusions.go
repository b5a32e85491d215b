package redirect

import (
	"cmp"
	"net/netip"
	"slices"
)

// NoProxyUID is Exclusions.ProxyUID when the rules do not name a proxy UID.
const NoProxyUID int64 = -1

// Exclusions are the redirection exceptions as sets: sorted, canonical and free of duplicates,
// so that two sources compare by meaning whatever their syntax or rule order.
type Exclusions struct {
	OutboundIPRanges          []netip.Prefix
	OutboundIPRangeInclusions []netip.Prefix
	OutboundPorts             []uint16
	InboundPorts              []uint16
	Interfaces                []string
	ProxyUID                  int64
	// LocalProxyMode is part of what a pod was rendered with: PodIP rules rewrite the proxy's
	// traffic to the application with a DNAT, Localhost rules have none.
	LocalProxyMode LocalProxyMode

	// What only Istio expresses. OSM pods leave these at their zero values, so they never show
	// up as drift there.

	// OutboundPortInclusions are ports captured whatever the destination range (Istio's -q):
	// they add to the ranges' capture, they do not narrow it.
	OutboundPortInclusions []uint16
	// InboundPortInclusions, when non-empty, limit inbound capture to these ports (-b).
	InboundPortInclusions []uint16
	// RerouteInterfaces are virtual interfaces whose traffic is captured as outbound (-k).
	RerouteInterfaces []string
	// ProxyGID is the group whose traffic bypasses the proxy, 0 when none is named (no mesh
	// runs its proxy in the root group).
	ProxyGID int64
	// OutboundCapture and InboundCapture say whether a direction is captured at all: an empty
	// include list (-i '' or -b '') turns it off.
	OutboundCapture Capture
	InboundCapture  Capture
	// InboundInterception is how inbound connections reach the proxy.
	InboundInterception InterceptionMode
}

// Capture says whether a direction of traffic is sent to the proxy at all.
type Capture string

const (
	// CaptureOn is the zero value: the direction is captured (subject to the lists).
	CaptureOn Capture = ""
	// CaptureOff: nothing in that direction reaches the proxy.
	CaptureOff Capture = "Off"
)

func (c Capture) String() string {
	if c == CaptureOn {
		return "on"
	}
	return "off"
}

// InterceptionMode is how inbound connections are handed to the proxy.
type InterceptionMode string

const (
	// InterceptRedirect is the zero value: a nat REDIRECT, losing the original source address.
	InterceptRedirect InterceptionMode = ""
	// InterceptTProxy keeps source and destination with a mangle-table TPROXY.
	InterceptTProxy InterceptionMode = "TPROXY"
)

func (m InterceptionMode) String() string {
	if m == InterceptRedirect {
		return "REDIRECT"
	}
	return string(m)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

func sortPrefixes(s []netip.Prefix) []netip.Prefix {
	slices.SortFunc(s, comparePrefix)
	return slices.Compact(s)
}

func sortPorts(s []uint16) []uint16 {
	slices.Sort(s)
	return slices.Compact(s)
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// Exclusions is what a pod rendered from this configuration should contain.
func (c Config) Exclusions() Exclusions {
	return Exclusions{
		OutboundIPRanges:          slices.Clone(c.OutboundIPRangeExclusions),
		OutboundIPRangeInclusions: slices.Clone(c.OutboundIPRangeInclusions),
		OutboundPorts:             slices.Clone(c.OutboundPortExclusions),
		InboundPorts:              slices.Clone(c.InboundPortExclusions),
		Interfaces:                slices.Clone(c.NetworkInterfaceExclusions),
		ProxyUID:                  int64(c.ProxyUID),
		LocalProxyMode:            c.LocalProxyMode,
	}.Canonical()
}

// Canonical sorts every list, masks every range and drops duplicates, in place: each reader
// of a pod's redirection (rules, arguments, annotations) ends with it, so two readers agree on
// a value whatever its spelling or order.
func (e Exclusions) Canonical() Exclusions {
	e.OutboundIPRanges = canonPrefixes(e.OutboundIPRanges)
	e.OutboundIPRangeInclusions = canonPrefixes(e.OutboundIPRangeInclusions)
	e.OutboundPorts = sortPorts(e.OutboundPorts)
	e.InboundPorts = sortPorts(e.InboundPorts)
	e.Interfaces = sortStrings(e.Interfaces)
	e.OutboundPortInclusions = sortPorts(e.OutboundPortInclusions)
	e.InboundPortInclusions = sortPorts(e.InboundPortInclusions)
	e.RerouteInterfaces = sortStrings(e.RerouteInterfaces)
	return e
}

// Exclusions extracts the effective exclusion sets from parsed rules by what the rules do, not
// by their text: a RETURN on a destination range in the outbound chain is an excluded range,
// whatever the chain is called, the option order, or whether it was inserted or appended.
func (p *Parsed) Exclusions() Exclusions {
	if p.Declared != nil {
		return *p.Declared
	}
	ex := Exclusions{ProxyUID: NoProxyUID, LocalProxyMode: LocalProxyModeLocalhost}
	sets := [...]*Ruleset{p.IPv4, p.IPv6}
	for _, rs := range sets {
		if rs != nil {
			collectExclusions(rs, &ex)
		}
	}
	if anyDNAT(sets[:], func(*Rule) bool { return true }) {
		ex.LocalProxyMode = LocalProxyModePodIP
	}
	return ex.Canonical()
}

// anyDNAT reports whether a rule of any chain of sets is a DNAT accepted by match. DNAT is only
// ever rendered for local proxy mode PodIP, whatever the address (the placeholder in a manifest,
// the real pod IP in iptables-save output).
func anyDNAT(sets []*Ruleset, match func(*Rule) bool) bool {
	for _, rs := range sets {
		if rs == nil {
			continue
		}
		for _, c := range rs.Chains {
			for i := range c.Rules {
				if r := &c.Rules[i]; r.Target.Kind == TargetDNAT && match(r) {
					return true
				}
			}
		}
	}
	return false
}

// shape summarises which matches a rule uses, ignoring a plain `-p tcp` (the entry jumps are
// already TCP-only).
type shape uint8

const (
	hasDst shape = 1 << iota
	hasOut
	hasIn
	hasUID
	hasPorts
	hasOther // source, negation, another protocol, comment-only differences do not count
)

func shapeOf(r *Rule) shape {
	var s shape
	if r.Protocol != "" && (r.Protocol != protoTCP || r.NegProtocol) {
		s |= hasOther
	}
	if r.Src.IsValid() {
		s |= hasOther
	}
	if r.Dst.IsValid() {
		s |= hasDst
		if r.NegDst {
			s |= hasOther
		}
	}
	if r.OutIface != "" {
		s |= hasOut
		if r.NegOutIface {
			s |= hasOther
		}
	}
	if r.InIface != "" {
		s |= hasIn
		if r.NegInIface {
			s |= hasOther
		}
	}
	if r.HasUID {
		s |= hasUID
		if r.NegUID {
			s |= hasOther
		}
	}
	if len(r.DPorts) > 0 {
		s |= hasPorts
		if r.NegDPorts || r.Protocol != protoTCP {
			s |= hasOther
		}
	}
	if r.More != nil {
		s |= hasOther
	}
	return s
}

// entryChain is the first custom chain a built-in chain jumps to.
func entryChain(rs *Ruleset, builtin string) *Chain {
	c := rs.Chain(builtin)
	if c == nil {
		return nil
	}
	for i := range c.Rules {
		if c.Rules[i].Target.Kind == TargetJump {
			return rs.Chain(c.Rules[i].Target.Chain)
		}
	}
	return nil
}

func isReservedInbound(p uint16) bool {
	switch p {
	case MetricsPort, LivenessProbePort, ReadinessProbePort, StartupProbePort, HealthcheckPort:
		return true
	}
	return false
}

func collectExclusions(rs *Ruleset, ex *Exclusions) {
	lo := loopbackFor(rs.Family)
	inRedirect := ""
	if in := entryChain(rs, ChainPrerouting); in != nil {
		var fixedSeen [5]uint16
		nFixed := 0
		for i := range in.Rules {
			r := &in.Rules[i]
			sh := shapeOf(r)
			switch {
			case r.Target.Kind == TargetJump && sh == 0:
				inRedirect = r.Target.Chain
			case r.Target.Kind != TargetReturn:
			case sh == hasIn:
				ex.Interfaces = append(ex.Interfaces, r.InIface)
			case sh == hasPorts:
				if !r.Multiport && len(r.DPorts) == 1 && isReservedInbound(r.DPorts[0]) &&
					!slices.Contains(fixedSeen[:nFixed], r.DPorts[0]) && nFixed < len(fixedSeen) {
					fixedSeen[nFixed] = r.DPorts[0]
					nFixed++
					continue
				}
				ex.InboundPorts = append(ex.InboundPorts, r.DPorts...)
			}
		}
	}
	out := entryChain(rs, ChainOutput)
	if out == nil {
		return
	}
	loopbackSeen := false
	for i := range out.Rules {
		r := &out.Rules[i]
		sh := shapeOf(r)
		switch r.Target.Kind {
		case TargetReturn:
			switch sh {
			case hasDst:
				if r.Dst == lo && !loopbackSeen {
					loopbackSeen = true
					continue
				}
				ex.OutboundIPRanges = append(ex.OutboundIPRanges, r.Dst)
			case hasOut:
				ex.Interfaces = append(ex.Interfaces, r.OutIface)
			case hasUID:
				if ex.ProxyUID == NoProxyUID {
					ex.ProxyUID = int64(r.UID)
				}
			case hasPorts:
				ex.OutboundPorts = append(ex.OutboundPorts, r.DPorts...)
			}
		case TargetJump:
			if sh == hasDst && r.Target.Chain != inRedirect {
				ex.OutboundIPRangeInclusions = append(ex.OutboundIPRangeInclusions, r.Dst)
			}
		}
	}
}
