package initrunner

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Family is redirect's: IPv4 rules go to iptables-restore, IPv6 rules to ip6tables-restore.
type Family = redirect.Family

// The families, under the names the rest of this package uses.
const (
	IPv4 = redirect.IPv4
	IPv6 = redirect.IPv6
)

// ChainPrefix marks the chains this program owns. Anything outside them, except jumps from the
// built-in PREROUTING and OUTPUT chains into them, is refused.
const ChainPrefix = "OSM_PROXY_"

// Limits that keep a hostile or broken argument from making the restore large or slow.
const (
	maxRulesBytes = 256 << 10
	maxRuleLines  = 4096
)

var (
	ourChainRE = regexp.MustCompile(`^OSM_PROXY_[A-Z0-9_]{1,18}$`)
	// tokenRE lists every character a valid token can need; quotes, '$', ';', '`', '\' and
	// whitespace inside tokens never are.
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9_.:/,!+@\[\]-]+$`)
)

// builtinJumpChains are the built-in nat chains our rules may hook into.
var builtinJumpChains = map[string]bool{"PREROUTING": true, "OUTPUT": true}

// CheckedRestore is iptables-restore text for the nat table that passed ValidateRules, kept as
// text: it is handed to iptables-restore as given. (The meaning of rules, for reading and
// comparing them, is redirect.Ruleset.)
type CheckedRestore struct {
	Family Family
	// Chains are the declared chains we own, in declaration order.
	Chains []string
	// Rules are the rule lines (-A/-I), whitespace-normalised, in input order.
	Rules []string
}

// Empty reports whether the ruleset declares and changes nothing.
func (r CheckedRestore) Empty() bool { return len(r.Chains) == 0 && len(r.Rules) == 0 }

// ValidateRules checks iptables-restore text before it goes near the kernel. It accepts exactly
// one *nat table ending in COMMIT, declarations of OSM_PROXY_* chains (and of PREROUTING/OUTPUT
// with policy ACCEPT, which are then left alone), and -A/-I rules built from a small set of
// matches and targets. Every refusal names the family, the line and the offending token.
func ValidateRules(fam Family, text string) (CheckedRestore, error) {
	rs := CheckedRestore{Family: fam}
	fail := func(line int, format string, args ...any) (CheckedRestore, error) {
		return CheckedRestore{}, fmt.Errorf("%s rules line %d: %s", fam, line, fmt.Sprintf(format, args...))
	}
	if len(text) > maxRulesBytes {
		return CheckedRestore{}, fmt.Errorf("%s rules: %d bytes exceed the limit of %d", fam, len(text), maxRulesBytes)
	}
	lines := strings.Split(text, "\n")
	if len(lines) > maxRuleLines {
		return CheckedRestore{}, fmt.Errorf("%s rules: %d lines exceed the limit of %d", fam, len(lines), maxRuleLines)
	}
	declared := map[string]bool{}
	// First pass: chain declarations, so rules may jump to chains declared later in the text,
	// as iptables-restore itself allows.
	for _, raw := range lines {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, ":") {
			name := strings.TrimPrefix(strings.Fields(line)[0], ":")
			if ourChainRE.MatchString(name) {
				declared[name] = true
			}
		}
	}
	state := 0 // 0: before *nat, 1: inside nat, 2: after COMMIT
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "*"):
			if state != 0 {
				return fail(n, "table %q: only one table, nat, is allowed", line[1:])
			}
			if line != "*nat" {
				return fail(n, "table %q is not allowed: only the nat table may be changed", line[1:])
			}
			state = 1
		case state == 0:
			return fail(n, "%q before the *nat line", clip(line))
		case state == 2:
			return fail(n, "%q after COMMIT", clip(line))
		case line == "COMMIT":
			state = 2
		case strings.HasPrefix(line, ":"):
			chain, err := checkDeclaration(line)
			if err != nil {
				return fail(n, "%v", err)
			}
			if chain != "" {
				if contains(rs.Chains, chain) {
					return fail(n, "chain %s declared twice", chain)
				}
				rs.Chains = append(rs.Chains, chain)
			}
		default:
			if err := checkRule(fam, declared, line); err != nil {
				return fail(n, "%v", err)
			}
			rs.Rules = append(rs.Rules, strings.Join(strings.Fields(line), " "))
		}
	}
	switch state {
	case 0:
		return rs, nil // only blanks and comments: an explicitly empty ruleset
	case 1:
		return CheckedRestore{}, fmt.Errorf("%s rules: the nat table is not closed by COMMIT", fam)
	}
	return rs, nil
}

// checkDeclaration returns our chain name for ":OSM_PROXY_X - [0:0]", "" for an accepted
// built-in declaration, or an error. The syntax and the nat policies (ACCEPT for a built-in
// chain, "-" for ours) are redirect's; which chains may be declared is decided here.
func checkDeclaration(line string) (string, error) {
	name, err := redirect.ParseChainDeclaration(line)
	if err != nil {
		return "", fmt.Errorf("chain declaration %q: %s", clip(line), parseMsg(err))
	}
	switch {
	case builtinJumpChains[name]:
		return "", nil
	case ourChainRE.MatchString(name):
		return name, nil
	default:
		return "", fmt.Errorf("chain %q is not allowed: only %s* chains and the built-in PREROUTING and OUTPUT", clip(name), ChainPrefix)
	}
}

// allowedMatches are the match modules a rule may load.
const allowedMatches = redirect.MatchTCP | redirect.MatchUDP | redirect.MatchMultiport | redirect.MatchOwner

// checkRule reads one -A/-I line with redirect's rule grammar, then decides whether it may be
// applied: only our chains and the two hooks, TCP or UDP, addresses of the family, the matches
// and targets OSM's and meshkeeper's rules use.
func checkRule(fam Family, declared map[string]bool, line string) error {
	for _, t := range strings.Fields(line) {
		if !tokenRE.MatchString(t) {
			return fmt.Errorf("token %q contains a character that is not allowed (quotes, '$', ';' and the like are never needed)", clip(t))
		}
	}
	rl, err := redirect.ParseRuleLine(line)
	if err != nil {
		return errors.New(parseMsg(err))
	}
	r := &rl.Rule
	switch chain := r.Chain; {
	case builtinJumpChains[chain]:
	case declared[chain]:
	case ourChainRE.MatchString(chain):
		return fmt.Errorf("chain %s is used but not declared", chain)
	default:
		return fmt.Errorf("chain %q is not allowed: only %s* chains and the built-in PREROUTING and OUTPUT", clip(chain), ChainPrefix)
	}
	if rl.Pos > maxRuleLines {
		return fmt.Errorf("insert position %d is out of range", rl.Pos)
	}
	if r.NegProtocol {
		return fmt.Errorf("option -p cannot be negated: give tcp or udp")
	}
	if r.Protocol != "" && r.Protocol != "tcp" && r.Protocol != "udp" {
		return fmt.Errorf("protocol %q is not allowed: tcp or udp", r.Protocol)
	}
	if extra := rl.Matches &^ allowedMatches; extra != 0 {
		return fmt.Errorf("match %q is not allowed: tcp, udp, multiport or owner", extra.Names()[0])
	}
	for _, p := range []netip.Prefix{r.Src, r.Dst} {
		if p.IsValid() {
			if err := checkFamily(fam, p.Addr(), p.String()); err != nil {
				return err
			}
		}
	}
	if err := checkTarget(r.Chain, r.Target, declared); err != nil {
		return err
	}
	if r.Target.Kind == redirect.TargetDNAT {
		return checkDNATDestination(fam, r.Target.To)
	}
	return nil
}

// parseMsg is the message of a rule grammar error without its position: the caller names the
// line.
func parseMsg(err error) string {
	var pe *redirect.ParseError
	if errors.As(err, &pe) {
		return pe.Msg
	}
	return err.Error()
}

func checkTarget(chain string, t redirect.Target, declared map[string]bool) error {
	if builtinJumpChains[chain] {
		// DNAT in OUTPUT is how PodIP local proxy mode sends the proxy's localhost traffic to
		// the pod address; everything else in a built-in chain must hand over to our chains.
		if (t.Kind == redirect.TargetJump && declared[t.Chain]) || (chain == "OUTPUT" && t.Kind == redirect.TargetDNAT) {
			return nil
		}
		return fmt.Errorf("rules in %s may only jump to a declared %s* chain, not %q", chain, ChainPrefix, clip(t.Name()))
	}
	switch {
	case t.Kind == redirect.TargetReturn || t.Kind == redirect.TargetRedirect || t.Kind == redirect.TargetDNAT:
		return nil
	case t.Kind == redirect.TargetJump && declared[t.Chain]:
		if t.Chain == chain {
			return fmt.Errorf("chain %s jumps to itself", chain)
		}
		return nil
	default:
		return fmt.Errorf("target %q is not allowed: RETURN, REDIRECT, DNAT or a declared %s* chain", clip(t.Name()), ChainPrefix)
	}
}

func checkFamily(fam Family, addr netip.Addr, v string) error {
	if addr.Zone() != "" {
		return fmt.Errorf("address %q must not carry a zone", clip(v))
	}
	if fam == IPv4 && !addr.Is4() {
		return fmt.Errorf("address %q is not IPv4", clip(v))
	}
	if fam == IPv6 && (!addr.Is6() || addr.Is4In6()) {
		return fmt.Errorf("address %q is not IPv6", clip(v))
	}
	return nil
}

// checkDNATDestination requires a literal address of the family (the grammar also reads the pod
// IP placeholder, which must have been replaced by now).
func checkDNATDestination(fam Family, to string) error {
	a, err := netip.ParseAddr(to)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(to)
		if err2 != nil {
			return fmt.Errorf("DNAT destination %q is not an address", clip(to))
		}
		a = ap.Addr()
	}
	if err := checkFamily(fam, a, to); err != nil {
		return fmt.Errorf("DNAT destination: %v", err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clip keeps error messages single-line and short even for hostile input.
func clip(s string) string {
	const max = 80
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
