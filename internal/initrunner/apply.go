package initrunner

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// Options is one apply run.
type Options struct {
	// Backend is auto, nft or legacy (see SelectBackend).
	Backend string
	// IPv4Rules and IPv6Rules are iptables-restore inputs for the nat table. An empty text
	// applies nothing for that family.
	IPv4Rules, IPv6Rules string
	// PodIPEnv names the environment variable holding the pod IP (status.podIP, or the comma
	// list of status.podIPs); empty when the rules do not need it.
	PodIPEnv string
	Getenv   func(string) string
	// ProcRoot is where /proc is found; "" means "/". Tests point it at a fake tree.
	ProcRoot string
	Exec     Executor
	Log      io.Writer
}

// Apply validates both rulesets, then loads them into the current network namespace.
//
// Re-running is safe: every restore is a single iptables-restore --noflush transaction that
// declares our chains (which creates them or empties them if they exist), deletes the rules in
// the built-in nat chains that jump into any OSM_PROXY_* chain or that equal a built-in-chain rule
// of the new input (so hooks are never duplicated), removes OSM_PROXY_* chains the new input no
// longer declares, and appends the new rules. Either all of it takes effect or none.
func Apply(ctx context.Context, o Options) error {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	texts := map[Family]string{IPv4: o.IPv4Rules, IPv6: o.IPv6Rules}
	sets := map[Family]CheckedRestore{}
	for _, f := range []Family{IPv4, IPv6} {
		text, err := substitutePodIP(f, texts[f], o.PodIPEnv, o.Getenv)
		if err != nil {
			return err
		}
		rs, err := ValidateRules(f, text)
		if err != nil {
			return err
		}
		sets[f] = rs
	}
	if sets[IPv4].Empty() && sets[IPv6].Empty() {
		return fmt.Errorf("nothing to apply: both --ipv4-rules and --ipv6-rules are empty")
	}

	families := []Family{}
	if sets[IPv4].Empty() {
		fmt.Fprintf(o.Log, "no IPv4 rules given; leaving iptables untouched\n")
	} else {
		families = append(families, IPv4)
	}
	if !sets[IPv6].Empty() {
		if on, why := IPv6Enabled(o.ProcRoot); on {
			families = append(families, IPv6)
		} else {
			fmt.Fprintf(o.Log, "IPv6 is disabled in this pod (%s); skipping the IPv6 rules\n", why)
		}
	} else {
		fmt.Fprintf(o.Log, "no IPv6 rules given; leaving ip6tables untouched\n")
	}
	if len(families) == 0 {
		return nil
	}

	b, err := SelectBackend(ctx, o.Exec, o.Backend, o.Log)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "using the %s iptables backend\n", b.Name)
	for _, f := range families {
		if err := applyFamily(ctx, o, b, sets[f]); err != nil {
			return err
		}
	}
	return nil
}

func applyFamily(ctx context.Context, o Options, b Backend, rs CheckedRestore) error {
	f := rs.Family
	for _, name := range []string{b.Save(f), b.Restore(f)} {
		if _, err := o.Exec.LookPath(name); err != nil {
			return fmt.Errorf("%s rules: %s not found in PATH (backend %s)", f, name, b.Name)
		}
	}
	save := Command{Name: b.Save(f), Args: []string{"-t", "nat"}}
	cur, err := o.Exec.Run(ctx, save)
	if err != nil {
		return fmt.Errorf("%s rules: reading the current nat table with %s -t nat (backend %s): %s",
			f, b.Save(f), b.Name, oneLine(err, cur.Stderr))
	}
	input, st := RestoreInput(rs, string(cur.Stdout))
	fmt.Fprintf(o.Log, "%s: %d chains, %d rules; replacing %d earlier hook rules and removing %d stale chains\n",
		f, len(rs.Chains), len(rs.Rules), st.DeletedHooks, len(st.StaleChains))
	for _, line := range strings.Split(strings.TrimSuffix(input, "\n"), "\n") {
		fmt.Fprintf(o.Log, "  %s\n", line)
	}
	restore := Command{Name: b.Restore(f), Args: []string{"--noflush"}, Stdin: []byte(input)}
	res, err := o.Exec.Run(ctx, restore)
	if err != nil {
		return fmt.Errorf("%s rules: %s --noflush failed (backend %s): %s", f, b.Restore(f), b.Name, oneLine(err, res.Stderr))
	}
	fmt.Fprintf(o.Log, "%s rules applied with %s\n", f, b.Restore(f))
	return nil
}

// RestoreStats says what a restore input replaces.
type RestoreStats struct {
	DeletedHooks int
	StaleChains  []string
}

// RestoreInput builds the single transaction that replaces whatever an earlier run (ours or
// OSM's) left in the nat table, given `iptables-save -t nat` output of the current state.
func RestoreInput(rs CheckedRestore, currentSave string) (string, RestoreStats) {
	var st RestoreStats
	cur := parseSave(currentSave)
	wanted := map[string]map[string]bool{} // built-in chain -> keys of new rules there
	for _, r := range rs.Rules {
		chain := strings.Fields(r)[1]
		if key, ok := ruleKey(r); ok && redirect.IsBuiltinChain(chain) {
			if wanted[chain] == nil {
				wanted[chain] = map[string]bool{}
			}
			wanted[chain][key] = true
		}
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, c := range rs.Chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, chain := range cur.order {
		if !redirect.IsBuiltinChain(chain) {
			continue
		}
		rules := cur.rules[chain]
		for i := len(rules) - 1; i >= 0; i-- {
			key, ok := ruleKey(rules[i])
			if strings.HasPrefix(jumpTarget(strings.Fields(rules[i])), ChainPrefix) || (ok && wanted[chain][key]) {
				fmt.Fprintf(&b, "-D %s %d\n", chain, i+1)
				st.DeletedHooks++
			}
		}
	}
	for _, c := range cur.order {
		if ourChainRE.MatchString(c) && !slices.Contains(rs.Chains, c) {
			st.StaleChains = append(st.StaleChains, c)
		}
	}
	for _, c := range st.StaleChains {
		fmt.Fprintf(&b, "-F %s\n", c)
	}
	for _, c := range st.StaleChains {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	for _, r := range rs.Rules {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	b.WriteString("COMMIT\n")
	return b.String(), st
}

type saveTable struct {
	order []string            // chains in the order iptables-save declared them
	rules map[string][]string // chain -> its rule lines, kernel order
}

// parseSave reads the nat table of iptables-save output. Only rule positions and the names of
// chains matching our own naming rule are fed back to iptables-restore; rule text never is.
func parseSave(text string) saveTable {
	t := saveTable{rules: map[string][]string{}}
	inNat := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			inNat = line == "*nat"
		case !inNat:
		case strings.HasPrefix(line, ":"):
			name := strings.TrimPrefix(strings.Fields(line)[0], ":")
			if _, seen := t.rules[name]; !seen {
				t.order = append(t.order, name)
				t.rules[name] = nil
			}
		case strings.HasPrefix(line, "-A "):
			toks := strings.Fields(line)
			if len(toks) < 2 {
				continue
			}
			if _, seen := t.rules[toks[1]]; !seen {
				t.order = append(t.order, toks[1])
			}
			t.rules[toks[1]] = append(t.rules[toks[1]], line)
		}
	}
	return t
}

// jumpTarget finds the -j or -g target by scanning words: it must also see through rules the
// grammar does not read (another program's), since a jump into our chains is removed regardless.
func jumpTarget(toks []string) string {
	for i := 0; i+1 < len(toks); i++ {
		if toks[i] == "-j" || toks[i] == "--jump" || toks[i] == "-g" || toks[i] == "--goto" {
			return toks[i+1]
		}
	}
	return ""
}

// ruleKey is a rule's meaning in redirect's canonical form, so that a rule as we wrote it and
// as iptables-save prints it back (options reordered, "-m tcp" added, "/32" appended) compare
// equal. ok is false for a rule the grammar does not read; it equals none of ours.
func ruleKey(line string) (key string, ok bool) {
	rl, err := redirect.ParseRuleLine(line)
	if err != nil {
		return "", false
	}
	return rl.Rule.String(), true
}

// IPv6Enabled reports whether the network namespace has IPv6, and if not, why.
func IPv6Enabled(procRoot string) (bool, string) {
	if procRoot == "" {
		procRoot = "/"
	}
	if _, err := os.Stat(filepath.Join(procRoot, "proc/net/if_inet6")); err != nil {
		return false, "/proc/net/if_inet6 does not exist"
	}
	b, err := os.ReadFile(filepath.Join(procRoot, "proc/sys/net/ipv6/conf/all/disable_ipv6"))
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return false, "net.ipv6.conf.all.disable_ipv6 = 1"
	}
	return true, ""
}

// substitutePodIP replaces the pod IP placeholder in one family's text. The environment value
// may be a single address (status.podIP) or a comma list (status.podIPs); the address of the
// family is used, and without one the rules needing it are dropped (see redirect.ResolvePodIP).
func substitutePodIP(f Family, text, env string, getenv func(string) string) (string, error) {
	if !strings.Contains(text, redirect.PodIPPlaceholder) {
		return text, nil
	}
	if env == "" {
		return "", fmt.Errorf("%s rules contain the pod IP placeholder %s but --pod-ip-env was not given", f, redirect.PodIPPlaceholder)
	}
	raw := strings.TrimSpace(getenv(env))
	if raw == "" {
		return "", fmt.Errorf("--pod-ip-env %s: the environment variable is empty or unset", env)
	}
	candidates := strings.Split(raw, ",")
	pick := strings.TrimSpace(candidates[0])
	for _, c := range candidates {
		c = strings.TrimSpace(c)
		a, err := netip.ParseAddr(c)
		if err != nil {
			return "", fmt.Errorf("--pod-ip-env %s: %q is not an IP address", env, clip(c))
		}
		if (f == IPv4) == a.Unmap().Is4() {
			pick = c
			break
		}
	}
	out, err := redirect.ResolvePodIP(text, f, pick)
	if err != nil {
		return "", fmt.Errorf("--pod-ip-env %s: %v", env, err)
	}
	return out, nil
}
