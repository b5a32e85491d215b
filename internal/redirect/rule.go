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
	TargetTProxy                         // hand to a local socket unchanged (mangle table)
	TargetMark                           // set the packet mark, then continue
	TargetConnmark                       // save, restore or set the connection mark, then continue
)

// ConnmarkOp is what a TargetConnmark rule does with the connection mark.
type ConnmarkOp uint8

// The CONNMARK operations.
const (
	ConnmarkSave    ConnmarkOp = iota + 1 // --save-mark: packet mark to connection mark
	ConnmarkRestore                       // --restore-mark: connection mark to packet mark
	ConnmarkSet                           // --set-xmark value/mask
)

func (o ConnmarkOp) String() string {
	switch o {
	case ConnmarkSave:
		return "save-mark"
	case ConnmarkRestore:
		return "restore-mark"
	case ConnmarkSet:
		return "set-xmark"
	}
	return "?"
}

// fullMask is the mark mask iptables assumes when none is given.
const fullMask = 0xffffffff

// Target is the -j part of a rule.
type Target struct {
	Kind TargetKind
	// Op is the TargetConnmark operation.
	Op ConnmarkOp
	// Port is the --to-ports value for TargetRedirect and the --on-port of TargetTProxy.
	Port uint16
	// Mark and Mask are the --set-xmark value/mask of TargetMark and of TargetConnmark's
	// ConnmarkSet (--set-mark v/m is stored as the equivalent v/(m|v)), and the --tproxy-mark of
	// TargetTProxy (Mask 0: none given). With Kind, Op and Port they fill 16 bytes.
	Mark, Mask uint32
	// Chain is the jump destination for TargetJump.
	Chain string
	// To is the --to-destination value for TargetDNAT: an address, address:port, or
	// PodIPPlaceholder when the address is only known in the pod. For TargetTProxy it is the
	// --on-ip address, "" for the default (any address).
	To string
}

// Name is the target as written after -j: the chain of a jump, or the extension's name.
func (t Target) Name() string {
	switch t.Kind {
	case TargetJump:
		return t.Chain
	case TargetReturn:
		return "RETURN"
	case TargetAccept:
		return "ACCEPT"
	case TargetRedirect:
		return "REDIRECT"
	case TargetDNAT:
		return "DNAT"
	case TargetTProxy:
		return "TPROXY"
	case TargetMark:
		return "MARK"
	case TargetConnmark:
		return "CONNMARK"
	}
	return "?"
}

// PortRange is an inclusive lo:hi range of ports (Lo < Hi; a single port is a plain uint16).
type PortRange struct{ Lo, Hi uint16 }

// Rule is one nat-table rule. It is the single model shared by rendering, parsing, explaining
// and diffing, so a rule read from OSM's shell and one read from iptables-save compare equal
// when they mean the same thing.
type Rule struct {
	Chain string

	Protocol string // "" (any) or "tcp"
	// NegProtocol, NegSrc and NegDst negate Protocol, Src and Dst (declared together, which
	// keeps the rule small).
	NegProtocol, NegSrc, NegDst bool

	Src, Dst netip.Prefix // zero value: any

	InIface, OutIface       string
	NegInIface, NegOutIface bool

	HasUID, NegUID bool
	UID            uint32

	// DPorts are destination ports. Multiport says the rule uses the multiport match (needed
	// for more than one port, and how exclusions are always written).
	DPorts    []uint16
	NegDPorts bool
	Multiport bool

	Comment string
	Target  Target

	// More holds the matches OSM's and meshkeeper's rules never use; nil when the rule has
	// none, which keeps the common rule small.
	More *MoreMatches
}

// MoreMatches are the less common matches of a rule (Istio's, and the init program's input).
type MoreMatches struct {
	// UIDMax is the end of a --uid-owner lo-hi range (Rule.UID is its start).
	UIDMax uint32

	// HasGID: an owner match on the socket's group, --gid-owner GID or GID-GIDMax.
	HasGID bool
	GID    uint32
	GIDMax uint32
	NegGID bool

	// DPortRanges are the lo:hi ranges of the destination port list (Rule.DPorts holds its
	// single ports; Rule.NegDPorts negates the whole list).
	DPortRanges []PortRange

	// SPorts and SPortRanges are source ports (--sport, or --sports with SMultiport).
	SPorts      []uint16
	SPortRanges []PortRange
	NegSPorts   bool
	SMultiport  bool

	// HasMark: -m mark --mark Mark/MarkMask.
	HasMark  bool
	Mark     uint32
	MarkMask uint32
	NegMark  bool

	// Socket: -m socket, with --transparent when SocketTransparent.
	Socket            bool
	SocketTransparent bool

	// CTState is the -m conntrack --ctstate list (upper case, as given), "" for none.
	CTState    string
	NegCTState bool
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
	m := r.More
	if m == nil {
		m = &noMore
	}
	if r.HasUID || m.HasGID {
		b.WriteString(" -m owner")
		if r.HasUID {
			option(b, r.NegUID, " --uid-owner ", idText(r.UID, m.UIDMax))
		}
		if m.HasGID {
			option(b, m.NegGID, " --gid-owner ", idText(m.GID, m.GIDMax))
		}
	}
	appendPorts(b, m.SPorts, m.SPortRanges, m.NegSPorts, m.SMultiport, " --sport ", " --sports ")
	appendPorts(b, r.DPorts, m.DPortRanges, r.NegDPorts, r.Multiport, " --dport ", " --dports ")
	if m.HasMark {
		b.WriteString(" -m mark")
		option(b, m.NegMark, " --mark ", markText(m.Mark, m.MarkMask, false))
	}
	if m.Socket {
		b.WriteString(" -m socket")
		if m.SocketTransparent {
			b.WriteString(" --transparent")
		}
	}
	if m.CTState != "" {
		b.WriteString(" -m conntrack")
		option(b, m.NegCTState, " --ctstate ", m.CTState)
	}
	if r.Comment != "" {
		b.WriteString(" -m comment --comment ")
		b.WriteString(quoteComment(r.Comment))
	}
	b.WriteString(" -j ")
	b.WriteString(r.Target.Name())
	t := &r.Target
	switch t.Kind {
	case TargetRedirect:
		b.WriteString(" --to-ports ")
		b.WriteString(strconv.FormatUint(uint64(t.Port), 10))
	case TargetDNAT:
		b.WriteString(" --to-destination ")
		b.WriteString(t.To)
	case TargetTProxy:
		b.WriteString(" --on-port ")
		b.WriteString(strconv.FormatUint(uint64(t.Port), 10))
		if t.To != "" {
			b.WriteString(" --on-ip ")
			b.WriteString(t.To)
		}
		if t.Mask != 0 {
			b.WriteString(" --tproxy-mark ")
			b.WriteString(markText(t.Mark, t.Mask, true))
		}
	case TargetMark:
		b.WriteString(" --set-xmark ")
		b.WriteString(markText(t.Mark, t.Mask, true))
	case TargetConnmark:
		b.WriteString(" --")
		b.WriteString(t.Op.String())
		if t.Op == ConnmarkSet {
			b.WriteString(" ")
			b.WriteString(markText(t.Mark, t.Mask, true))
		}
	}
}

// noMore stands for a rule's absent MoreMatches.
var noMore MoreMatches

// appendPorts writes a port match: one port or range with single, otherwise (or when multi is
// set) a multiport list, single ports first.
func appendPorts(b *strings.Builder, ports []uint16, ranges []PortRange, neg, multi bool, single, list string) {
	n := len(ports) + len(ranges)
	if n == 0 {
		return
	}
	if !multi && n == 1 {
		option(b, neg, single, "")
		if len(ports) == 1 {
			b.WriteString(strconv.FormatUint(uint64(ports[0]), 10))
		} else {
			appendRange(b, ranges[0])
		}
		return
	}
	b.WriteString(" -m multiport")
	option(b, neg, list, "")
	for i, p := range ports {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(p), 10))
	}
	for i, pr := range ranges {
		if i > 0 || len(ports) > 0 {
			b.WriteByte(',')
		}
		appendRange(b, pr)
	}
}

func appendRange(b *strings.Builder, pr PortRange) {
	b.WriteString(strconv.FormatUint(uint64(pr.Lo), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(pr.Hi), 10))
}

// idText is an owner id or lo-hi range.
func idText(lo, hi uint32) string {
	s := strconv.FormatUint(uint64(lo), 10)
	if hi > lo {
		s += "-" + strconv.FormatUint(uint64(hi), 10)
	}
	return s
}

func hexText(v uint32) string { return "0x" + strconv.FormatUint(uint64(v), 16) }

// markText is a mark value and mask the way iptables-save prints them: a match's full mask is
// left out, a target's always written.
func markText(v, mask uint32, target bool) string {
	if mask == fullMask && !target {
		return hexText(v)
	}
	return hexText(v) + "/" + hexText(mask)
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

// quoteComment writes a comment the way iptables-save does and splitFields reads it back: between
// double quotes, as it is. A parsed comment holds no quote, backslash or control character (the
// parser refuses them), so that is exact; anything else (a rule built in code) is quoted with Go's
// escapes, which iptables-restore would not read but which at least stay on one line.
func quoteComment(s string) string {
	if strings.ContainsAny(s, "\"\\") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return `"` + s + `"`
}
