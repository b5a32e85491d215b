package redirect

import (
	"net/netip"
	"strconv"
	"strings"
)

// Family is the IP family a ruleset is applied to (iptables or ip6tables).
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Chain names. meshkeeper uses OSM v1.1+ names so that `kubectl describe pod` reads like the OSM
// documentation; OSM v0.x names are only ever parsed.
const (
	ChainPrerouting     = "PREROUTING"
	ChainOutput         = "OUTPUT"
	ChainInbound        = "OSM_PROXY_INBOUND"
	ChainInRedirect     = "OSM_PROXY_IN_REDIRECT"
	ChainOutbound       = "OSM_PROXY_OUTBOUND"
	ChainOutRedirect    = "OSM_PROXY_OUT_REDIRECT"
	legacyInbound       = "PROXY_INBOUND"
	legacyInRedirect    = "PROXY_IN_REDIRECT"
	legacyOutbound      = "PROXY_OUTPUT"
	legacyOutRedirect   = "PROXY_REDIRECT"
	protoTCP            = "tcp"
	maxMultiportEntries = 15
)

// builtinNAT lists the chains the kernel provides in the nat table; their policy is ACCEPT.
var builtinNAT = [...]string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}

// IsBuiltinChain reports whether name is a built-in nat chain.
func IsBuiltinChain(name string) bool {
	for _, b := range builtinNAT {
		if b == name {
			return true
		}
	}
	return false
}

// TargetKind is what a matching rule does with the packet.
type TargetKind uint8

const (
	TargetJump     TargetKind = iota + 1 // continue in another chain
	TargetReturn                         // back to the calling chain
	TargetAccept                         // stop nat processing: no address rewrite
	TargetRedirect                       // to a local port (the sidecar's listener)
	TargetDNAT                           // rewrite the destination address
)

// Target is the -j part of a rule.
type Target struct {
	Kind TargetKind
	// Chain is the jump destination for TargetJump.
	Chain string
	// Port is the --to-ports value for TargetRedirect.
	Port uint16
	// To is the --to-destination value for TargetDNAT: an address, address:port, or
	// PodIPPlaceholder when the address is only known in the pod.
	To string
}

// Rule is one nat-table rule. It is the single model shared by rendering, parsing, explaining
// and diffing, so a rule read from OSM's shell and one read from iptables-save compare equal
// when they mean the same thing.
type Rule struct {
	Chain string

	Protocol    string // "" (any) or "tcp"
	NegProtocol bool

	Src, Dst       netip.Prefix // zero value: any
	NegSrc, NegDst bool

	InIface, OutIface       string
	NegInIface, NegOutIface bool

	HasUID bool
	UID    uint32
	NegUID bool

	// DPorts are destination ports. Multiport says the rule uses the multiport match (needed
	// for more than one port, and how exclusions are always written).
	DPorts    []uint16
	NegDPorts bool
	Multiport bool

	Comment string
	Target  Target
}

// Ruleset is the nat table of one family: custom chains in declaration order, then rules grouped
// by chain in kernel order (what `iptables -t nat -S CHAIN` would list).
type Ruleset struct {
	Family Family
	Chains []Chain
}

// Chain is one chain's rules in evaluation order.
type Chain struct {
	Name  string
	Rules []Rule
}

// Chain returns the named chain, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	if rs == nil {
		return nil
	}
	for i := range rs.Chains {
		if rs.Chains[i].Name == name {
			return &rs.Chains[i]
		}
	}
	return nil
}

// chainFor returns the named chain, creating it at the end if needed with room for capHint
// rules.
func (rs *Ruleset) chainFor(name string, capHint int) *Chain {
	if c := rs.Chain(name); c != nil {
		return c
	}
	var rules []Rule
	if capHint > 0 && len(rs.Chains) < 16 {
		rules = make([]Rule, 0, capHint)
	}
	rs.Chains = append(rs.Chains, Chain{Name: name, Rules: rules})
	return &rs.Chains[len(rs.Chains)-1]
}

// countChainRules estimates how many rules text adds to chain name (occurrences of
// "-A name " or "-I name "), so a chain's rules are allocated once.
func countChainRules(text, name string) int {
	n := 0
	for i := 0; ; {
		j := strings.Index(text[i:], name)
		if j < 0 {
			return n
		}
		k := i + j
		end := k + len(name)
		if k >= 3 && text[k-1] == ' ' && text[k-3] == '-' && (text[k-2] == 'A' || text[k-2] == 'I') &&
			end < len(text) && (text[end] == ' ' || text[end] == '\t') {
			n++
		}
		i = end
	}
}

// RuleCount is the number of rules across all chains.
func (rs Ruleset) RuleCount() int {
	n := 0
	for _, c := range rs.Chains {
		n += len(c.Rules)
	}
	return n
}

// String renders the rule in iptables-restore syntax with -A, options in a fixed order.
func (r *Rule) String() string {
	var b strings.Builder
	b.Grow(96)
	r.appendTo(&b)
	return b.String()
}

// option writes one match option, " [!] flag value"; flag carries its own surrounding spaces.
func option(b *strings.Builder, negated bool, flag, value string) {
	if negated {
		b.WriteString(" !")
	}
	b.WriteString(flag)
	b.WriteString(value)
}

func (r *Rule) appendTo(b *strings.Builder) {
	b.WriteString("-A ")
	b.WriteString(r.Chain)
	if r.Protocol != "" {
		option(b, r.NegProtocol, " -p ", r.Protocol)
	}
	if r.Src.IsValid() {
		option(b, r.NegSrc, " -s ", r.Src.String())
	}
	if r.Dst.IsValid() {
		option(b, r.NegDst, " -d ", r.Dst.String())
	}
	if r.InIface != "" {
		option(b, r.NegInIface, " -i ", r.InIface)
	}
	if r.OutIface != "" {
		option(b, r.NegOutIface, " -o ", r.OutIface)
	}
	if r.HasUID {
		b.WriteString(" -m owner")
		option(b, r.NegUID, " --uid-owner ", strconv.FormatUint(uint64(r.UID), 10))
	}
	if len(r.DPorts) > 0 {
		if r.Multiport || len(r.DPorts) > 1 {
			b.WriteString(" -m multiport")
			option(b, r.NegDPorts, " --dports ", "")
			for i, p := range r.DPorts {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatUint(uint64(p), 10))
			}
		} else {
			option(b, r.NegDPorts, " --dport ", strconv.FormatUint(uint64(r.DPorts[0]), 10))
		}
	}
	if r.Comment != "" {
		b.WriteString(" -m comment --comment ")
		b.WriteString(strconv.Quote(r.Comment))
	}
	b.WriteString(" -j ")
	switch r.Target.Kind {
	case TargetJump:
		b.WriteString(r.Target.Chain)
	case TargetReturn:
		b.WriteString("RETURN")
	case TargetAccept:
		b.WriteString("ACCEPT")
	case TargetRedirect:
		b.WriteString("REDIRECT --to-ports ")
		b.WriteString(strconv.FormatUint(uint64(r.Target.Port), 10))
	case TargetDNAT:
		b.WriteString("DNAT --to-destination ")
		b.WriteString(r.Target.To)
	default:
		b.WriteString("?")
	}
}

// RestoreInput is the ruleset as iptables-restore input meant for `--noflush`: only the custom
// chains are declared (which creates or flushes them), built-in chains are appended to, one rule
// per line in kernel order so the text reads top to bottom the way packets walk it.
func (rs Ruleset) RestoreInput() string {
	var b strings.Builder
	b.Grow(128 + 80*rs.RuleCount())
	b.WriteString("*nat\n")
	for _, c := range rs.Chains {
		if !IsBuiltinChain(c.Name) {
			b.WriteString(":")
			b.WriteString(c.Name)
			b.WriteString(" - [0:0]\n")
		}
	}
	for i := range rs.Chains {
		for j := range rs.Chains[i].Rules {
			rs.Chains[i].Rules[j].appendTo(&b)
			b.WriteByte('\n')
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
