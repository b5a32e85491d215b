package redirect

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"strconv"
	"strings"

	"github.com/meshkeeper/meshkeeper/internal/text"
)

// Format names where parsed rules came from.
type Format string

const (
	FormatMeshkeeper   Format = "meshkeeper"
	FormatOSMv0        Format = "osm-v0"
	FormatOSMv1        Format = "osm-v1"
	FormatIPTablesSave Format = "iptables-save"
)

// OSMInitContainerName is the init container OSM injected.
const OSMInitContainerName = "osm-init"

// Input limits: far beyond any real pod, small enough that hostile input stays cheap.
const (
	MaxParseInput = 4 << 20
	maxChains     = 256
)

// ParseError is malformed input, positioned in the text the user gave (1-based line and
// column, columns counted in bytes).
type ParseError struct {
	Line, Column int
	Msg          string
}

func (e *ParseError) Error() string {
	return strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": " + e.Msg
}

// Parsed is a pod's redirection rules read back into the shared rule model.
type Parsed struct {
	Format Format
	// IPv4 and IPv6 are nil when the source has no rules for that family (OSM never rendered
	// IPv6).
	IPv4 *Ruleset
	IPv6 *Ruleset
	// PodIPEnv names the environment variable the rules expect the pod IP in, if any.
	PodIPEnv string
	// Container is the name of the container the rules were read from, if any.
	Container string
}

// builder applies parsed commands the way the kernel would.
type builder struct {
	sets  [2]*Ruleset
	toks  []tok
	jumps []jumpRef
	ports []uint16 // arena for destination port lists
	sawV0 bool
	sawV1 bool
	// hint is the text being parsed, used to size chains once.
	hint string
}

type jumpRef struct {
	chain string
	off   int
}

func newBuilder() builder {
	return builder{toks: make([]tok, 0, 24)}
}

func famIndex(f Family) int {
	if f == IPv6 {
		return 1
	}
	return 0
}

func (b *builder) ruleset(f Family) *Ruleset {
	i := famIndex(f)
	if b.sets[i] == nil {
		b.sets[i] = &Ruleset{Family: f, Chains: make([]Chain, 0, 6)}
	}
	return b.sets[i]
}

// apply executes one command on a ruleset. declared says custom chains must already exist
// (true for iptables and for iptables-restore).
func (b *builder) apply(rs *Ruleset, rc *ruleCmd) *posError {
	switch rc.op {
	case 'P':
		if !IsBuiltinChain(rc.chain) {
			return errAt(rc.opOff, "-P needs a built-in chain, got "+strconv.Quote(rc.chain))
		}
		rs.chainFor(rc.chain, b.capHint(rs, rc.chain))
		return nil
	case 'N':
		if len(rs.Chains) >= maxChains {
			return errAt(rc.opOff, "too many chains (at most "+strconv.Itoa(maxChains)+")")
		}
		if IsBuiltinChain(rc.chain) || rs.Chain(rc.chain) != nil {
			return errAt(rc.opOff, "chain "+rc.chain+" already exists")
		}
		rs.chainFor(rc.chain, b.capHint(rs, rc.chain))
		return nil
	}
	var c *Chain
	if IsBuiltinChain(rc.chain) {
		c = rs.chainFor(rc.chain, b.capHint(rs, rc.chain))
	} else if c = rs.Chain(rc.chain); c == nil {
		return errAt(rc.opOff, "chain "+rc.chain+" does not exist (declare it first)")
	}
	if rc.rule.Src.IsValid() || rc.rule.Dst.IsValid() {
		f := IPv4
		p := rc.rule.Dst
		if !p.IsValid() {
			p = rc.rule.Src
		}
		if !p.Addr().Is4() {
			f = IPv6
		}
		if rc.rule.Src.IsValid() && rc.rule.Dst.IsValid() && rc.rule.Src.Addr().Is4() != rc.rule.Dst.Addr().Is4() {
			return errAt(rc.addrOf, "rule mixes IPv4 and IPv6 addresses")
		}
		if rs.Family == 0 {
			rs.Family = f
		} else if rs.Family != f {
			return errAt(rc.addrOf, f.String()+" address in an "+rs.Family.String()+" ruleset")
		}
	}
	if rc.op == 'A' {
		c.Rules = append(c.Rules, rc.rule)
		return nil
	}
	pos := max(rc.pos, 1) - 1
	if pos > len(c.Rules) {
		return errAt(rc.opOff, "rule number "+strconv.Itoa(rc.pos)+" is beyond the end of chain "+rc.chain)
	}
	c.Rules = append(c.Rules, Rule{})
	copy(c.Rules[pos+1:], c.Rules[pos:])
	c.Rules[pos] = rc.rule
	return nil
}

func lineAt(s string, i int) (line string, next int) {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return s[i : i+j], i + j + 1
	}
	return s[i:], len(s)
}

// parseRestore reads iptables-restore / iptables-save text. family is 0 when it must be
// inferred from the addresses (iptables-save); base is text's offset in the root text.
func (b *builder) parseRestore(text string, base int, family Family, syn ruleSyntax) *posError {
	var cur *Ruleset
	var tableOff int
	open, nat := false, false
	b.jumps = b.jumps[:0]
	b.hint = text
	if syn.listStyle {
		open, nat = true, true
		cur = &Ruleset{Family: family}
	}
	for i := 0; i < len(text); {
		lineOff := i
		line, next := lineAt(text, i)
		i = next
		trim := strings.TrimLeft(line, " \t")
		lineOff += len(line) - len(trim)
		trim = strings.TrimRight(trim, " \t\r")
		if trim == "" || trim[0] == '#' {
			continue
		}
		off := base + lineOff
		switch {
		case trim[0] == '*':
			if syn.listStyle {
				return errAt(off, "unexpected table line in an iptables -S listing")
			}
			if open {
				return errAt(off, "missing COMMIT before "+trim)
			}
			name := trim[1:]
			if !validChainName(name) {
				return errAt(off, "invalid table name "+strconv.Quote(name))
			}
			open, nat, tableOff = true, name == "nat", off
			if nat {
				cur = &Ruleset{Family: family, Chains: make([]Chain, 0, 8)}
			}
		case trim == "COMMIT":
			if !open || syn.listStyle {
				return errAt(off, "COMMIT without a table")
			}
			if err := b.finishTable(cur, family, tableOff); err != nil {
				return err
			}
			cur = nil
			open, nat = false, false
		case trim[0] == ':':
			if !open || syn.listStyle {
				return errAt(off, "chain declaration outside a table")
			}
			var name, policy tok
			var perr *posError
			b.toks, name, policy, perr = parseChainDecl(trim, off, b.toks[:0])
			if perr != nil {
				return perr
			}
			if !nat {
				continue
			}
			if perr = checkNATPolicy(name, policy); perr != nil {
				return perr
			}
			if cur.Chain(name.s) == nil && len(cur.Chains) >= maxChains {
				return errAt(name.off, "too many chains (at most "+strconv.Itoa(maxChains)+")")
			}
			cur.chainFor(name.s, b.capHint(cur, name.s))
		case trim[0] == '-' || trim[0] == '[':
			if !open {
				return errAt(off, "rule outside a table (missing *nat)")
			}
			if !nat {
				continue
			}
			rest, roff := trim, off
			if rest[0] == '[' {
				end := strings.IndexByte(rest, ']')
				if end < 0 || !validCounters(rest[:end+1]) {
					return errAt(off, "invalid counters")
				}
				rest, roff = rest[end+1:], off+end+1
			}
			var perr *posError
			b.toks, perr = splitFields(rest, roff, b.toks[:0])
			if perr != nil {
				return perr
			}
			rc, perr := parseRuleTokens(b.toks, syn, off+len(trim), &b.ports)
			if perr != nil {
				return perr
			}
			if rc.op == 'N' && !syn.listStyle {
				return errAt(rc.opOff, "-N is not valid in iptables-restore input; declare chains with ':NAME - [0:0]'")
			}
			if perr = b.apply(cur, &rc); perr != nil {
				return perr
			}
			if rc.rule.Target.Kind == TargetJump {
				b.jumps = append(b.jumps, jumpRef{rc.rule.Target.Chain, rc.opOff})
			}
		default:
			return errAt(off, "unexpected line "+strconv.Quote(truncate(trim, 40)))
		}
	}
	if syn.listStyle {
		return b.finishTable(cur, family, base)
	}
	if open {
		return errAt(base+len(text), "missing COMMIT at end of input")
	}
	return nil
}

// finishTable checks a committed nat table and files it under its family.
func (b *builder) finishTable(cur *Ruleset, family Family, tableOff int) *posError {
	if cur == nil {
		return nil
	}
	for _, j := range b.jumps {
		if IsBuiltinChain(j.chain) || cur.Chain(j.chain) == nil {
			return errAt(j.off, "unknown chain or unsupported target "+strconv.Quote(j.chain))
		}
	}
	b.jumps = b.jumps[:0]
	f := family
	if f == 0 {
		f = cur.Family
	}
	if f == 0 {
		f = IPv4
		if b.sets[0] != nil {
			f = IPv6
		}
	}
	if cur.Family != 0 && cur.Family != f {
		return errAt(tableOff, cur.Family.String()+" rules given as "+f.String()+" rules")
	}
	cur.Family = f
	if b.sets[famIndex(f)] != nil {
		return errAt(tableOff, "a second nat table for "+f.String())
	}
	b.sets[famIndex(f)] = cur
	return nil
}

// parseChainDecl reads a chain declaration ":NAME POLICY [packets:bytes]" at offset off (the
// counters may be left out, as iptables-restore allows).
func parseChainDecl(line string, off int, dst []tok) ([]tok, tok, tok, *posError) {
	if line == "" || line[0] != ':' {
		return dst, tok{}, tok{}, errAt(off, "a chain declaration starts with ':'")
	}
	toks, _ := splitFields(line[1:], off+1, dst)
	if len(toks) != 2 && len(toks) != 3 {
		return toks, tok{}, tok{}, errAt(off, "chain declaration must be ':NAME POLICY [packets:bytes]'")
	}
	name, policy := toks[0], toks[1]
	if !validChainName(name.s) {
		return toks, name, policy, errAt(name.off, "invalid chain name "+strconv.Quote(name.s))
	}
	if len(toks) == 3 && !validCounters(toks[2].s) {
		return toks, name, policy, errAt(toks[2].off, "invalid counters "+strconv.Quote(toks[2].s))
	}
	return toks, name, policy, nil
}

// checkNATPolicy checks a nat chain's declared policy: ACCEPT for a built-in chain, '-' for
// a custom one.
func checkNATPolicy(name, policy tok) *posError {
	if IsBuiltinChain(name.s) {
		if policy.s != "ACCEPT" {
			return errAt(policy.off, "only the ACCEPT policy is supported in the nat table, got "+strconv.Quote(policy.s))
		}
	} else if policy.s != "-" {
		return errAt(policy.off, "a custom chain's policy must be '-', got "+strconv.Quote(policy.s))
	}
	return nil
}

// truncate keeps n bytes of s and marks the cut (the text quoted in a parse error).
func truncate(s string, n int) string { return text.Truncate(s, n+3) }

func validCounters(s string) bool {
	if len(s) < 5 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	a, c, ok := strings.Cut(s[1:len(s)-1], ":")
	if !ok {
		return false
	}
	_, e1 := strconv.ParseUint(a, 10, 64)
	_, e2 := strconv.ParseUint(c, 10, 64)
	return e1 == nil && e2 == nil
}

// runScript reads an OSM shell script (the string given to `sh -c`).
func (b *builder) runScript(script string, base, depth int) *posError {
	l := shLexer{s: script, base: base}
	b.hint = script
	if err := l.lexScript(); err != nil {
		return err
	}
	for ci, c := range l.cmds {
		words := l.words[c.first:c.last]
		if len(words) == 0 {
			if c.sep == sepAnd {
				return errAt(c.sepOff, "syntax error near unexpected token "+quote("&&")+": no command before it")
			}
			continue
		}
		if c.sep == sepAnd {
			// A newline may follow &&; anything else needs a command first.
			k := ci + 1
			for k < len(l.cmds) && l.cmds[k].first == l.cmds[k].last && l.cmds[k].sep == sepNewline {
				k++
			}
			if k >= len(l.cmds) || l.cmds[k].first == l.cmds[k].last {
				if k < len(l.cmds) && l.cmds[k].sep == sepAnd {
					return errAt(l.cmds[k].sepOff, "syntax error near unexpected token "+quote("&&")+": no command before it")
				}
				if k < len(l.cmds) && l.cmds[k].sep == sepSemi {
					return errAt(l.cmds[k].sepOff, "syntax error near unexpected token "+quote(";"))
				}
				return errAt(c.sepOff, "syntax error: no command after "+quote("&&"))
			}
		}
		prog := path.Base(words[0].s)
		if c.bodyDelim != "" && prog != "iptables-restore" && prog != "ip6tables-restore" {
			return errAt(c.heredocOff, "a here-document is only understood for iptables-restore")
		}
		switch prog {
		case "iptables", "ip6tables":
			fam := IPv4
			if prog == "ip6tables" {
				fam = IPv6
			}
			b.sawV0 = true
			rc, err := parseRuleTokens(words[1:], ruleSyntax{shell: true}, words[len(words)-1].off+len(words[len(words)-1].s), &b.ports)
			if err != nil {
				return err
			}
			if rc.table != "nat" {
				return errAt(words[0].off, "only nat table rules are understood; add -t nat")
			}
			rs := b.ruleset(fam)
			if err := b.apply(rs, &rc); err != nil {
				return err
			}
			if t := rc.rule.Target; t.Kind == TargetJump && (IsBuiltinChain(t.Chain) || rs.Chain(t.Chain) == nil) {
				return errAt(rc.opOff, "unknown chain or unsupported target "+strconv.Quote(t.Chain))
			}
		case "iptables-restore", "ip6tables-restore":
			fam := IPv4
			if prog == "ip6tables-restore" {
				fam = IPv6
			}
			for _, w := range words[1:] {
				switch w.s {
				case "--noflush", "-n", "-w", "--wait":
				default:
					return errAt(w.off, "unsupported iptables-restore option "+strconv.Quote(w.s))
				}
			}
			if !c.hasBody {
				return errAt(words[0].off, "iptables-restore without a here-document")
			}
			b.sawV1 = true
			if b.sets[famIndex(fam)] != nil {
				return errAt(words[0].off, "rules for "+fam.String()+" given twice")
			}
			if err := b.parseRestore(c.body, c.bodyOff, fam, ruleSyntax{podIPVar: c.bodyExpand}); err != nil {
				return err
			}
		case "sh", "bash", "dash", "ash":
			if depth > 0 {
				return errAt(words[0].off, "nested shells are not supported")
			}
			if len(words) != 3 || words[1].s != "-c" {
				return errAt(words[0].off, "expected "+prog+" -c SCRIPT")
			}
			w := words[2]
			inner := w.off
			if inner-base >= 0 && inner-base < len(script) && (script[inner-base] == '"' || script[inner-base] == '\'') {
				inner++
			}
			if err := b.runScript(w.s, inner, depth+1); err != nil {
				return err
			}
		default:
			return errAt(words[0].off, "unsupported command "+strconv.Quote(words[0].s))
		}
	}
	return nil
}

// parseInitArgs reads meshkeeper-init's argv (starting at "apply"). args are the container
// strings; errors are positioned inside the failing string, whose index is returned.
func (b *builder) parseInitArgs(args []string, p *Parsed) (int, *posError) {
	if len(args) == 0 || args[0] != InitVerbApply {
		return 0, errAt(0, "expected the "+strconv.Quote(InitVerbApply)+" verb")
	}
	seen := [2]bool{}
	for i := 1; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		switch name {
		case InitFlagIPv4Rules, InitFlagIPv6Rules, InitFlagPodIPEnv:
		default:
			return i, errAt(0, "unknown flag "+strconv.Quote(args[i]))
		}
		vi := i
		if !hasVal {
			if i+1 >= len(args) {
				return i, errAt(0, "flag "+args[i]+" needs a value")
			}
			i++
			vi, val = i, args[i]
		}
		switch name {
		case InitFlagIPv4Rules, InitFlagIPv6Rules:
			fam := IPv4
			if name == InitFlagIPv6Rules {
				fam = IPv6
			}
			if seen[famIndex(fam)] {
				return i, errAt(0, "flag "+name+" given twice")
			}
			seen[famIndex(fam)] = true
			if err := b.parseRestore(val, 0, fam, ruleSyntax{}); err != nil {
				return vi, err
			}
			if b.sets[famIndex(fam)] == nil {
				return vi, errAt(0, "no *nat table in "+name)
			}
		case InitFlagPodIPEnv:
			if val == "" {
				return vi, errAt(0, "empty "+name)
			}
			p.PodIPEnv = val
		}
	}
	return 0, nil
}

// lineCol converts an offset into 1-based line and column.
func lineCol(s string, off int) (int, int) {
	off = min(max(off, 0), len(s))
	line := 1 + strings.Count(s[:off], "\n")
	col := off - strings.LastIndexByte(s[:off], '\n')
	return line, col
}

func toParseError(root string, e *posError) *ParseError {
	l, c := lineCol(root, e.off)
	return &ParseError{Line: l, Column: c, Msg: e.msg}
}

func (b *builder) result(f Format, p *Parsed) *Parsed {
	p.Format = f
	p.IPv4, p.IPv6 = b.sets[0], b.sets[1]
	for _, rs := range b.sets {
		if rs != nil && rs.Family == 0 {
			rs.Family = IPv4
		}
	}
	return p
}

// kind of input, decided from its first meaningful line.
type inputKind uint8

const (
	kindShell inputKind = iota
	kindRestore
	kindList
	kindStructured
	kindDescribe
)

func sniff(s string) inputKind {
	if strings.Contains(s, "\nInit Containers:") {
		return kindDescribe
	}
	for i := 0; i < len(s); {
		line, next := lineAt(s, i)
		i = next
		t := strings.TrimSpace(line)
		if t == "" || t == "---" || strings.HasPrefix(t, "#") {
			continue
		}
		switch {
		case t[0] == '{':
			return kindStructured
		case t[0] == '[':
			if len(t) > 1 && t[1] >= '0' && t[1] <= '9' {
				return kindRestore
			}
			return kindStructured
		case t[0] == '*' || t[0] == ':' || t == "COMMIT":
			return kindRestore
		case strings.HasPrefix(t, "-P ") || strings.HasPrefix(t, "-N ") || strings.HasPrefix(t, "-A "):
			return kindList
		case t == "-" || strings.HasPrefix(t, "- "):
			return kindStructured
		}
		if k := strings.IndexByte(t, ':'); k > 0 && (k == len(t)-1 || t[k+1] == ' ') && !strings.ContainsAny(t[:k], " \t\"'") {
			return kindStructured
		}
		return kindShell
	}
	return kindShell
}

// Unmarshal decodes one YAML or JSON document into v, as encoding/json or sigs.k8s.io/yaml do.
// The rule core takes it as an argument so that it links no YAML library: the init container
// program links this package, and package manifest supplies the YAML reader where one is needed.
type Unmarshal func(data []byte, v any) error

// errNeedsYAML is what Parse says about YAML input, which only ParseWith and a YAML Unmarshal read.
var errNeedsYAML = errors.New("YAML input: read it with internal/redirect/manifest")

// Parse reads redirection rules from any supported input but YAML (see ParseWith): a pod (or
// workload, or list), a single container or its args as JSON, `kubectl describe pod` output, an
// OSM init script (v0.x `iptables ... &&` chains or v1.x `iptables-restore` here-documents, with
// or without `/bin/sh -c`), or iptables-save / `iptables -t nat -S` output.
func Parse(data []byte) (*Parsed, error) {
	return ParseWith(data, jsonOnly)
}

// jsonOnly is the Unmarshal of Parse: encoding/json, and a clear refusal for YAML.
func jsonOnly(data []byte, v any) error {
	if t := bytes.TrimSpace(data); len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return errNeedsYAML
	}
	return json.Unmarshal(data, v)
}

// ParseWith is Parse with the decoder for structured (YAML or JSON) input given by the caller.
func ParseWith(data []byte, unmarshal Unmarshal) (*Parsed, error) {
	if len(data) > MaxParseInput {
		return nil, &ParseError{Line: 1, Column: 1, Msg: "input larger than " + strconv.Itoa(MaxParseInput) + " bytes"}
	}
	s := string(data)
	s = strings.TrimPrefix(s, "\ufeff")
	b := newBuilder()
	p := &Parsed{}
	switch sniff(s) {
	case kindStructured:
		return parseStructured(data, s, unmarshal)
	case kindDescribe:
		return parseDescribe(s)
	case kindRestore:
		if err := b.parseRestore(s, 0, 0, ruleSyntax{}); err != nil {
			return nil, toParseError(s, err)
		}
		if b.sets[0] == nil && b.sets[1] == nil {
			return nil, &ParseError{Line: 1, Column: 1, Msg: "no *nat table found"}
		}
		return b.result(FormatIPTablesSave, p), nil
	case kindList:
		if err := b.parseRestore(s, 0, 0, ruleSyntax{listStyle: true}); err != nil {
			return nil, toParseError(s, err)
		}
		return b.result(FormatIPTablesSave, p), nil
	}
	if err := b.runScript(s, 0, 0); err != nil {
		return nil, toParseError(s, err)
	}
	return b.scriptResult(p, s)
}

func (b *builder) scriptResult(p *Parsed, root string) (*Parsed, error) {
	if b.usesPodIP() {
		p.PodIPEnv = PodIPEnvVar
	}
	switch {
	case b.sawV1:
		return b.result(FormatOSMv1, p), nil
	case b.sawV0:
		return b.result(FormatOSMv0, p), nil
	}
	return nil, toParseError(root, errAt(0, "no iptables commands found"))
}

// Container is as much of a container as its redirection rules need: they live in its argv.
// The JSON names match a Kubernetes container, so pod manifests decode into it directly and
// this package stays free of the Kubernetes API types (the init container program links it).
type Container struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
}

// ParseContainer reads the rules of an init container (ours or OSM's). It runs for every pod
// the drift controller looks at, so it works on the container's strings directly. Error
// positions are relative to the failing argument string, which the message names.
func ParseContainer(c Container) (*Parsed, error) {
	p, _, _, err := parseContainer(&c)
	return p, err
}

// parseContainer also returns the string an error is positioned in, for callers that can map
// it back to a file.
func parseContainer(c *Container) (*Parsed, string, string, error) {
	var buf [8]string
	argv := append(buf[:0], c.Command...)
	argv = append(argv, c.Args...)
	p := &Parsed{Container: c.Name}
	b := newBuilder()
	if len(argv) == 0 {
		return nil, "", "", &ParseError{Line: 1, Column: 1, Msg: "container " + strconv.Quote(c.Name) + " has no command or args"}
	}
	where := func(i int) string {
		if i < len(c.Command) {
			return "command[" + strconv.Itoa(i) + "]"
		}
		return "args[" + strconv.Itoa(i-len(c.Command)) + "]"
	}
	start := -1
	switch {
	case path.Base(argv[0]) == "meshkeeper-init":
		start = 1
	case argv[0] == InitVerbApply:
		start = 0
	}
	if start == len(argv) {
		return nil, "", "", &ParseError{Line: 1, Column: 1, Msg: "container " + strconv.Quote(c.Name) + " runs meshkeeper-init without arguments; expected the " + strconv.Quote(InitVerbApply) + " verb"}
	}
	if start >= 0 {
		idx, err := b.parseInitArgs(argv[start:], p)
		if err != nil {
			i := start + idx
			pe := toParseError(argv[i], err)
			pe.Msg = where(i) + ": " + pe.Msg
			return nil, argv[i], where(i), pe
		}
		if b.sets[0] == nil {
			return nil, "", "", &ParseError{Line: 1, Column: 1, Msg: "missing " + InitFlagIPv4Rules}
		}
		return b.result(FormatMeshkeeper, p), "", "", nil
	}
	switch path.Base(argv[0]) {
	case "sh", "bash", "dash", "ash":
		if len(argv) != 3 || argv[1] != "-c" {
			return nil, "", "", &ParseError{Line: 1, Column: 1, Msg: "expected " + argv[0] + " -c SCRIPT in container " + strconv.Quote(c.Name)}
		}
		if err := b.runScript(argv[2], 0, 1); err != nil {
			pe := toParseError(argv[2], err)
			pe.Msg = where(2) + ": " + pe.Msg
			return nil, argv[2], where(2), pe
		}
		res, err := b.scriptResult(p, argv[2])
		return res, argv[2], where(2), err
	}
	return nil, "", "", &ParseError{Line: 1, Column: 1, Msg: "container " + strconv.Quote(c.Name) + " does not run meshkeeper-init or an OSM init script"}
}

type specProbe struct {
	InitContainers []Container `json:"initContainers"`
	Containers     []Container `json:"containers"`
	Template       *struct {
		Spec *specProbe `json:"spec"`
	} `json:"template"`
	JobTemplate *struct {
		Spec *specProbe `json:"spec"`
	} `json:"jobTemplate"`
}

type objProbe struct {
	Spec  *specProbe `json:"spec"`
	Items []objProbe `json:"items"`
	// A bare container.
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	// A bare pod spec.
	InitContainers []Container `json:"initContainers"`
}

func (s *specProbe) candidates(out []Container) []Container {
	if s == nil {
		return out
	}
	out = append(out, s.InitContainers...)
	out = append(out, s.Containers...)
	if s.Template != nil {
		out = s.Template.Spec.candidates(out)
	}
	if s.JobTemplate != nil {
		out = s.JobTemplate.Spec.candidates(out)
	}
	return out
}

func (o *objProbe) candidates(out []Container) []Container {
	out = o.Spec.candidates(out)
	out = append(out, o.InitContainers...)
	for i := range o.Items {
		out = o.Items[i].candidates(out)
	}
	if len(o.Command) > 0 || len(o.Args) > 0 {
		out = append(out, Container{Name: o.Name, Command: o.Command, Args: o.Args})
	}
	return out
}

// pickContainer prefers our container, then OSM's, then anything shaped like either.
func pickContainer(cs []Container) *Container {
	for _, name := range [...]string{InitContainerName, OSMInitContainerName} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	for i := range cs {
		argv := append(append([]string(nil), cs[i].Command...), cs[i].Args...)
		if len(argv) == 0 {
			continue
		}
		base := path.Base(argv[0])
		if base == "meshkeeper-init" || argv[0] == InitVerbApply {
			return &cs[i]
		}
		if (base == "sh" || base == "bash") && len(argv) == 3 && argv[1] == "-c" && strings.Contains(argv[2], "iptables") {
			return &cs[i]
		}
	}
	return nil
}

func splitDocs(s string) []string {
	var docs []string
	start := 0
	for i := 0; i < len(s); {
		line, next := lineAt(s, i)
		if strings.TrimRight(line, " \r") == "---" {
			docs = append(docs, s[start:i])
			start = next
		}
		i = next
	}
	return append(docs, s[start:])
}

func parseStructured(data []byte, s string, unmarshal Unmarshal) (*Parsed, error) {
	trimmed := bytes.TrimSpace(data)
	var cands []Container
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '-') {
		var args []string
		if err := unmarshal(trimmed, &args); err == nil {
			cands = append(cands, Container{Args: args})
		} else if err := unmarshal(trimmed, &cands); err != nil {
			return nil, structuredError(err)
		}
	} else {
		for _, doc := range splitDocs(s) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o objProbe
			if err := unmarshal([]byte(doc), &o); err != nil {
				return nil, structuredError(err)
			}
			cands = o.candidates(cands)
		}
	}
	return parseCandidates(s, cands, "")
}

// parseCandidates reads the rules of the init container picked from cands, which were read
// out of file; errors inside a container string are moved to their place in file. within
// completes the message when no candidate fits.
func parseCandidates(file string, cands []Container, within string) (*Parsed, error) {
	c := pickContainer(cands)
	if c == nil {
		return nil, &ParseError{Line: 1, Column: 1, Msg: "no " + InitContainerName + " or " + OSMInitContainerName + " init container found" + within}
	}
	p, root, where, err := parseContainer(c)
	if err == nil {
		return p, nil
	}
	pe, ok := err.(*ParseError)
	if !ok || root == "" {
		return nil, err
	}
	return nil, mapIntoFile(file, root, where, pe)
}

// mapIntoFile moves an error positioned in a container string to the file the string came
// from. YAML block scalars, plain scalars and describe output keep the string's lines intact
// (indented), so the string is located as a run of consecutive file lines equal to its lines up
// to the failing one; the first such run wins. When the lines cannot be found (JSON escapes),
// the error points at the start of the string and the message keeps the inner position.
func mapIntoFile(file, root, where string, pe *ParseError) *ParseError {
	msg := strings.TrimPrefix(pe.Msg, where+": ")
	rootLines := strings.Split(root, "\n")
	fileLines := strings.Split(file, "\n")
	last := min(pe.Line, len(rootLines)) - 1
	for start := 0; last >= 0 && start+last < len(fileLines); start++ {
		ok := true
		for j := 0; j <= last; j++ {
			fl := strings.TrimRight(fileLines[start+j], "\r")
			rl := rootLines[j]
			if j == 0 {
				// The first line may follow "- " or "key: " on the same file line.
				if strings.TrimSpace(rl) == "" || !strings.HasSuffix(fl, rl) {
					ok = false
					break
				}
				continue
			}
			if strings.TrimSpace(fl) != strings.TrimSpace(rl) || (rl != "" && !strings.HasSuffix(fl, rl)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		fl := strings.TrimRight(fileLines[start+last], "\r")
		col := len(fl) - len(rootLines[last]) + pe.Column
		return &ParseError{Line: start + last + 1, Column: max(col, 1), Msg: msg}
	}
	first := rootLines[0]
	if len(first) > 24 {
		first = first[:24]
	}
	l, c := 1, 1
	if k := strings.Index(file, first); k >= 0 && first != "" {
		l, c = lineCol(file, k)
	}
	return &ParseError{Line: l, Column: c, Msg: where + " line " + strconv.Itoa(pe.Line) + " column " + strconv.Itoa(pe.Column) + ": " + msg}
}

func structuredError(err error) error {
	msg := err.Error()
	// sigs.k8s.io/yaml reports "error converting YAML to JSON: yaml: line N: ..."
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if n, e := strconv.Atoi(rest[:j]); e == nil {
			return &ParseError{Line: n, Column: 1, Msg: strings.TrimLeft(rest[j:], ": ")}
		}
	}
	return &ParseError{Line: 1, Column: 1, Msg: msg}
}

// usesPodIP reports whether any DNAT rule waits for the pod IP (OSM's $POD_IP).
func (b *builder) usesPodIP() bool {
	return anyDNAT(b.sets[:], func(r *Rule) bool { return r.Target.To == PodIPPlaceholder })
}

// capHint sizes a new chain from the text being parsed; only the first few chains are sized so
// hostile input with thousands of chains stays linear.
func (b *builder) capHint(rs *Ruleset, name string) int {
	if len(rs.Chains) >= 16 || rs.Chain(name) != nil {
		return 0
	}
	return countChainRules(b.hint, name)
}
