package initrunner

import (
	"strings"
	"testing"
)

const validV4 = `# comment lines and blanks are fine

*nat
:OSM_PROXY_INBOUND - [0:0]
:OSM_PROXY_IN_REDIRECT - [0:0]
:OSM_PROXY_OUTBOUND - [0:0]
:OSM_PROXY_OUT_REDIRECT - [0:0]
-A PREROUTING -p tcp -j OSM_PROXY_INBOUND
-A OSM_PROXY_INBOUND -p tcp -m multiport --dports 8443,9000:9010 -j RETURN
-A OSM_PROXY_INBOUND -p tcp --dport 15010 -j RETURN
-A OSM_PROXY_INBOUND -i eth9 -j RETURN
-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT
-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15003
-A OUTPUT -p tcp -d 127.0.0.1/32 -o lo -m owner --uid-owner 1500 -j DNAT --to-destination 192.0.2.7
-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND
-A OSM_PROXY_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1500 -j OSM_PROXY_IN_REDIRECT
-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner 1500 -j RETURN
-A OSM_PROXY_OUTBOUND -d 198.51.100.0/24 -j RETURN
-I OSM_PROXY_OUTBOUND 1 -d 203.0.113.9 -j RETURN
-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT
-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-port 15001
COMMIT
`

func TestValidateRulesAccepts(t *testing.T) {
	rs, err := ValidateRules(IPv4, validV4)
	if err != nil {
		t.Fatalf("ValidateRules: %v", err)
	}
	if got, want := strings.Join(rs.Chains, ","), "OSM_PROXY_INBOUND,OSM_PROXY_IN_REDIRECT,OSM_PROXY_OUTBOUND,OSM_PROXY_OUT_REDIRECT"; got != want {
		t.Errorf("chains = %s, want %s", got, want)
	}
	if len(rs.Rules) != 14 {
		t.Errorf("got %d rules, want 14", len(rs.Rules))
	}
	v6 := strings.NewReplacer("127.0.0.1/32", "::1/128", "198.51.100.0/24", "2001:db8:1::/64",
		"203.0.113.9", "2001:db8::9", "192.0.2.7", "[2001:db8::7]:8080").Replace(validV4)
	if _, err := ValidateRules(IPv6, v6); err != nil {
		t.Errorf("IPv6 variant: %v", err)
	}
	for _, empty := range []string{"", "\n", "# nothing\n"} {
		rs, err := ValidateRules(IPv6, empty)
		if err != nil || !rs.Empty() {
			t.Errorf("ValidateRules(%q) = %+v, %v; want empty ruleset", empty, rs, err)
		}
	}
}

func TestValidateRulesRejects(t *testing.T) {
	head := "*nat\n:OSM_PROXY_OUTBOUND - [0:0]\n"
	tests := []struct {
		name string
		fam  Family
		text string
		want string // substring of the error
	}{
		{"filter table", IPv4, "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n", `table "filter" is not allowed`},
		{"second table", IPv4, head + "COMMIT\n*mangle\nCOMMIT\n", "only one table, nat, is allowed"},
		{"no commit", IPv4, head + "-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND\n", "not closed by COMMIT"},
		{"rule before table", IPv4, "-A OUTPUT -j OSM_PROXY_OUTBOUND\n*nat\nCOMMIT\n", "before the *nat line"},
		{"foreign chain", IPv4, "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n", `chain "KUBE-SERVICES" is not allowed`},
		{"foreign builtin", IPv4, head + "-A POSTROUTING -j OSM_PROXY_OUTBOUND\nCOMMIT\n", `chain "POSTROUTING" is not allowed`},
		{"builtin policy", IPv4, "*nat\n:OUTPUT DROP [0:0]\nCOMMIT\n", `only the ACCEPT policy is supported in the nat table, got "DROP"`},
		{"undeclared chain", IPv4, head + "-A OSM_PROXY_OTHER -j RETURN\nCOMMIT\n", "OSM_PROXY_OTHER is used but not declared"},
		{"flush", IPv4, head + "-F OUTPUT\nCOMMIT\n", `unknown option "-F"`},
		{"delete chain", IPv4, head + "-X OSM_PROXY_OUTBOUND\nCOMMIT\n", `unknown option "-X"`},
		{"accept in output", IPv4, head + "-A OUTPUT -j ACCEPT\nCOMMIT\n", "may only jump to a declared"},
		{"drop target", IPv4, head + "-A OSM_PROXY_OUTBOUND -j DROP\nCOMMIT\n", `target "DROP" is not allowed`},
		{"shell expansion", IPv4, head + "-A OSM_PROXY_OUTBOUND -d $(reboot) -j RETURN\nCOMMIT\n", "character that is not allowed"},
		{"quotes", IPv4, head + "-A OSM_PROXY_OUTBOUND -m comment --comment \"x\" -j RETURN\nCOMMIT\n", "character that is not allowed"},
		{"bad cidr", IPv4, head + "-A OSM_PROXY_OUTBOUND -d 999.1.1.1/32 -j RETURN\nCOMMIT\n", `invalid address or CIDR "999.1.1.1/32"`},
		{"v6 cidr in v4", IPv4, head + "-A OSM_PROXY_OUTBOUND -d 2001:db8::/32 -j RETURN\nCOMMIT\n", "is not IPv4"},
		{"v4 cidr in v6", IPv6, head + "-A OSM_PROXY_OUTBOUND -d 10.0.0.0/8 -j RETURN\nCOMMIT\n", "is not IPv6"},
		{"port too big", IPv4, head + "-A OSM_PROXY_OUTBOUND -p tcp --dport 70000 -j RETURN\nCOMMIT\n", "port must be between 1 and 65535"},
		{"too many ports", IPv4, head + "-A OSM_PROXY_OUTBOUND -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 -j RETURN\nCOMMIT\n", "at most 15 ports, got 16"},
		{"dports without multiport", IPv4, head + "-A OSM_PROXY_OUTBOUND -p tcp --dports 1,2 -j RETURN\nCOMMIT\n", "--dports needs -m multiport"},
		{"dport without proto", IPv4, head + "-A OSM_PROXY_OUTBOUND --dport 80 -j RETURN\nCOMMIT\n", "needs -p tcp"},
		{"uid without owner", IPv4, head + "-A OSM_PROXY_OUTBOUND --uid-owner 1500 -j RETURN\nCOMMIT\n", "needs -m owner"},
		{"uid name", IPv4, head + "-A OSM_PROXY_OUTBOUND -m owner --uid-owner root -j RETURN\nCOMMIT\n", "--uid-owner must be a numeric UID"},
		{"unknown option", IPv4, head + "-A OSM_PROXY_OUTBOUND -t filter -j RETURN\nCOMMIT\n", "-t is not allowed here"},
		{"unknown match", IPv4, head + "-A OSM_PROXY_OUTBOUND -m u32 -j RETURN\nCOMMIT\n", `unsupported match "u32"`},
		{"no target", IPv4, head + "-A OSM_PROXY_OUTBOUND -p tcp\nCOMMIT\n", "no -j target"},
		{"redirect without port", IPv4, head + "-A OSM_PROXY_OUTBOUND -p tcp -j REDIRECT\nCOMMIT\n", "REDIRECT without --to-ports"},
		{"to-ports on RETURN", IPv4, head + "-A OSM_PROXY_OUTBOUND -j RETURN --to-ports 1\nCOMMIT\n", "only valid after -j REDIRECT"},
		{"match after target", IPv4, head + "-A OSM_PROXY_OUTBOUND -j RETURN -p tcp\nCOMMIT\n", "after the target"},
		{"bad iface", IPv4, head + "-A OSM_PROXY_OUTBOUND -o eth0/../x -j RETURN\nCOMMIT\n", "interface name"},
		{"self jump", IPv4, head + "-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUTBOUND\nCOMMIT\n", "jumps to itself"},
		{"dnat wrong family", IPv4, head + "-A OUTPUT -p tcp -j DNAT --to-destination 2001:db8::1\nCOMMIT\n", "DNAT destination"},
		{"placeholder left", IPv4, head + "-A OUTPUT -p tcp -j DNAT --to-destination @POD_IP@\nCOMMIT\n", "DNAT destination"},
		{"negated protocol", IPv4, head + "-A OSM_PROXY_OUTBOUND ! -p tcp -j RETURN\nCOMMIT\n", "cannot be negated"},
		{"double declaration", IPv4, head + ":OSM_PROXY_OUTBOUND - [0:0]\nCOMMIT\n", "declared twice"},
		{"oversized", IPv4, strings.Repeat("#", maxRulesBytes+1), "exceed the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateRules(tc.fam, tc.text)
			if err == nil {
				t.Fatalf("accepted, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestValidateRulesNamesLine(t *testing.T) {
	_, err := ValidateRules(IPv6, "*nat\n:OSM_PROXY_OUTBOUND - [0:0]\n\n-A OSM_PROXY_OUTBOUND -j DROP\nCOMMIT\n")
	if err == nil || !strings.HasPrefix(err.Error(), "IPv6 rules line 4:") {
		t.Fatalf("error = %v, want it to start with \"IPv6 rules line 4:\"", err)
	}
}

func FuzzValidateRules(f *testing.F) {
	f.Add(validV4)
	f.Add("*nat\n:OSM_PROXY_X - [0:0]\n-A OUTPUT -j OSM_PROXY_X\nCOMMIT\n")
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := ValidateRules(IPv4, text)
		if err != nil {
			return
		}
		// Whatever is accepted must only touch our chains and the two hooks.
		for _, r := range rs.Rules {
			toks := strings.Fields(r)
			if c := toks[1]; c != "PREROUTING" && c != "OUTPUT" && !strings.HasPrefix(c, ChainPrefix) {
				t.Fatalf("accepted rule in chain %q", c)
			}
			for _, tok := range toks {
				if strings.ContainsAny(tok, "$`;\"'\\|&<>") {
					t.Fatalf("accepted token %q", tok)
				}
			}
		}
	})
}
