package initrunner

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
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
	// maxMultiportEntries is the kernel's limit for one multiport match (a range counts twice).
	maxMultiportEntries = 15
)

var (
	ourChainRE = regexp.MustCompile(`^OSM_PROXY_[A-Z0-9_]{1,18}$`)
	countersRE = regexp.MustCompile(`^\[[0-9]+:[0-9]+\]$`)
	ifaceRE    = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,14}\+?$`)
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
			toks := strings.Fields(line)
			if err := checkRule(fam, declared, toks); err != nil {
				return fail(n, "%v", err)
			}
			rs.Rules = append(rs.Rules, strings.Join(toks, " "))
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
// built-in declaration, or an error.
func checkDeclaration(line string) (string, error) {
	f := strings.Fields(line)
	name := strings.TrimPrefix(f[0], ":")
	if len(f) < 2 || len(f) > 3 {
		return "", fmt.Errorf("chain declaration %q: want \":CHAIN POLICY [packets:bytes]\"", clip(line))
	}
	if len(f) == 3 && !countersRE.MatchString(f[2]) {
		return "", fmt.Errorf("chain declaration %q: counters %q are malformed", clip(line), f[2])
	}
	switch {
	case builtinJumpChains[name]:
		if f[1] != "ACCEPT" {
			return "", fmt.Errorf("built-in chain %s: policy %q is not allowed, only ACCEPT", name, f[1])
		}
		return "", nil
	case ourChainRE.MatchString(name):
		if f[1] != "-" {
			return "", fmt.Errorf("chain %s: policy %q is not allowed for a user chain, use \"-\"", name, f[1])
		}
		return name, nil
	default:
		return "", fmt.Errorf("chain %q is not allowed: only %s* chains and the built-in PREROUTING and OUTPUT", clip(name), ChainPrefix)
	}
}

// canonicalOption maps long option spellings to the short or canonical form used below.
var canonicalOption = map[string]string{
	"-A": "-A", "--append": "-A", "-I": "-I", "--insert": "-I",
	"-p": "-p", "--protocol": "-p",
	"-d": "-d", "--destination": "-d", "--dst": "-d",
	"-s": "-s", "--source": "-s", "--src": "-s",
	"-i": "-i", "--in-interface": "-i",
	"-o": "-o", "--out-interface": "-o",
	"-m": "-m", "--match": "-m",
	"-j": "-j", "--jump": "-j",
	"--dport": "--dport", "--destination-port": "--dport",
	"--sport": "--sport", "--source-port": "--sport",
	"--dports": "--dports", "--destination-ports": "--dports",
	"--sports": "--sports", "--source-ports": "--sports",
	"--uid-owner": "--uid-owner", "--gid-owner": "--gid-owner",
	"--to-ports": "--to-ports", "--to-port": "--to-ports",
	"--to-destination": "--to-destination",
}

var negatable = map[string]bool{
	"-d": true, "-s": true, "-i": true, "-o": true, "--dport": true, "--sport": true,
	"--dports": true, "--sports": true, "--uid-owner": true, "--gid-owner": true,
}

func checkRule(fam Family, declared map[string]bool, toks []string) error {
	for _, t := range toks {
		if !tokenRE.MatchString(t) {
			return fmt.Errorf("token %q contains a character that is not allowed (quotes, '$', ';' and the like are never needed)", clip(t))
		}
	}
	cmd := canonicalOption[toks[0]]
	if cmd != "-A" && cmd != "-I" {
		return fmt.Errorf("command %q is not allowed: only -A and -I rules", clip(toks[0]))
	}
	if len(toks) < 2 {
		return fmt.Errorf("%s without a chain", toks[0])
	}
	chain := toks[1]
	switch {
	case builtinJumpChains[chain]:
	case declared[chain]:
	case ourChainRE.MatchString(chain):
		return fmt.Errorf("chain %s is used but not declared", chain)
	default:
		return fmt.Errorf("chain %q is not allowed: only %s* chains and the built-in PREROUTING and OUTPUT", clip(chain), ChainPrefix)
	}
	i := 2
	if cmd == "-I" && i < len(toks) {
		if pos, err := strconv.Atoi(toks[i]); err == nil {
			if pos < 1 || pos > maxRuleLines {
				return fmt.Errorf("insert position %d is out of range", pos)
			}
			i++
		}
	}
	var proto, target string
	matches := map[string]bool{}
	negate := false
	for ; i < len(toks); i++ {
		t := toks[i]
		if t == "!" {
			if negate {
				return fmt.Errorf("\"!\" twice in a row")
			}
			negate = true
			continue
		}
		opt, ok := canonicalOption[t]
		if !ok || opt == "-A" || opt == "-I" {
			return fmt.Errorf("option %q is not allowed", clip(t))
		}
		if negate && !negatable[opt] {
			return fmt.Errorf("option %s cannot be negated", t)
		}
		negate = false
		if i+1 >= len(toks) {
			return fmt.Errorf("option %s has no value", t)
		}
		i++
		v := toks[i]
		if target != "" && opt != "--to-ports" && opt != "--to-destination" {
			return fmt.Errorf("option %s after the target: matches must come before -j", t)
		}
		var err error
		switch opt {
		case "-p":
			if v != "tcp" && v != "udp" {
				err = fmt.Errorf("protocol %q is not allowed: tcp or udp", v)
			}
			proto = v
		case "-d", "-s":
			err = checkAddrOrPrefix(fam, v)
		case "-i", "-o":
			if !ifaceRE.MatchString(v) {
				err = fmt.Errorf("interface name %q is invalid", clip(v))
			}
		case "-m":
			switch v {
			case "tcp", "udp":
				if proto != v {
					err = fmt.Errorf("match %s needs -p %s before it", v, v)
				}
			case "multiport", "owner":
			default:
				err = fmt.Errorf("match %q is not allowed: tcp, udp, multiport or owner", clip(v))
			}
			matches[v] = true
		case "--dport", "--sport":
			if proto == "" {
				err = fmt.Errorf("%s needs -p tcp or -p udp before it", t)
			} else {
				err = checkPortList(v, false)
			}
		case "--dports", "--sports":
			if !matches["multiport"] || proto == "" {
				err = fmt.Errorf("%s needs -p tcp/udp and -m multiport before it", t)
			} else {
				err = checkPortList(v, true)
			}
		case "--uid-owner", "--gid-owner":
			if !matches["owner"] {
				err = fmt.Errorf("%s needs -m owner before it", t)
			} else {
				err = checkIDRange(v)
			}
		case "-j":
			target = v
			err = checkTarget(chain, v, declared)
		case "--to-ports":
			if target != "REDIRECT" {
				err = fmt.Errorf("%s is only valid after -j REDIRECT", t)
			} else {
				err = checkPortList(v, false)
			}
		case "--to-destination":
			if target != "DNAT" {
				err = fmt.Errorf("%s is only valid after -j DNAT", t)
			} else {
				err = checkDNATDestination(fam, v)
			}
		}
		if err != nil {
			return err
		}
	}
	if negate {
		return fmt.Errorf("trailing \"!\"")
	}
	if target == "" {
		return fmt.Errorf("rule has no -j target")
	}
	need := map[string]string{"REDIRECT": "--to-ports", "DNAT": "--to-destination"}[target]
	if need != "" && !hasAny(toks, need, "--to-port") {
		return fmt.Errorf("target %s needs %s", target, need)
	}
	return nil
}

func checkTarget(chain, target string, declared map[string]bool) error {
	if builtinJumpChains[chain] {
		// DNAT in OUTPUT is how PodIP local proxy mode sends the proxy's localhost traffic to
		// the pod address; everything else in a built-in chain must hand over to our chains.
		if declared[target] || (chain == "OUTPUT" && target == "DNAT") {
			return nil
		}
		return fmt.Errorf("rules in %s may only jump to a declared %s* chain, not %q", chain, ChainPrefix, clip(target))
	}
	switch {
	case target == "RETURN" || target == "REDIRECT" || target == "DNAT":
		return nil
	case declared[target]:
		if target == chain {
			return fmt.Errorf("chain %s jumps to itself", chain)
		}
		return nil
	default:
		return fmt.Errorf("target %q is not allowed: RETURN, REDIRECT, DNAT or a declared %s* chain", clip(target), ChainPrefix)
	}
}

func checkAddrOrPrefix(fam Family, v string) error {
	var addr netip.Addr
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("address range %q is invalid: %v", clip(v), err)
		}
		addr = p.Addr()
	} else {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("address %q is invalid: %v", clip(v), err)
		}
		addr = a
	}
	return checkFamily(fam, addr, v)
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

func checkDNATDestination(fam Family, v string) error {
	host, port := v, ""
	if fam == IPv6 {
		if strings.HasPrefix(v, "[") {
			end := strings.Index(v, "]")
			if end < 0 {
				return fmt.Errorf("DNAT destination %q: missing ']'", clip(v))
			}
			host, port = v[1:end], strings.TrimPrefix(v[end+1:], ":")
			if v[end+1:] != "" && !strings.HasPrefix(v[end+1:], ":") {
				return fmt.Errorf("DNAT destination %q is malformed", clip(v))
			}
		}
	} else if h, p, ok := strings.Cut(v, ":"); ok {
		host, port = h, p
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("DNAT destination %q: %v", clip(v), err)
	}
	if err := checkFamily(fam, a, v); err != nil {
		return err
	}
	if port != "" || strings.HasSuffix(v, ":") {
		if err := checkPortList(port, false); err != nil {
			return fmt.Errorf("DNAT destination %q: %v", clip(v), err)
		}
	}
	return nil
}

// checkPortList accepts a port or lo:hi range, or with list=true a comma list of them within
// the multiport limit.
func checkPortList(v string, list bool) error {
	parts := []string{v}
	if list {
		parts = strings.Split(v, ",")
	}
	entries := 0
	for _, p := range parts {
		lo, hi, isRange := strings.Cut(p, ":")
		a, err := parsePort(lo)
		if err != nil {
			return fmt.Errorf("port %q: %v", clip(p), err)
		}
		entries++
		if isRange {
			b, err := parsePort(hi)
			if err != nil {
				return fmt.Errorf("port range %q: %v", clip(p), err)
			}
			if b < a {
				return fmt.Errorf("port range %q is reversed", clip(p))
			}
			entries++
		}
	}
	if list && entries > maxMultiportEntries {
		return fmt.Errorf("port list %q has %d entries, more than the %d one multiport match can hold", clip(v), entries, maxMultiportEntries)
	}
	return nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%q is not a port number", clip(s))
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%d is outside 1-65535", n)
	}
	return n, nil
}

func checkIDRange(v string) error {
	lo, hi, isRange := strings.Cut(v, "-")
	a, err := strconv.ParseUint(lo, 10, 32)
	if err != nil || a == 1<<32-1 {
		return fmt.Errorf("owner id %q is not a numeric id", clip(v))
	}
	if isRange {
		b, err := strconv.ParseUint(hi, 10, 32)
		if err != nil || b < a || b == 1<<32-1 {
			return fmt.Errorf("owner id range %q is invalid", clip(v))
		}
	}
	return nil
}

func hasAny(toks []string, opts ...string) bool {
	for _, t := range toks {
		if contains(opts, t) {
			return true
		}
	}
	return false
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
