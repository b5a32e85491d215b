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
	rp := ruleParser{toks: toks, syn: syn, ports: *arena}
	// The arena is handed back rather than pointed to from rp: a pointer kept in rp would make
	// the caller's builder escape to the heap on every parse.
	defer func() { *arena = rp.ports }()
	rp.rc.addrOf = -1
	for ; rp.i < len(toks); rp.i++ {
		t := toks[rp.i]
		if t.s == "!" {
			if rp.neg {
				return rp.rc, errAt(t.off, "repeated '!'")
			}
			rp.neg, rp.negOff = true, t.off
			continue
		}
		negatable, err := rp.option(t)
		if err != nil {
			return rp.rc, err
		}
		if rp.neg && !negatable {
			return rp.rc, errAt(rp.negOff, "'!' cannot be used with "+t.s)
		}
		rp.neg = false
	}
	if rp.neg {
		return rp.rc, errAt(rp.negOff, "'!' at end of rule")
	}
	return rp.rc, rp.finish(endOff)
}

// ruleParser is the state of one command line being read: the position in its tokens, the
// matches loaded so far (options such as --dports are only valid after theirs) and a pending '!'.
type ruleParser struct {
	toks  []tok
	i     int
	syn   ruleSyntax
	ports []uint16 // arena for destination port lists, see portSlice
	rc    ruleCmd

	mTCP, mMulti, mOwner, mComment bool
	targetName                     string
	neg                            bool
	negOff                         int
}

// value consumes the argument of option name.
func (rp *ruleParser) value(name string) (tok, *posError) {
	if rp.i+1 >= len(rp.toks) || (rp.toks[rp.i+1].s == "!" && name != "--comment") {
		return tok{}, errAt(rp.toks[rp.i].off, "option "+name+" requires a value")
	}
	rp.i++
	return rp.toks[rp.i], nil
}

// option reads option t and its arguments; negatable says whether a preceding '!' applies to it.
func (rp *ruleParser) option(t tok) (negatable bool, err *posError) {
	switch t.s {
	case "-t", "--table":
		return false, rp.table(t)
	case "-A", "--append", "-I", "--insert", "-N", "--new-chain", "-P", "--policy":
		return false, rp.command(t)
	case "-p", "--protocol":
		return true, rp.protocol(t)
	case "-s", "--source", "--src", "-d", "--destination", "--dst":
		return true, rp.address(t)
	case "-i", "--in-interface", "-o", "--out-interface":
		return true, rp.iface(t)
	case "-m", "--match":
		return false, rp.match(t)
	case "--dport", "--destination-port":
		return true, rp.dport(t)
	case "--dports", "--destination-ports":
		return true, rp.dports(t)
	case "--uid-owner":
		return true, rp.uidOwner(t)
	case "--comment":
		return false, rp.comment(t)
	case "-j", "--jump":
		return false, rp.jump(t)
	case "--to-ports", "--to-port":
		return false, rp.toPorts(t)
	case "--to-destination":
		return false, rp.toDestination(t)
	}
	if strings.HasPrefix(t.s, "-") {
		return false, errAt(t.off, "unknown option "+strconv.Quote(t.s))
	}
	return false, errAt(t.off, "unexpected argument "+strconv.Quote(t.s))
}

func (rp *ruleParser) table(t tok) *posError {
	if !rp.syn.shell {
		return errAt(t.off, "-t is not allowed here: the table comes from the *table line")
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	rp.rc.table = v.s
	return nil
}

// command reads -A/-I/-N/-P and the chain (and the -I position or the -P policy).
func (rp *ruleParser) command(t tok) *posError {
	rc := &rp.rc
	if rc.op != 0 {
		return errAt(t.off, "more than one command in a rule ("+t.s+")")
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	if !validChainName(v.s) {
		return errAt(v.off, "invalid chain name "+strconv.Quote(v.s))
	}
	rc.opOff = t.off
	rc.chain = v.s
	rc.rule.Chain = v.s
	switch t.s {
	case "-A", "--append":
		rc.op = 'A'
	case "-I", "--insert":
		rc.op = 'I'
		return rp.insertPosition()
	case "-N", "--new-chain":
		rc.op = 'N'
	default:
		return rp.policy(t)
	}
	return nil
}

// insertPosition reads the optional rule number after -I CHAIN.
func (rp *ruleParser) insertPosition() *posError {
	if rp.i+1 >= len(rp.toks) {
		return nil
	}
	next := rp.toks[rp.i+1]
	if next.s == "" || next.s[0] < '0' || next.s[0] > '9' {
		return nil
	}
	n, e := strconv.Atoi(next.s)
	if e != nil || n < 1 || n > 1<<20 {
		return errAt(next.off, "invalid rule number "+strconv.Quote(next.s))
	}
	rp.rc.pos = n
	rp.i++
	return nil
}

func (rp *ruleParser) policy(t tok) *posError {
	if !rp.syn.listStyle && !rp.syn.shell {
		return errAt(t.off, "-P is not allowed here")
	}
	rp.rc.op = 'P'
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	if v.s != "ACCEPT" {
		return errAt(v.off, "only the ACCEPT policy is supported in the nat table, got "+strconv.Quote(v.s))
	}
	return nil
}

func (rp *ruleParser) protocol(t tok) *posError {
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	r := &rp.rc.rule
	switch p := strings.ToLower(v.s); p {
	case "tcp", "udp", "sctp", "icmp", "icmpv6", "ipv6-icmp":
		r.Protocol = p
	case "all", "0":
		r.Protocol = ""
	default:
		return errAt(v.off, "unsupported protocol "+strconv.Quote(v.s))
	}
	r.NegProtocol = rp.neg
	return nil
}

func (rp *ruleParser) address(t tok) *posError {
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	p, ok := parseAddrArg(v.s)
	if !ok {
		return errAt(v.off, "invalid address or CIDR "+strconv.Quote(v.s))
	}
	if rp.rc.addrOf < 0 {
		rp.rc.addrOf = v.off
	}
	r := &rp.rc.rule
	if t.s[1] == 's' || t.s == "--source" || t.s == "--src" {
		r.Src, r.NegSrc = p, rp.neg
	} else {
		r.Dst, r.NegDst = p, rp.neg
	}
	return nil
}

func (rp *ruleParser) iface(t tok) *posError {
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	if !validIfaceArg(v.s) {
		return errAt(v.off, "invalid interface name "+strconv.Quote(v.s))
	}
	r := &rp.rc.rule
	if t.s == "-i" || t.s == "--in-interface" {
		r.InIface, r.NegInIface = v.s, rp.neg
	} else {
		r.OutIface, r.NegOutIface = v.s, rp.neg
	}
	return nil
}

// match loads a match module; the options that need it check for it.
func (rp *ruleParser) match(t tok) *posError {
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	switch v.s {
	case "tcp":
		if rp.rc.rule.Protocol != "tcp" {
			return errAt(v.off, "-m tcp needs -p tcp first")
		}
		rp.mTCP = true
	case "multiport":
		rp.mMulti = true
	case "owner":
		rp.mOwner = true
	case "comment":
		rp.mComment = true
	default:
		return errAt(v.off, "unsupported match "+strconv.Quote(v.s))
	}
	return nil
}

func (rp *ruleParser) dport(t tok) *posError {
	r := &rp.rc.rule
	if !rp.mTCP && r.Protocol != "tcp" {
		return errAt(t.off, t.s+" needs -p tcp before it")
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	p, ok := parsePortArg(v.s)
	if !ok {
		return portErr(v)
	}
	if len(r.DPorts) > 0 {
		return errAt(t.off, "destination ports given twice")
	}
	r.DPorts = portSlice(&rp.ports, 1)
	r.DPorts[0] = p
	r.NegDPorts = rp.neg
	return nil
}

func (rp *ruleParser) dports(t tok) *posError {
	r := &rp.rc.rule
	if !rp.mMulti {
		return errAt(t.off, t.s+" needs -m multiport (or --match multiport) before it")
	}
	if r.Protocol != "tcp" {
		return errAt(t.off, t.s+" needs -p tcp before it")
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	if len(r.DPorts) > 0 {
		return errAt(t.off, "destination ports given twice")
	}
	n := strings.Count(v.s, ",") + 1
	if n > maxMultiportEntries {
		return errAt(v.off, "multiport accepts at most 15 ports, got "+strconv.Itoa(n))
	}
	r.DPorts = portSlice(&rp.ports, n)[:0]
	rest, off := v.s, v.off
	for {
		elem, tail, more := strings.Cut(rest, ",")
		p, ok := parsePortArg(elem)
		if !ok {
			return portErr(tok{s: elem, off: off})
		}
		r.DPorts = append(r.DPorts, p)
		if !more {
			break
		}
		off += len(elem) + 1
		rest = tail
	}
	r.Multiport = true
	r.NegDPorts = rp.neg
	return nil
}

// matchValue reads the value of an option of match module name, loaded says whether -m name came
// before it.
func (rp *ruleParser) matchValue(t tok, loaded bool, name string) (tok, *posError) {
	if !loaded {
		return tok{}, errAt(t.off, t.s+" needs -m "+name+" before it")
	}
	return rp.value(t.s)
}

func (rp *ruleParser) uidOwner(t tok) *posError {
	v, err := rp.matchValue(t, rp.mOwner, "owner")
	if err != nil {
		return err
	}
	n, e := strconv.ParseUint(v.s, 10, 32)
	if e != nil {
		return errAt(v.off, "--uid-owner must be a numeric UID, got "+strconv.Quote(v.s))
	}
	r := &rp.rc.rule
	r.HasUID, r.UID, r.NegUID = true, uint32(n), rp.neg
	return nil
}

func (rp *ruleParser) comment(t tok) *posError {
	v, err := rp.matchValue(t, rp.mComment, "comment")
	if err != nil {
		return err
	}
	rp.rc.rule.Comment = v.s
	return nil
}

func (rp *ruleParser) jump(t tok) *posError {
	if rp.targetName != "" {
		return errAt(t.off, "more than one -j target")
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	rp.targetName = v.s
	r := &rp.rc.rule
	if k, ok := knownTargets[v.s]; ok {
		r.Target.Kind = k
		return nil
	}
	if !validChainName(v.s) {
		return errAt(v.off, "invalid target "+strconv.Quote(v.s))
	}
	r.Target = Target{Kind: TargetJump, Chain: v.s}
	return nil
}

// targetValue reads the value of an option of target kind (named for messages).
func (rp *ruleParser) targetValue(t tok, kind TargetKind, name string) (tok, *posError) {
	if rp.rc.rule.Target.Kind != kind {
		return tok{}, errAt(t.off, t.s+" is only valid after -j "+name)
	}
	return rp.value(t.s)
}

func (rp *ruleParser) toPorts(t tok) *posError {
	r := &rp.rc.rule
	v, err := rp.targetValue(t, TargetRedirect, "REDIRECT")
	if err != nil {
		return err
	}
	p, ok := parsePortArg(v.s)
	if !ok {
		return portErr(v)
	}
	r.Target.Port = p
	return nil
}

func (rp *ruleParser) toDestination(t tok) *posError {
	r := &rp.rc.rule
	v, err := rp.targetValue(t, TargetDNAT, "DNAT")
	if err != nil {
		return err
	}
	to, ok := parseDNATDest(v.s, rp.syn.podIPVar)
	if !ok {
		return errAt(v.off, "invalid --to-destination "+strconv.Quote(v.s))
	}
	r.Target.To = to
	return nil
}

// finish checks what only the whole line can tell: a command, and a complete target.
func (rp *ruleParser) finish(endOff int) *posError {
	rc, r := &rp.rc, &rp.rc.rule
	switch rc.op {
	case 0:
		return errAt(endOff, "missing command: expected -A, -I or -N")
	case 'N', 'P':
		if !ruleIsEmpty(r) || rp.targetName != "" {
			return errAt(rc.opOff, "options are not allowed with -N or -P")
		}
		return nil
	}
	if rp.targetName == "" {
		return errAt(endOff, "rule has no -j target")
	}
	if r.Target.Kind == TargetRedirect && r.Target.Port == 0 {
		return errAt(endOff, "REDIRECT without --to-ports")
	}
	if r.Target.Kind == TargetDNAT && r.Target.To == "" {
		return errAt(endOff, "DNAT without --to-destination")
	}
	return nil
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
