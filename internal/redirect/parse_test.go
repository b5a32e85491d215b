package redirect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

// describeParsed is the golden form of a parse: format, extracted sets, and each ruleset as
// the kernel would hold it.
func describeParsed(p *Parsed) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format: %s\n", p.Format)
	if p.Container != "" {
		fmt.Fprintf(&b, "container: %s\n", p.Container)
	}
	if p.PodIPEnv != "" {
		fmt.Fprintf(&b, "pod IP env: %s\n", p.PodIPEnv)
	}
	ex := p.Exclusions()
	fmt.Fprintf(&b, "outbound IP range exclusions: %v\n", ex.OutboundIPRanges)
	fmt.Fprintf(&b, "outbound IP range inclusions: %v\n", ex.OutboundIPRangeInclusions)
	fmt.Fprintf(&b, "outbound port exclusions: %v\n", ex.OutboundPorts)
	fmt.Fprintf(&b, "inbound port exclusions: %v\n", ex.InboundPorts)
	fmt.Fprintf(&b, "interface exclusions: %v\n", ex.Interfaces)
	fmt.Fprintf(&b, "proxy UID: %d\n", ex.ProxyUID)
	for _, rs := range []*Ruleset{p.IPv4, p.IPv6} {
		if rs == nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s ---\n%s", rs.Family, rs.RestoreInput())
	}
	return b.String()
}

func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/parse-*.input")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseYAML(data)
			wantErr := strings.HasPrefix(name, "parse-error-") || strings.HasSuffix(name, "double-and")
			var got string
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error is %T, want *ParseError: %v", err, err)
				}
				if pe.Line < 1 || pe.Column < 1 {
					t.Errorf("error without a position: %+v", pe)
				}
				if !wantErr {
					t.Fatalf("unexpected error: %v", err)
				}
				got = "error: " + err.Error() + "\n"
			} else {
				if wantErr {
					t.Fatalf("malformed input accepted:\n%s", describeParsed(p))
				}
				got = describeParsed(p)
			}
			golden.CheckString(t, name+".golden", got)
		})
	}
}

// The published troubleshooting page contains `-j RETURN && && iptables`: a shell refuses it,
// so must we, and at the second `&&`.
func TestParseSeedDoubleAnd(t *testing.T) {
	data, err := os.ReadFile("testdata/parse-osm-v0-seed001-double-and.input")
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseYAML(data)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ParseError, got %v", err)
	}
	second := strings.Index(string(data), "&& &&") + 3
	if pe.Line != 1 || pe.Column != second+1 {
		t.Errorf("error at %d:%d, want 1:%d", pe.Line, pe.Column, second+1)
	}
}

// -I puts each rule at the top, so the last inserted rule is evaluated first.
func TestParseInsertOrder(t *testing.T) {
	data, _ := os.ReadFile("testdata/parse-osm-v0-seed001-ranges.input")
	p, err := parseYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	rules := p.IPv4.Chain("PROXY_OUTPUT").Rules
	if got := rules[0].Dst.String(); got != "2.2.2.0/24" {
		t.Errorf("first rule matches %s, want 2.2.2.0/24 (inserted last)", got)
	}
	if got := rules[1].Dst.String(); got != "1.1.1.1/32" {
		t.Errorf("second rule matches %s, want 1.1.1.1/32", got)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, in, want string
		line, col      int
	}{
		{"unknown option", "iptables -t nat -A OUTPUT -p tcp --frob 1 -j RETURN", `unknown option "--frob"`, 1, 34},
		{"filter table", "iptables -A OUTPUT -p tcp -j RETURN", "only nat table", 1, 1},
		{"unknown command", "curl http://x", `unsupported command "curl"`, 1, 1},
		{"pipe", "iptables -t nat -A OUTPUT -j RETURN | sh", "unsupported shell operator `|'", 1, 37},
		{"or", "iptables -t nat -A OUTPUT -j RETURN || true", "unsupported shell operator `||'", 1, 37},
		{"backtick", "iptables -t nat -A OUTPUT -d `id` -j RETURN", "command substitution", 1, 30},
		{"dollar", "iptables -t nat -A OUTPUT -d $CIDR -j RETURN", "shell expansion", 1, 30},
		{"unterminated quote", "iptables -t nat -A OUTPUT -d '1.1.1.1 -j RETURN", "unterminated single quote", 1, 30},
		{"missing chain", "iptables -t nat -A PROXY_OUTPUT -j RETURN", "chain PROXY_OUTPUT does not exist", 1, 17},
		{"jump to unknown", "iptables -t nat -A OUTPUT -j NOPE", `unknown chain or unsupported target "NOPE"`, 1, 17},
		{"drop target", "iptables -t nat -A OUTPUT -j DROP", `unknown chain or unsupported target "DROP"`, 1, 17},
		{"dport without proto", "iptables -t nat -A OUTPUT --dport 80 -j RETURN", "--dport needs -p tcp", 1, 27},
		{"dports without multiport", "iptables -t nat -A OUTPUT -p tcp --dports 80 -j RETURN", "needs -m multiport", 1, 34},
		{"reversed port range", "iptables -t nat -A OUTPUT -p tcp --dport 90:80 -j RETURN", `port range "90:80" is reversed`, 1, 42},
		{"port zero", "iptables -t nat -A OUTPUT -p tcp --dport 0 -j RETURN", "port must be between 1 and 65535", 1, 42},
		{"uid name", "iptables -t nat -A OUTPUT -m owner --uid-owner envoy -j RETURN", "numeric UID", 1, 48},
		{"no target", "iptables -t nat -A OUTPUT -p tcp", "rule has no -j target", 1, 33},
		{"redirect without port", "iptables -t nat -A OUTPUT -p tcp -j REDIRECT", "REDIRECT without --to-ports", 1, 45},
		{"double negation", "iptables -t nat -A OUTPUT ! ! -d 1.1.1.1 -j RETURN", "repeated '!'", 1, 29},
		{"negated jump", "iptables -t nat -A OUTPUT ! -j RETURN", "'!' cannot be used with -j", 1, 27},
		{"restore without table", "-A OUTPUT -j RETURN\nCOMMIT\n", "COMMIT without a table", 2, 1},
		{"restore missing commit", "*nat\n-A OUTPUT -p tcp -j RETURN\n", "missing COMMIT", 3, 1},
		{"restore undeclared chain", "*nat\n-A OSM_X -j RETURN\nCOMMIT\n", "chain OSM_X does not exist", 2, 1},
		{"restore -t", "*nat\n-t nat -A OUTPUT -j RETURN\nCOMMIT\n", "-t is not allowed here", 2, 1},
		{"restore mixed families", "*nat\n-A OUTPUT -d 1.1.1.1 -j RETURN\n-A OUTPUT -d ::1 -j RETURN\nCOMMIT\n", "IPv6 address in an IPv4 ruleset", 3, 14},
		{"restore bad policy", "*nat\n:OUTPUT DROP [0:0]\nCOMMIT\n", "only the ACCEPT policy", 2, 9},
		{"restore garbage", "*nat\nhello\nCOMMIT\n", `unexpected line "hello"`, 2, 1},
		{"heredoc with other var", "iptables-restore --noflush <<EOF\n*nat\n-A OUTPUT -d $NET -j RETURN\nCOMMIT\nEOF\n", "shell expansion", 3, 14},
		{"heredoc for iptables", "iptables -t nat -N X <<EOF\nEOF\n", "only understood for iptables-restore", 1, 22},
		{"restore option", "iptables-restore --flush <<EOF\n*nat\nCOMMIT\nEOF\n", "unsupported iptables-restore option", 1, 18},
		{"nested sh", "sh -c 'sh -c x'", "nested shells", 1, 8},
		{"empty", "", "no iptables commands found", 1, 1},
		{"trailing and after newline", "iptables -t nat -N X &&\n\n", "no command after `&&'", 1, 22},
		{"semicolon after and", "iptables -t nat -N X && ; iptables -t nat -N Y", "unexpected token `;'", 1, 25},
		{"structured without init", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: app\n    image: x\n", "no meshkeeper-init or osm-init", 1, 1},
		{"init without arguments", "initContainers:\n- name: meshkeeper-init\n  command: [/meshkeeper-init]\n", `runs meshkeeper-init without arguments; expected the "apply" verb`, 1, 1},
		{"args bad flag", `["apply", "--ipv5-rules", "x"]`, `unknown flag "--ipv5-rules"`, 1, 12},
		{"args bad rules", "- apply\n- --ipv4-rules\n- |\n  *nat\n  -A OUTPUT -p tcp -j BOGUS\n  COMMIT\n", `unknown chain or unsupported target "BOGUS"`, 5, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseYAML([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %s", describeParsed(p))
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %T %v", err, err)
			}
			if !strings.Contains(pe.Msg, tc.want) {
				t.Errorf("message %q does not contain %q", pe.Msg, tc.want)
			}
			if pe.Line != tc.line || pe.Column != tc.col {
				t.Errorf("position %d:%d, want %d:%d (%s)", pe.Line, pe.Column, tc.line, tc.col, pe.Msg)
			}
		})
	}
}

// `kubectl describe pod` prints each argument on its own line, multi-line ones over several.
func TestParseDescribeMeshkeeper(t *testing.T) {
	cfg := mustEffective(t, MeshSettings{OutboundIPRangeExclusionList: []string{"1.1.1.1/32", "fd00::/8"}, OutboundPortExclusionList: []int{6379}, LocalProxyMode: "PodIP"}, nil)
	c := InitContainer(Render(cfg))
	var b strings.Builder
	b.WriteString("Name:         web-1\nNamespace:    default\nInit Containers:\n  meshkeeper-init:\n    Image:         img\n    Command:\n")
	for _, s := range c.Command {
		b.WriteString("      " + s + "\n")
	}
	b.WriteString("    Args:\n")
	for _, a := range c.Args {
		for _, l := range strings.Split(strings.TrimSuffix(a, "\n"), "\n") {
			b.WriteString("      " + l + "\n")
		}
	}
	b.WriteString("    State:          Terminated\nContainers:\n  app:\n    Image: app\n")
	p, err := parseYAML([]byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if p.Format != FormatMeshkeeper || p.PodIPEnv != PodIPEnvVar {
		t.Errorf("format %s env %q", p.Format, p.PodIPEnv)
	}
	if d := Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() {
		t.Errorf("describe lost meaning:\n%s", d)
	}
}

func TestParseLimits(t *testing.T) {
	var b strings.Builder
	for i := range maxChains + 1 {
		fmt.Fprintf(&b, "iptables -t nat -N C%d\n", i)
	}
	if _, err := parseYAML([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "too many chains") {
		t.Errorf("chain limit: %v", err)
	}
	if _, err := parseYAML(make([]byte, MaxParseInput+1)); err == nil {
		t.Error("size limit not enforced")
	}
}

// An error in the IPv6 rules of a pod manifest points at the IPv6 copy of the line, not at the
// identical IPv4 line above it.
func TestParseErrorPositionInPodYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/parse-meshkeeper-pod.input")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	v6 := strings.Index(s, "--ipv6-rules")
	bad := strings.Index(s[v6:], "-j REDIRECT --to-ports 15003") + v6
	broken := s[:bad] + "-j REDIRECT --to-ports 99999" + s[bad+len("-j REDIRECT --to-ports 15003"):]
	_, err = parseYAML([]byte(broken))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ParseError, got %v", err)
	}
	wantLine, wantCol := lineCol(broken, bad+len("-j REDIRECT --to-ports "))
	if pe.Line != wantLine || pe.Column != wantCol {
		t.Errorf("error at %d:%d, want %d:%d (%s)", pe.Line, pe.Column, wantLine, wantCol, pe.Msg)
	}
}
