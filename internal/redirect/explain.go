package redirect

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Direction is which way a packet travels relative to the pod.
type Direction string

const (
	DirectionOutbound Direction = "outbound" // leaves the pod: nat OUTPUT
	DirectionInbound  Direction = "inbound"  // arrives at the pod: nat PREROUTING
)

// Packet is the first packet of a TCP connection, as the nat table sees it.
type Packet struct {
	Direction Direction
	// UID owns the sending socket (outbound only; the proxy is ProxyUID).
	UID uint32
	// Src is optional; rules matching on a source never match when it is unset.
	Src netip.Addr
	Dst netip.AddrPort
	// OutInterface defaults to "lo" for loopback destinations and "eth0" otherwise.
	OutInterface string
	// InInterface defaults to "eth0" for inbound packets.
	InInterface string
}

// VerdictKind is where the connection ends up.
type VerdictKind string

const (
	VerdictRedirect VerdictKind = "redirect" // to a sidecar listener
	VerdictBypass   VerdictKind = "bypass"   // leaves the nat table untouched
	VerdictDNAT     VerdictKind = "dnat"     // destination rewritten
)

// Step is one rule looked at while walking the chains.
type Step struct {
	Chain string `json:"chain"`
	// Index is the 1-based rule number in the chain, 0 for the chain policy.
	Index   int    `json:"index"`
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
}

// Verdict is the outcome of Explain.
type Verdict struct {
	Kind VerdictKind `json:"verdict"`
	// Port is the listener for VerdictRedirect.
	Port uint16 `json:"port,omitempty"`
	// To is the new destination for VerdictDNAT (may be PodIPPlaceholder).
	To    string `json:"to,omitempty"`
	Trace []Step `json:"trace"`
}

const (
	maxJumpDepth = 32
	maxSteps     = 10000
)

// Explain walks a ruleset's nat chains for one packet the way the kernel does: rules in order,
// jumps into custom chains, RETURN (or the end of a custom chain) back to the caller, and the
// built-in chain's ACCEPT policy when nothing decides. The trace lists every rule evaluated.
func Explain(rs *Ruleset, pkt Packet) Verdict {
	start := ChainOutput
	if pkt.Direction == DirectionInbound {
		start = ChainPrerouting
		if pkt.InInterface == "" {
			pkt.InInterface = "eth0"
		}
		pkt.OutInterface = ""
	} else {
		pkt.InInterface = ""
		if pkt.OutInterface == "" {
			pkt.OutInterface = "eth0"
			if pkt.Dst.Addr().IsLoopback() {
				pkt.OutInterface = "lo"
			}
		}
	}
	v := Verdict{Kind: VerdictBypass}
	type frame struct {
		chain *Chain
		next  int
	}
	var stack []frame
	cur := rs.Chain(start)
	if cur == nil {
		v.Trace = append(v.Trace, Step{Chain: start, Rule: "policy ACCEPT (chain has no rules)"})
		return v
	}
	i := 0
	for steps := 0; steps < maxSteps; steps++ {
		if i >= len(cur.Rules) {
			if len(stack) == 0 {
				v.Trace = append(v.Trace, Step{Chain: cur.Name, Rule: "policy ACCEPT"})
				return v
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cur, i = top.chain, top.next
			continue
		}
		r := &cur.Rules[i]
		m := matches(r, &pkt)
		v.Trace = append(v.Trace, Step{Chain: cur.Name, Index: i + 1, Rule: r.String(), Matched: m})
		if !m {
			i++
			continue
		}
		switch r.Target.Kind {
		case TargetJump:
			next := rs.Chain(r.Target.Chain)
			if next == nil || len(stack) >= maxJumpDepth {
				i++
				continue
			}
			stack = append(stack, frame{cur, i + 1})
			cur, i = next, 0
		case TargetReturn:
			// Leaves the chain as running off its end does.
			i = len(cur.Rules)
		case TargetAccept:
			return v
		case TargetRedirect:
			v.Kind, v.Port = VerdictRedirect, r.Target.Port
			return v
		case TargetDNAT:
			v.Kind, v.To = VerdictDNAT, r.Target.To
			return v
		default:
			i++
		}
	}
	return v
}

func ifaceMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "+"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

func matches(r *Rule, p *Packet) bool {
	if r.Protocol != "" && (r.Protocol == protoTCP) == r.NegProtocol {
		return false
	}
	if r.Src.IsValid() && (p.Src.IsValid() && r.Src.Contains(p.Src)) == r.NegSrc {
		return false
	}
	if r.Dst.IsValid() && r.Dst.Contains(p.Dst.Addr()) == r.NegDst {
		return false
	}
	if r.InIface != "" && (p.InInterface != "" && ifaceMatch(r.InIface, p.InInterface)) == r.NegInIface {
		return false
	}
	if r.OutIface != "" && (p.OutInterface != "" && ifaceMatch(r.OutIface, p.OutInterface)) == r.NegOutIface {
		return false
	}
	if r.HasUID {
		// Only locally generated packets have an owning socket.
		inRange := p.UID >= r.UID && p.UID <= max(r.UID, r.UIDMax)
		if p.Direction == DirectionInbound || inRange == r.NegUID {
			return false
		}
	}
	// What the packet does not carry never matches, as with an unset source: its group, its
	// source port. The first packet of a connection has no mark, no established socket and the
	// conntrack state NEW.
	if r.HasGID && !r.NegGID || len(r.SPorts)+len(r.SPortRanges) > 0 && !r.NegSPorts {
		return false
	}
	if r.HasMark && (r.Mark == 0) == r.NegMark || r.Socket && !r.SocketTransparent {
		return false
	}
	if r.CTState != "" && slices.Contains(strings.Split(r.CTState, ","), "NEW") == r.NegCTState {
		return false
	}
	if len(r.DPorts)+len(r.DPortRanges) > 0 {
		port := p.Dst.Port()
		found := slices.Contains(r.DPorts, port)
		for _, pr := range r.DPortRanges {
			found = found || port >= pr.Lo && port <= pr.Hi
		}
		if found == r.NegDPorts {
			return false
		}
	}
	return true
}

// String is a one-line summary, e.g. "redirect to port 15001".
func (v Verdict) String() string {
	switch v.Kind {
	case VerdictRedirect:
		return "redirect to port " + strconv.Itoa(int(v.Port))
	case VerdictDNAT:
		return "dnat to " + v.To
	}
	return "bypass (no redirection)"
}
