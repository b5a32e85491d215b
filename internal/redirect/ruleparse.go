package redirect

import (
	"net/netip"
	"strconv"
	"strings"
)

// ruleCmd is one parsed iptables command line: the operation, its chain and the rule.
type ruleCmd struct {
	op     byte // 'A' append, 'I' insert, 'N' new chain, 'P' policy
	opOff  int
	chain  string
	pos    int // -I position, 1-based; 0 = top
	table  string
	addrOf int // offset of the first address, for family errors
	rule   Rule
}

// ruleSyntax says where a rule line comes from, which changes what is allowed.
type ruleSyntax struct {
	shell     bool // an `iptables` command: -t allowed
	podIPVar  bool // `$POD_IP` allowed as DNAT destination (unquoted here-document)
	listStyle bool // `iptables -S` listing: -P allowed
}

var knownTargets = map[string]TargetKind{
	"RETURN": TargetReturn, "ACCEPT": TargetAccept, "REDIRECT": TargetRedirect, "DNAT": TargetDNAT,
}

func validChainName(s string) bool {
	if s == "" || len(s) > 28 || s[0] == '-' || s[0] == '!' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '\'' || c == '$' || c == '`' || c >= 0x7f {
			return false
		}
	}
	return true
}

// parseAddrArg reads -s/-d values: an address (host) or a CIDR.
func parseAddrArg(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4In6() || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func parsePortArg(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

func portErr(t tok) *posError {
	if strings.ContainsAny(t.s, ":-") {
		return errAt(t.off, "port ranges are not supported: "+strconv.Quote(t.s))
	}
	return errAt(t.off, "invalid port "+strconv.Quote(t.s)+": port must be between 1 and 65535")
}

func validIfaceArg(s string) bool {
	return ValidInterfaceName(strings.TrimSuffix(s, "+")) || s == "+"
}

// parseRuleTokens reads one iptables command line (without the program name). Unknown options
// are errors: a rule we do not fully understand cannot be compared by meaning.
func parseRuleTokens(toks []tok, syn ruleSyntax, endOff int, arena *[]uint16) (ruleCmd, *posError) {
	var rc ruleCmd
	rc.addrOf = -1
	r := &rc.rule
	var mTCP, mMulti, mOwner, mComment bool
	var targetName string
	neg, negOff := false, 0
	i := 0
	value := func(name string) (tok, *posError) {
		if i+1 >= len(toks) || (toks[i+1].s == "!" && name != "--comment") {
			return tok{}, errAt(toks[i].off, "option "+name+" requires a value")
		}
		i++
		return toks[i], nil
	}
	for ; i < len(toks); i++ {
		t := toks[i]
		if t.s == "!" {
			if neg {
				return rc, errAt(t.off, "repeated '!'")
			}
			neg, negOff = true, t.off
			continue
		}
		negatable := false
		var err *posError
		var v tok
		switch t.s {
		case "-t", "--table":
			if !syn.shell {
				return rc, errAt(t.off, "-t is not allowed here: the table comes from the *table line")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			rc.table = v.s
		case "-A", "--append", "-I", "--insert", "-N", "--new-chain", "-P", "--policy":
			if rc.op != 0 {
				return rc, errAt(t.off, "more than one command in a rule ("+t.s+")")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			if !validChainName(v.s) {
				return rc, errAt(v.off, "invalid chain name "+strconv.Quote(v.s))
			}
			rc.opOff = t.off
			rc.chain = v.s
			r.Chain = v.s
			switch t.s {
			case "-A", "--append":
				rc.op = 'A'
			case "-I", "--insert":
				rc.op = 'I'
				if i+1 < len(toks) && toks[i+1].s != "" && toks[i+1].s[0] >= '0' && toks[i+1].s[0] <= '9' {
					n, e := strconv.Atoi(toks[i+1].s)
					if e != nil || n < 1 || n > 1<<20 {
						return rc, errAt(toks[i+1].off, "invalid rule number "+strconv.Quote(toks[i+1].s))
					}
					rc.pos = n
					i++
				}
			case "-N", "--new-chain":
				rc.op = 'N'
			default:
				if !syn.listStyle && !syn.shell {
					return rc, errAt(t.off, "-P is not allowed here")
				}
				rc.op = 'P'
				if v, err = value(t.s); err != nil {
					return rc, err
				}
				if v.s != "ACCEPT" {
					return rc, errAt(v.off, "only the ACCEPT policy is supported in the nat table, got "+strconv.Quote(v.s))
				}
			}
		case "-p", "--protocol":
			negatable = true
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			switch p := strings.ToLower(v.s); p {
			case "tcp", "udp", "sctp", "icmp", "icmpv6", "ipv6-icmp":
				r.Protocol = p
			case "all", "0":
				r.Protocol = ""
			default:
				return rc, errAt(v.off, "unsupported protocol "+strconv.Quote(v.s))
			}
			r.NegProtocol = neg
		case "-s", "--source", "--src", "-d", "--destination", "--dst":
			negatable = true
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			p, ok := parseAddrArg(v.s)
			if !ok {
				return rc, errAt(v.off, "invalid address or CIDR "+strconv.Quote(v.s))
			}
			if rc.addrOf < 0 {
				rc.addrOf = v.off
			}
			if t.s[1] == 's' || t.s == "--source" || t.s == "--src" {
				r.Src, r.NegSrc = p, neg
			} else {
				r.Dst, r.NegDst = p, neg
			}
		case "-i", "--in-interface", "-o", "--out-interface":
			negatable = true
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			if !validIfaceArg(v.s) {
				return rc, errAt(v.off, "invalid interface name "+strconv.Quote(v.s))
			}
			if t.s == "-i" || t.s == "--in-interface" {
				r.InIface, r.NegInIface = v.s, neg
			} else {
				r.OutIface, r.NegOutIface = v.s, neg
			}
		case "-m", "--match":
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			switch v.s {
			case "tcp":
				if r.Protocol != "tcp" {
					return rc, errAt(v.off, "-m tcp needs -p tcp first")
				}
				mTCP = true
			case "multiport":
				mMulti = true
			case "owner":
				mOwner = true
			case "comment":
				mComment = true
			default:
				return rc, errAt(v.off, "unsupported match "+strconv.Quote(v.s))
			}
		case "--dport", "--destination-port":
			negatable = true
			if !mTCP && r.Protocol != "tcp" {
				return rc, errAt(t.off, t.s+" needs -p tcp before it")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			p, ok := parsePortArg(v.s)
			if !ok {
				return rc, portErr(v)
			}
			if len(r.DPorts) > 0 {
				return rc, errAt(t.off, "destination ports given twice")
			}
			r.DPorts = portSlice(arena, 1)
			r.DPorts[0] = p
			r.NegDPorts = neg
		case "--dports", "--destination-ports":
			negatable = true
			if !mMulti {
				return rc, errAt(t.off, t.s+" needs -m multiport (or --match multiport) before it")
			}
			if r.Protocol != "tcp" {
				return rc, errAt(t.off, t.s+" needs -p tcp before it")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			if len(r.DPorts) > 0 {
				return rc, errAt(t.off, "destination ports given twice")
			}
			n := strings.Count(v.s, ",") + 1
			if n > maxMultiportEntries {
				return rc, errAt(v.off, "multiport accepts at most 15 ports, got "+strconv.Itoa(n))
			}
			r.DPorts = portSlice(arena, n)[:0]
			rest, off := v.s, v.off
			for {
				elem, tail, more := strings.Cut(rest, ",")
				p, ok := parsePortArg(elem)
				if !ok {
					return rc, portErr(tok{s: elem, off: off})
				}
				r.DPorts = append(r.DPorts, p)
				if !more {
					break
				}
				off += len(elem) + 1
				rest = tail
			}
			r.Multiport = true
			r.NegDPorts = neg
		case "--uid-owner":
			negatable = true
			if !mOwner {
				return rc, errAt(t.off, "--uid-owner needs -m owner before it")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			n, e := strconv.ParseUint(v.s, 10, 32)
			if e != nil {
				return rc, errAt(v.off, "--uid-owner must be a numeric UID, got "+strconv.Quote(v.s))
			}
			r.HasUID, r.UID, r.NegUID = true, uint32(n), neg
		case "--comment":
			if !mComment {
				return rc, errAt(t.off, "--comment needs -m comment before it")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			r.Comment = v.s
		case "-j", "--jump":
			if targetName != "" {
				return rc, errAt(t.off, "more than one -j target")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			targetName = v.s
			if k, ok := knownTargets[v.s]; ok {
				r.Target.Kind = k
			} else {
				if !validChainName(v.s) {
					return rc, errAt(v.off, "invalid target "+strconv.Quote(v.s))
				}
				r.Target = Target{Kind: TargetJump, Chain: v.s}
			}
		case "--to-ports", "--to-port":
			if r.Target.Kind != TargetRedirect {
				return rc, errAt(t.off, t.s+" is only valid after -j REDIRECT")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			p, ok := parsePortArg(v.s)
			if !ok {
				return rc, portErr(v)
			}
			r.Target.Port = p
		case "--to-destination":
			if r.Target.Kind != TargetDNAT {
				return rc, errAt(t.off, t.s+" is only valid after -j DNAT")
			}
			if v, err = value(t.s); err != nil {
				return rc, err
			}
			to, ok := parseDNATDest(v.s, syn.podIPVar)
			if !ok {
				return rc, errAt(v.off, "invalid --to-destination "+strconv.Quote(v.s))
			}
			r.Target.To = to
		default:
			if strings.HasPrefix(t.s, "-") {
				return rc, errAt(t.off, "unknown option "+strconv.Quote(t.s))
			}
			return rc, errAt(t.off, "unexpected argument "+strconv.Quote(t.s))
		}
		if neg && !negatable {
			return rc, errAt(negOff, "'!' cannot be used with "+t.s)
		}
		neg = false
	}
	if neg {
		return rc, errAt(negOff, "'!' at end of rule")
	}
	switch rc.op {
	case 0:
		return rc, errAt(endOff, "missing command: expected -A, -I or -N")
	case 'N', 'P':
		if !ruleIsEmpty(r) || targetName != "" {
			return rc, errAt(rc.opOff, "options are not allowed with -N or -P")
		}
		return rc, nil
	}
	if targetName == "" {
		return rc, errAt(endOff, "rule has no -j target")
	}
	if r.Target.Kind == TargetRedirect && r.Target.Port == 0 {
		return rc, errAt(endOff, "REDIRECT without --to-ports")
	}
	if r.Target.Kind == TargetDNAT && r.Target.To == "" {
		return rc, errAt(endOff, "DNAT without --to-destination")
	}
	return rc, nil
}

func ruleIsEmpty(r *Rule) bool {
	return r.Protocol == "" && !r.Src.IsValid() && !r.Dst.IsValid() && r.InIface == "" && r.OutIface == "" &&
		!r.HasUID && len(r.DPorts) == 0 && r.Comment == ""
}

func parseDNATDest(s string, podIPVar bool) (string, bool) {
	if s == PodIPPlaceholder {
		return s, true
	}
	if podIPVar && podIPVarLen(s) == len(s) {
		return PodIPPlaceholder, true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.String(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" && ap.Port() != 0 {
		return ap.String(), true
	}
	return "", false
}

// portSlice hands out n ports from a shared arena so a parse allocates port lists in a few
// chunks instead of once per rule. Slices are capped so appends never overlap.
func portSlice(arena *[]uint16, n int) []uint16 {
	if cap(*arena)-len(*arena) < n {
		*arena = make([]uint16, 0, max(64, n))
	}
	a := *arena
	start := len(a)
	a = a[:start+n]
	*arena = a
	return a[start : start+n : start+n]
}
