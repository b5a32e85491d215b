package initrunner

import (
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// The init program and every reader of rules share one grammar: a line the init program accepts
// reads the same through redirect.Parse (the path `meshkeeper explain` and the drift controller
// take), a line either refuses for its syntax the other refuses too, and what the init program
// refuses on top is policy (what may be applied), never syntax.
func TestValidateAgreesWithRedirect(t *testing.T) {
	const (
		ok     = iota // both accept
		syntax        // both refuse
		policy        // redirect reads it, the init program does not apply it
	)
	cases := []struct {
		line string
		want int
	}{
		{"-A OSM_PROXY_X -p tcp -m tcp --dport 80 -j RETURN", ok},
		{"-A OSM_PROXY_X -p udp -m udp --dport 53 -j RETURN", ok},
		{"-A OSM_PROXY_X -p udp --sport 53 -j RETURN", ok},
		{"-A OSM_PROXY_X -p tcp -m multiport --dports 8443,9000:9010 -j RETURN", ok},
		{"-A OSM_PROXY_X -p tcp -m multiport ! --sports 1000:2000 -j RETURN", ok},
		{"-A OSM_PROXY_X -m owner --gid-owner 1337 -j RETURN", ok},
		{"-A OSM_PROXY_X -m owner ! --uid-owner 1000-1500 -j RETURN", ok},
		{"-A OSM_PROXY_X ! -o lo -d 10.0.0.0/8 -j OSM_PROXY_X2", ok},
		{"-I OSM_PROXY_X 1 -s 192.0.2.1 -j RETURN", ok},
		{"-A OUTPUT -p tcp -d 127.0.0.1/32 -o lo -m owner --uid-owner 1500 -j DNAT --to-destination 192.0.2.7:80", ok},
		{"-A OSM_PROXY_X -p tcp -j REDIRECT --to-port 15001", ok},
		{"-A OSM_PROXY_X -m udp -p udp -j RETURN", syntax},
		{"-A OSM_PROXY_X -p tcp -m udp -j RETURN", syntax},
		{"-A OSM_PROXY_X --gid-owner 1337 -j RETURN", syntax},
		{"-A OSM_PROXY_X -p tcp --dports 1,2 -j RETURN", syntax},
		{"-A OSM_PROXY_X --sport 53 -j RETURN", syntax},
		{"-A OSM_PROXY_X -p tcp --dport 0 -j RETURN", syntax},
		{"-A OSM_PROXY_X -p tcp --dport 20:10 -j RETURN", syntax},
		{"-A OSM_PROXY_X -j RETURN -p tcp", syntax},
		{"-A OSM_PROXY_X -p tcp -j REDIRECT", syntax},
		{"-A OSM_PROXY_X ! ! -d 10.0.0.1 -j RETURN", syntax},
		{"-A OSM_PROXY_X -o eth0/x -j RETURN", syntax},
		{"-A OSM_PROXY_X -d 10.0.0.256 -j RETURN", syntax},
		{"-A OSM_PROXY_X -m owner --uid-owner root -j RETURN", syntax},
		{"-A OSM_PROXY_X -p tcp -m mark --mark 0x539 -j RETURN", policy},
		{"-A OSM_PROXY_X -p tcp -m socket --transparent -j RETURN", policy},
		{"-A OSM_PROXY_X -m conntrack --ctstate NEW -j RETURN", policy},
		{"-A OSM_PROXY_X -p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x539/0xffffffff", policy},
		{"-A OSM_PROXY_X -j MARK --set-xmark 0x539/0xffffffff", policy},
		{"-A OSM_PROXY_X -j CONNMARK --save-mark", policy},
		{"-A OSM_PROXY_X ! -p tcp -j RETURN", policy},
		{"-A OSM_PROXY_X -p sctp -j RETURN", policy},
		{"-A OSM_PROXY_X -j ACCEPT", policy},
		{"-A OSM_PROXY_X -j OSM_PROXY_X", policy},
		{"-A OUTPUT -j OSM_PROXY_X2 -m owner", syntax},
		{"-A OUTPUT -p tcp -j RETURN", policy},
	}
	const head = "*nat\n:OSM_PROXY_X - [0:0]\n:OSM_PROXY_X2 - [0:0]\n"
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			text := head + tc.line + "\nCOMMIT\n"
			checked, initErr := ValidateRules(IPv4, text)
			parsed, readErr := redirect.Parse([]byte(text))
			switch tc.want {
			case ok:
				if initErr != nil || readErr != nil {
					t.Fatalf("init: %v; redirect: %v; want both to accept", initErr, readErr)
				}
				line, err := redirect.ParseRuleLine(checked.Rules[0])
				if err != nil {
					t.Fatal(err)
				}
				c := parsed.IPv4.Chain(line.Rule.Chain)
				if c == nil || len(c.Rules) != 1 || c.Rules[0].String() != line.Rule.String() {
					t.Errorf("redirect read %+v, the init program's line reads %s", c, line.Rule.String())
				}
			case syntax:
				if initErr == nil || readErr == nil {
					t.Fatalf("init: %v; redirect: %v; want both to refuse", initErr, readErr)
				}
				// Same grammar, same words: the init program's message is redirect's.
				if msg := readErr.(*redirect.ParseError).Msg; !strings.Contains(initErr.Error(), msg) {
					t.Errorf("init says %q, redirect %q", initErr, msg)
				}
			case policy:
				if readErr != nil {
					t.Fatalf("redirect: %v; want it to read the line", readErr)
				}
				if initErr == nil {
					t.Fatalf("the init program accepted a rule it must not apply")
				}
			}
		})
	}
}
