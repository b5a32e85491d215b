package redirect

import (
	"net/netip"
	"slices"
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
	// matches are the modules loaded with -m.
	matches MatchSet
}

// ruleSyntax says where a rule line comes from, which changes what is allowed.
type ruleSyntax struct {
	shell     bool // an `iptables` command: -t allowed
	podIPVar  bool // `$POD_IP` allowed as DNAT destination (unquoted here-document)
	listStyle bool // `iptables -S` listing: -P allowed
}

var knownTargets = map[string]TargetKind{
	"RETURN": TargetReturn, "ACCEPT": TargetAccept, "REDIRECT": TargetRedirect, "DNAT": TargetDNAT,
	"TPROXY": TargetTProxy, "MARK": TargetMark, "CONNMARK": TargetConnmark,
}

// MatchSet is the set of match modules a rule line loads with -m.
type MatchSet uint16

// The match modules the grammar knows.
const (
	MatchTCP MatchSet = 1 << iota
	MatchUDP
	MatchMultiport
	MatchOwner
	MatchComment
	MatchMark
	MatchSocket
	MatchConntrack
)

var matchNames = [...]string{"tcp", "udp", "multiport", "owner", "comment", "mark", "socket", "conntrack"}

// Has reports whether every module of m was loaded.
func (s MatchSet) Has(m MatchSet) bool { return s&m == m }

// Names lists the loaded modules in a fixed order.
func (s MatchSet) Names() []string {
	var out []string
	for i, n := range matchNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func matchByName(name string) MatchSet {
	for i, n := range matchNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
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

// parsePortSpec reads a port or a lo:hi range (a range of one port is that port).
func parsePortSpec(t tok) (uint16, PortRange, *posError) {
	lo, hi, isRange := strings.Cut(t.s, ":")
	a, ok := parsePortArg(lo)
	if !ok {
		return 0, PortRange{}, portErr(tok{s: lo, off: t.off})
	}
	if !isRange {
		return a, PortRange{}, nil
	}
	b, ok := parsePortArg(hi)
	if !ok {
		return 0, PortRange{}, portErr(tok{s: hi, off: t.off + len(lo) + 1})
	}
	switch {
	case b < a:
		return 0, PortRange{}, errAt(t.off, "port range "+strconv.Quote(t.s)+" is reversed")
	case b == a:
		return a, PortRange{}, nil
	}
	return 0, PortRange{Lo: a, Hi: b}, nil
}

func portErr(t tok) *posError {
	return errAt(t.off, "invalid port "+strconv.Quote(t.s)+": port must be between 1 and 65535")
}

// parseIDArg reads an owner id or lo-hi range of ids.
func parseIDArg(s string) (lo, hi uint32, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	x, e := strconv.ParseUint(a, 10, 32)
	if e != nil || x == 1<<32-1 {
		return 0, 0, false
	}
	if !isRange {
		return uint32(x), 0, true
	}
	y, e := strconv.ParseUint(b, 10, 32)
	if e != nil || y < x || y == 1<<32-1 {
		return 0, 0, false
	}
	if y == x {
		return uint32(x), 0, true
	}
	return uint32(x), uint32(y), true
}

// parseMarkArg reads value[/mask] in decimal or 0x hex; the mask defaults to all bits.
func parseMarkArg(s string) (v, mask uint32, ok bool) {
	a, m, hasMask := strings.Cut(s, "/")
	x, e := strconv.ParseUint(a, 0, 32)
	if e != nil || a == "" || a[0] == '+' || a[0] == '-' {
		return 0, 0, false
	}
	mask = fullMask
	if hasMask {
		y, e := strconv.ParseUint(m, 0, 32)
		if e != nil || m == "" || m[0] == '+' || m[0] == '-' {
			return 0, 0, false
		}
		mask = uint32(y)
	}
	return uint32(x), mask, true
}

var ctStates = map[string]bool{
	"INVALID": true, "NEW": true, "ESTABLISHED": true, "RELATED": true, "UNTRACKED": true, "SNAT": true, "DNAT": true,
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

	targetName string
	neg        bool
	negOff     int
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
	case "-j", "--jump":
		return false, rp.jump(t)
	case "--to-ports", "--to-port", "--to-destination", "--on-port", "--on-ip", "--tproxy-mark",
		"--set-xmark", "--set-mark", "--save-mark", "--restore-mark", "--nfmask", "--ctmask", "--mask":
		return false, rp.targetOption(t)
	}
	if rp.targetName != "" && matchOptions[t.s] {
		return false, errAt(t.off, "option "+t.s+" after the target: matches must come before -j")
	}
	switch t.s {
	case "-p", "--protocol":
		return true, rp.protocol(t)
	case "-s", "--source", "--src", "-d", "--destination", "--dst":
		return true, rp.address(t)
	case "-i", "--in-interface", "-o", "--out-interface":
		return true, rp.iface(t)
	case "-m", "--match":
		return false, rp.match(t)
	case "--dport", "--destination-port", "--sport", "--source-port":
		return true, rp.portMatch(t, false)
	case "--dports", "--destination-ports", "--sports", "--source-ports":
		return true, rp.portMatch(t, true)
	case "--uid-owner", "--gid-owner":
		return true, rp.owner(t)
	case "--mark":
		return true, rp.mark(t)
	case "--transparent":
		return false, rp.transparent(t)
	case "--ctstate":
		return true, rp.ctstate(t)
	case "--comment":
		return false, rp.comment(t)
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
	m := matchByName(v.s)
	switch {
	case m == 0:
		return errAt(v.off, "unsupported match "+strconv.Quote(v.s))
	case (m == MatchTCP || m == MatchUDP) && rp.rc.rule.Protocol != v.s:
		return errAt(v.off, "-m "+v.s+" needs -p "+v.s+" first")
	}
	rp.rc.matches |= m
	if m == MatchSocket {
		rp.rc.rule.Socket = true
	}
	return nil
}

// portsProtocol checks that a port option follows -p tcp or -p udp.
func (rp *ruleParser) portsProtocol(t tok) *posError {
	if p := rp.rc.rule.Protocol; p != "tcp" && p != "udp" {
		return errAt(t.off, t.s+" needs -p tcp or -p udp before it")
	}
	return nil
}

// portFields returns the source or destination port fields option name fills.
func (r *Rule) portFields(name string) (ports *[]uint16, ranges *[]PortRange, neg, multi *bool) {
	if strings.HasPrefix(name, "--s") {
		return &r.SPorts, &r.SPortRanges, &r.NegSPorts, &r.SMultiport
	}
	return &r.DPorts, &r.DPortRanges, &r.NegDPorts, &r.Multiport
}

// portMatch reads --dport/--sport, one port or lo:hi range, and with list (--dports/--sports, which
// need -m multiport) a comma list of them; a range counts as two of the kernel's 15 entries.
func (rp *ruleParser) portMatch(t tok, list bool) *posError {
	if list && !rp.rc.matches.Has(MatchMultiport) {
		return errAt(t.off, t.s+" needs -m multiport (or --match multiport) before it")
	}
	if err := rp.portsProtocol(t); err != nil {
		return err
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	ports, ranges, neg, multi := rp.rc.rule.portFields(t.s)
	if len(*ports)+len(*ranges) > 0 {
		return errAt(t.off, t.s+": ports given twice")
	}
	n := 1
	if list {
		n = strings.Count(v.s, ",") + 1 + strings.Count(v.s, ":")
		if n > maxMultiportEntries {
			return errAt(v.off, "multiport accepts at most 15 ports, got "+strconv.Itoa(n))
		}
	}
	*ports = portSlice(&rp.ports, n)[:0]
	rest, off := v.s, v.off
	for more := true; more; {
		elem := rest
		if list {
			elem, rest, more = strings.Cut(rest, ",")
		} else {
			more = false
		}
		p, pr, err := parsePortSpec(tok{s: elem, off: off})
		if err != nil {
			return err
		}
		if p != 0 {
			*ports = append(*ports, p)
		} else {
			*ranges = append(*ranges, pr)
		}
		off += len(elem) + 1
	}
	if len(*ports) == 0 {
		*ports = nil
	}
	*multi, *neg = *multi || list, rp.neg
	return nil
}

// matchValue reads the value of an option of match module m, which must have been loaded.
func (rp *ruleParser) matchValue(t tok, m MatchSet) (tok, *posError) {
	if !rp.rc.matches.Has(m) {
		return tok{}, errAt(t.off, t.s+" needs -m "+m.Names()[0]+" before it")
	}
	return rp.value(t.s)
}

// owner reads --uid-owner and --gid-owner: a numeric id or lo-hi range.
func (rp *ruleParser) owner(t tok) *posError {
	v, err := rp.matchValue(t, MatchOwner)
	if err != nil {
		return err
	}
	lo, hi, ok := parseIDArg(v.s)
	r := &rp.rc.rule
	if t.s == "--gid-owner" {
		if !ok {
			return errAt(v.off, "--gid-owner must be a numeric GID or range, got "+strconv.Quote(v.s))
		}
		r.HasGID, r.GID, r.GIDMax, r.NegGID = true, lo, hi, rp.neg
		return nil
	}
	if !ok {
		return errAt(v.off, "--uid-owner must be a numeric UID or range, got "+strconv.Quote(v.s))
	}
	r.HasUID, r.UID, r.UIDMax, r.NegUID = true, lo, hi, rp.neg
	return nil
}

func (rp *ruleParser) mark(t tok) *posError {
	v, err := rp.matchValue(t, MatchMark)
	if err != nil {
		return err
	}
	m, mask, ok := parseMarkArg(v.s)
	if !ok {
		return errAt(v.off, "invalid mark "+strconv.Quote(v.s)+": want value[/mask]")
	}
	r := &rp.rc.rule
	r.HasMark, r.Mark, r.MarkMask, r.NegMark = true, m, mask, rp.neg
	return nil
}

func (rp *ruleParser) transparent(t tok) *posError {
	if !rp.rc.matches.Has(MatchSocket) {
		return errAt(t.off, t.s+" needs -m socket before it")
	}
	rp.rc.rule.SocketTransparent = true
	return nil
}

func (rp *ruleParser) ctstate(t tok) *posError {
	v, err := rp.matchValue(t, MatchConntrack)
	if err != nil {
		return err
	}
	for _, st := range strings.Split(v.s, ",") {
		if !ctStates[st] {
			return errAt(v.off, "unknown conntrack state "+strconv.Quote(st))
		}
	}
	r := &rp.rc.rule
	r.CTState, r.NegCTState = v.s, rp.neg
	return nil
}

func (rp *ruleParser) comment(t tok) *posError {
	v, err := rp.matchValue(t, MatchComment)
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

// matchOptions are the options that must come before -j.
var matchOptions = map[string]bool{
	"-p": true, "--protocol": true, "-s": true, "--source": true, "--src": true, "-d": true,
	"--destination": true, "--dst": true, "-i": true, "--in-interface": true, "-o": true,
	"--out-interface": true, "-m": true, "--match": true, "--dport": true, "--destination-port": true,
	"--sport": true, "--source-port": true, "--dports": true, "--destination-ports": true,
	"--sports": true, "--source-ports": true, "--uid-owner": true, "--gid-owner": true,
	"--mark": true, "--transparent": true, "--ctstate": true, "--comment": true,
}

// targetOptionKinds says which target each target option belongs to.
var targetOptionKinds = map[string][]TargetKind{
	"--to-ports": {TargetRedirect}, "--to-port": {TargetRedirect}, "--to-destination": {TargetDNAT},
	"--on-port": {TargetTProxy}, "--on-ip": {TargetTProxy}, "--tproxy-mark": {TargetTProxy},
	"--set-xmark": {TargetMark, TargetConnmark}, "--set-mark": {TargetMark, TargetConnmark},
	"--save-mark": {TargetConnmark}, "--restore-mark": {TargetConnmark},
	"--nfmask": {TargetConnmark}, "--ctmask": {TargetConnmark}, "--mask": {TargetConnmark},
}

// targetOption reads an option of the rule's target.
func (rp *ruleParser) targetOption(t tok) *posError {
	tg := &rp.rc.rule.Target
	kinds := targetOptionKinds[t.s]
	if !slices.Contains(kinds, tg.Kind) {
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = Target{Kind: k}.Name()
		}
		return errAt(t.off, t.s+" is only valid after -j "+strings.Join(names, " or -j "))
	}
	if t.s == "--save-mark" || t.s == "--restore-mark" {
		if tg.Op != "" {
			return errAt(t.off, "more than one CONNMARK operation")
		}
		tg.Op = t.s[2:]
		return nil
	}
	v, err := rp.value(t.s)
	if err != nil {
		return err
	}
	bad := func(what string) *posError {
		return errAt(v.off, "invalid "+t.s+" "+strconv.Quote(v.s)+": "+what)
	}
	switch t.s {
	case "--to-ports", "--to-port", "--on-port":
		p, ok := parsePortArg(v.s)
		if !ok {
			return portErr(v)
		}
		tg.Port = p
	case "--to-destination":
		to, ok := parseDNATDest(v.s, rp.syn.podIPVar)
		if !ok {
			return errAt(v.off, "invalid --to-destination "+strconv.Quote(v.s))
		}
		tg.To = to
	case "--on-ip":
		a, err := netip.ParseAddr(v.s)
		if err != nil || a.Zone() != "" {
			return bad("want an address")
		}
		tg.To = ""
		if !a.IsUnspecified() {
			tg.To = a.String()
		}
	case "--tproxy-mark", "--set-xmark", "--set-mark":
		m, mask, ok := parseMarkArg(v.s)
		if !ok {
			return bad("want value[/mask]")
		}
		if t.s == "--set-mark" {
			mask |= m
		}
		if tg.Kind == TargetConnmark {
			if tg.Op != "" {
				return errAt(t.off, "more than one CONNMARK operation")
			}
			tg.Op = ConnmarkSet
		}
		tg.Mark, tg.Mask = m, mask
	default: // --nfmask, --ctmask, --mask
		m, err := strconv.ParseUint(v.s, 0, 32)
		if err != nil {
			return bad("want a mask")
		}
		if t.s != "--ctmask" {
			tg.NfMask = uint32(m)
		}
		if t.s != "--nfmask" {
			tg.CtMask = uint32(m)
		}
	}
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
	t := &r.Target
	switch {
	case t.Kind == TargetRedirect && t.Port == 0:
		return errAt(endOff, "REDIRECT without --to-ports")
	case t.Kind == TargetDNAT && t.To == "":
		return errAt(endOff, "DNAT without --to-destination")
	case t.Kind == TargetTProxy && t.Port == 0:
		return errAt(endOff, "TPROXY without --on-port")
	case t.Kind == TargetMark && t.Mask == 0 && t.Mark == 0:
		return errAt(endOff, "MARK without --set-xmark or --set-mark")
	case t.Kind == TargetConnmark && t.Op == "":
		return errAt(endOff, "CONNMARK without --save-mark, --restore-mark or --set-xmark")
	case t.Kind == TargetConnmark && t.Op == ConnmarkSet && (t.NfMask != 0 || t.CtMask != 0):
		return errAt(endOff, "CONNMARK --set-xmark takes no --nfmask, --ctmask or --mask")
	}
	return nil
}

func ruleIsEmpty(r *Rule) bool {
	return r.Protocol == "" && !r.Src.IsValid() && !r.Dst.IsValid() && r.InIface == "" && r.OutIface == "" &&
		!r.HasUID && !r.HasGID && len(r.DPorts)+len(r.DPortRanges)+len(r.SPorts)+len(r.SPortRanges) == 0 &&
		!r.HasMark && !r.Socket && r.CTState == "" && r.Comment == ""
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
