package redirect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: any input either parses or yields a positioned *ParseError; never a panic. What
// parses must survive a trip through RestoreInput with the same meaning.
func FuzzParse(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/parse-*.input")
	for _, in := range inputs {
		if data, err := os.ReadFile(in); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(InitArgs(Render(baseConfig()))[2]))
	f.Add([]byte("*nat\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_REDIRECT - [0:0]\n" +
		"-A OUTPUT -p tcp -j ISTIO_OUTPUT\n-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN\n" +
		"-A ISTIO_OUTPUT ! -o lo -p udp -m udp --sport 53 -j RETURN\n-A ISTIO_OUTPUT -m mark --mark 0x539/0xffffffff -m conntrack --ctstate NEW -j CONNMARK --save-mark\n" +
		"-A ISTIO_OUTPUT -p tcp -m multiport --dports 80,9000:9010 -j MARK --set-xmark 0x1/0xff\n" +
		"-A ISTIO_OUTPUT -p tcp -m socket --transparent -j TPROXY --on-port 15006 --tproxy-mark 0x539\n" +
		"-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseYAML(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T without a position: %v", err, err)
			}
			if pe.Line < 1 || pe.Column < 1 || pe.Msg == "" {
				t.Fatalf("bad position or message: %+v", pe)
			}
			return
		}
		ex := p.Exclusions()
		for _, rs := range []*Ruleset{p.IPv4, p.IPv6} {
			if rs == nil {
				continue
			}
			text := rs.RestoreInput()
			again, err := parseYAML([]byte(text))
			if err != nil {
				t.Fatalf("re-parse of our own rendering failed: %v\n%s", err, text)
			}
			_ = again.Exclusions()
			for _, c := range rs.Chains {
				for i := range c.Rules {
					_ = Explain(rs, Packet{Direction: DirectionOutbound})
					_ = c.Rules[i].String()
				}
			}
		}
		_ = Diff(ex, ex)
	})
}

// FuzzParseAnnotations: annotation values never panic, and whatever is accepted renders and
// reads back to the same sets.
func FuzzParseAnnotations(f *testing.F) {
	f.Add("8080, 9090", "1.1.1.1/32,fd00::/8", "10.0.0.0/8")
	f.Add("70000", "999.1.1.1/32", "")
	f.Add(",,", "$(reboot)", " 10.0.0.1/8 ")
	f.Add("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "::/0", "0.0.0.0/0")
	f.Fuzz(func(t *testing.T, ports, excl, incl string) {
		ann := map[string]string{
			AnnotationOutboundPortExclusionList:    ports,
			AnnotationInboundPortExclusionList:     ports,
			AnnotationOutboundIPRangeExclusionList: excl,
			AnnotationOutboundIPRangeInclusionList: incl,
		}
		errs := ValidateAnnotations(ann)
		cfg, errs2 := Effective(MeshSettings{}, ann)
		if len(errs) != len(errs2) {
			t.Fatalf("ValidateAnnotations and Effective disagree: %v vs %v", errs, errs2)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Field, "metadata.annotations[openservicemesh.io/") || e.Detail == "" {
				t.Fatalf("error without field or detail: %v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		p, err := ParseContainer(InitContainer(Render(cfg)))
		if err != nil {
			t.Fatalf("rendered rules do not parse: %v", err)
		}
		if d := Diff(cfg.Exclusions(), p.Exclusions()); !d.Empty() {
			t.Fatalf("round trip lost meaning: %s", d)
		}
	})
}
