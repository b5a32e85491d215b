package redirect

// One iptables-restore line at a time, for callers that keep the text they were given (the
// init program hands its validated input to iptables-restore as it is) but must read it with
// the same grammar as every other reader of rules.

// RuleLine is one -A or -I line of iptables-restore input.
type RuleLine struct {
	// Insert is true for -I; Pos is its 1-based position, 0 when none was given.
	Insert bool
	Pos    int
	Rule   Rule
	// Matches are the match modules the line loads with -m.
	Matches MatchSet
}

// ParseRuleLine reads one rule line of iptables-restore input for the nat table. The error, a
// *ParseError on line 1, names the offending word.
func ParseRuleLine(line string) (RuleLine, error) {
	toks, perr := splitFields(line, 0, nil)
	if perr != nil {
		return RuleLine{}, toParseError(line, perr)
	}
	var arena []uint16
	rc, perr := parseRuleTokens(toks, ruleSyntax{}, len(line), &arena)
	if perr != nil {
		return RuleLine{}, toParseError(line, perr)
	}
	if rc.op != 'A' && rc.op != 'I' {
		return RuleLine{}, toParseError(line, errAt(rc.opOff, "-N is not valid in iptables-restore input; declare chains with ':NAME - [0:0]'"))
	}
	return RuleLine{Insert: rc.op == 'I', Pos: rc.pos, Rule: rc.rule, Matches: rc.matches}, nil
}

// ParseChainDeclaration reads a nat table chain declaration, ":NAME POLICY [packets:bytes]"
// (counters optional), and checks its policy: ACCEPT for a built-in chain, '-' for a custom one.
func ParseChainDeclaration(line string) (name string, err error) {
	_, n, policy, perr := parseChainDecl(line, 0, nil)
	if perr == nil {
		perr = checkNATPolicy(n, policy)
	}
	if perr != nil {
		return "", toParseError(line, perr)
	}
	return n.s, nil
}
