package redirect

import (
	"strings"
	"testing"
)

// The matches and targets beyond OSM's: what Istio's rules and the init program's input use.
// Each line is read, rendered in canonical form, and read again to the same form.
func TestParseRuleLineMatchesAndTargets(t *testing.T) {
	cases := []struct {
		in, want string
		check    func(RuleLine) bool
	}{
		{"-A OUTPUT -m owner --gid-owner 1337 -j RETURN", "-A OUTPUT -m owner --gid-owner 1337 -j RETURN",
			func(l RuleLine) bool { return l.Rule.More.HasGID && l.Rule.More.GID == 1337 && l.Matches == MatchOwner }},
		{"-A OUTPUT -m owner ! --uid-owner 1000-2000 -j RETURN", "-A OUTPUT -m owner ! --uid-owner 1000-2000 -j RETURN",
			func(l RuleLine) bool { return l.Rule.UID == 1000 && l.Rule.More.UIDMax == 2000 && l.Rule.NegUID }},
		{"-A OUTPUT -m owner --uid-owner 1337 --gid-owner 1337 -j RETURN", "-A OUTPUT -m owner --uid-owner 1337 --gid-owner 1337 -j RETURN", nil},
		{"-A ISTIO_OUTPUT ! -o lo -j ISTIO_REDIRECT", "-A ISTIO_OUTPUT ! -o lo -j ISTIO_REDIRECT",
			func(l RuleLine) bool { return l.Rule.NegOutIface && l.Rule.Target.Chain == "ISTIO_REDIRECT" }},
		{"-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN", "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN",
			func(l RuleLine) bool { return l.Matches == MatchTCP && l.Rule.More == nil }},
		{"-A OUTPUT -p tcp -m multiport --dports 80,443 -m owner ! --uid-owner 1500 -j RETURN", "-A OUTPUT -p tcp -m owner ! --uid-owner 1500 -m multiport --dports 80,443 -j RETURN",
			func(l RuleLine) bool { return l.Rule.More == nil }},
		{"-A OUTPUT -p udp -m udp --dport 53 -j RETURN", "-A OUTPUT -p udp --dport 53 -j RETURN", nil},
		{"-A OUTPUT -p udp -m udp --sport 53 -j RETURN", "-A OUTPUT -p udp --sport 53 -j RETURN",
			func(l RuleLine) bool { return len(l.Rule.More.SPorts) == 1 && l.Rule.More.SPorts[0] == 53 }},
		{"-A OUTPUT -p tcp --dport 9000:9010 -j RETURN", "-A OUTPUT -p tcp --dport 9000:9010 -j RETURN",
			func(l RuleLine) bool {
				return l.Rule.DPorts == nil && len(l.Rule.More.DPortRanges) == 1 && l.Rule.More.DPortRanges[0] == PortRange{9000, 9010}
			}},
		{"-A OUTPUT -p tcp -m multiport --dports 9000:9010,8443 -j RETURN", "-A OUTPUT -p tcp -m multiport --dports 8443,9000:9010 -j RETURN", nil},
		{"-A OUTPUT -p tcp -m multiport ! --sports 1:2,5 -j RETURN", "-A OUTPUT -p tcp -m multiport ! --sports 5,1:2 -j RETURN", nil},
		{"-A ISTIO_INBOUND -p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x539/0xffffffff", "-A ISTIO_INBOUND -p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x539/0xffffffff",
			func(l RuleLine) bool { return l.Rule.Target.Port == 15006 && l.Rule.Target.Mark == 0x539 }},
		{"-A ISTIO_INBOUND -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 1337", "-A ISTIO_INBOUND -p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x539/0xffffffff", nil},
		{"-A ISTIO_DIVERT -j MARK --set-xmark 0x539/0xffffffff", "-A ISTIO_DIVERT -j MARK --set-xmark 0x539/0xffffffff", nil},
		{"-A ISTIO_DIVERT -j MARK --set-mark 0x539", "-A ISTIO_DIVERT -j MARK --set-xmark 0x539/0xffffffff", nil},
		{"-A PREROUTING -p tcp -m mark --mark 0x539/0xffffffff -j CONNMARK --save-mark", "-A PREROUTING -p tcp -m mark --mark 0x539 -j CONNMARK --save-mark",
			func(l RuleLine) bool { return l.Rule.More.HasMark && l.Rule.Target.Op == ConnmarkSave }},
		{"-A OUTPUT -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff", "-A OUTPUT -j CONNMARK --restore-mark", nil},
		{"-A OUTPUT -j CONNMARK --set-mark 0x1/0x2", "-A OUTPUT -j CONNMARK --set-xmark 0x1/0x3", nil},
		{"-A PREROUTING -p tcp -m socket --transparent -j ISTIO_DIVERT", "-A PREROUTING -p tcp -m socket --transparent -j ISTIO_DIVERT",
			func(l RuleLine) bool { return l.Rule.More.Socket && l.Rule.More.SocketTransparent }},
		{"-A PREROUTING -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-A PREROUTING -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", nil},
		{"-I OUTPUT 2 -m conntrack ! --ctstate NEW -j RETURN", "-A OUTPUT -m conntrack ! --ctstate NEW -j RETURN",
			func(l RuleLine) bool { return l.Insert && l.Pos == 2 && l.Rule.More.NegCTState }},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			l, err := ParseRuleLine(tc.in)
			if err != nil {
				t.Fatalf("ParseRuleLine: %v", err)
			}
			if got := l.Rule.String(); got != tc.want {
				t.Errorf("rendered\n  %s\nwant\n  %s", got, tc.want)
			}
			if tc.check != nil && !tc.check(l) {
				t.Errorf("parsed %+v", l)
			}
			again, err := ParseRuleLine(l.Rule.String())
			if err != nil || again.Rule.String() != l.Rule.String() {
				t.Errorf("the rendering does not read back the same: %v\n  %s", err, again.Rule.String())
			}
		})
	}
}

func TestParseRuleLineErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"-A OUTPUT --gid-owner 1 -j RETURN", "--gid-owner needs -m owner"},
		{"-A OUTPUT -m owner --gid-owner wheel -j RETURN", "numeric GID"},
		{"-A OUTPUT -m udp -j RETURN", "-m udp needs -p udp"},
		{"-A OUTPUT -p tcp -m udp -j RETURN", "-m udp needs -p udp"},
		{"-A OUTPUT --sport 53 -j RETURN", "--sport needs -p tcp or -p udp"},
		{"-A OUTPUT -p tcp --dport 90:80 -j RETURN", "is reversed"},
		{"-A OUTPUT -p tcp -m multiport --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15,16 -j RETURN", "at most 15 ports, got 16"},
		{"-A OUTPUT -j RETURN -p tcp", "after the target"},
		{"-A OUTPUT --mark 1 -j RETURN", "--mark needs -m mark"},
		{"-A OUTPUT -m mark --mark x -j RETURN", "invalid mark"},
		{"-A OUTPUT --transparent -j RETURN", "needs -m socket"},
		{"-A OUTPUT -m conntrack --ctstate BOGUS -j RETURN", "unknown conntrack state"},
		{"-A OUTPUT -j TPROXY --tproxy-mark 1", "TPROXY without --on-port"},
		{"-A OUTPUT -j RETURN --on-port 1", "only valid after -j TPROXY"},
		{"-A OUTPUT -j MARK", "MARK without"},
		{"-A OUTPUT -j CONNMARK", "CONNMARK without"},
		{"-A OUTPUT -j CONNMARK --save-mark --restore-mark", "more than one CONNMARK operation"},
		{"-A OUTPUT -j CONNMARK --save-mark --nfmask 0xff", "only the default mask"},
		{"-A OUTPUT -j RETURN --set-xmark 1", "only valid after -j MARK or -j CONNMARK"},
		{":OUTPUT ACCEPT [0:0]", "unexpected argument"},
		{"-A OUTPUT -m comment --comment \"a\x00b\" -j RETURN", "control character 0x00"},
		{"-A OUTPUT -m comment --comment a\x1bb -j RETURN", "control character 0x1b"},
		{"-A OUTPUT -m comment --comment \"a\\\"b\" -j RETURN", "backslash escapes"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseRuleLine(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseChainDeclaration(t *testing.T) {
	for in, want := range map[string]string{
		":OSM_PROXY_X - [0:0]": "", ":OUTPUT ACCEPT": "", ":ISTIO_OUTPUT - [12:345]": "",
		":OUTPUT DROP [0:0]": "only the ACCEPT policy", ":X ACCEPT [0:0]": "must be '-'",
		":X - [a:b]": "invalid counters", ":X": "chain declaration must be", "X - [0:0]": "starts with ':'",
	} {
		_, err := ParseChainDeclaration(in)
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("ParseChainDeclaration(%q) = %v, want %q", in, err, want)
		}
	}
}

// A comment is written back as iptables-save writes it, byte for byte between quotes, so what
// was read reads back the same: Go's escapes (`\u00a0`) are refused by the reader (found by
// FuzzParse with a NUL, which the reader now refuses in the first place).
func TestCommentReadsBackAsWritten(t *testing.T) {
	for _, comment := range []string{"osm", "two words", "non\u00a0breaking", "caf\xe9 latin-1", "ünïcödé"} {
		r, err := ParseRuleLine("-A OUTPUT -m comment --comment \"" + comment + "\" -j RETURN")
		if err != nil {
			t.Fatalf("%q: %v", comment, err)
		}
		written := r.Rule.String()
		again, err := ParseRuleLine(written)
		if err != nil || again.Rule.Comment != comment {
			t.Errorf("%q written as %q, read back as %q (%v)", comment, written, again.Rule.Comment, err)
		}
	}
}
