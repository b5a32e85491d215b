package redirect

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/golden"
)

func TestDiffGolden(t *testing.T) {
	// What the MeshConfig says today versus what an OSM v0 pod was started with (the OSM
	// troubleshooting guide's example).
	cfg := mustEffective(t, MeshSettings{
		OutboundIPRangeExclusionList: []string{"1.1.1.1/32", "3.3.3.3/32", "fd00::/8"},
		OutboundPortExclusionList:    []int{6379, 7070},
		InboundPortExclusionList:     []int{9000},
	}, map[string]string{AnnotationOutboundPortExclusionList: "8080"})
	data, err := os.ReadFile("testdata/parse-osm-v0-seed001-ranges.input")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(cfg.Exclusions(), p.Exclusions())
	if d.Empty() {
		t.Fatal("difference expected")
	}
	golden.CheckString(t, "diff-seed001-ranges.golden", d.String())

	d = Diff(Exclusions{ProxyUID: 1500, Interfaces: []string{"net1"}}, Exclusions{ProxyUID: NoProxyUID, Interfaces: []string{"net2"}})
	golden.CheckString(t, "diff-uid-interfaces.golden", d.String())
}

func TestDiffByMeaning(t *testing.T) {
	pfx := netip.MustParsePrefix
	exp := Exclusions{
		OutboundIPRanges: []netip.Prefix{pfx("2.2.2.0/24"), pfx("1.1.1.1/32")}, // unsorted
		OutboundPorts:    []uint16{8080, 6379, 8080},                           // unsorted, duplicated
		ProxyUID:         1500,
	}
	act := Exclusions{
		OutboundIPRanges: []netip.Prefix{pfx("1.1.1.1/32"), pfx("2.2.2.2/24")}, // host bits set
		OutboundPorts:    []uint16{6379, 8080},
		ProxyUID:         1500,
	}
	if d := Diff(exp, act); !d.Empty() {
		t.Errorf("equal by meaning, got:\n%s", d)
	}
	act.OutboundPorts = []uint16{6379}
	d := Diff(exp, act)
	if d.Empty() || len(d.OutboundPorts.Missing) != 1 || d.OutboundPorts.Missing[0] != 8080 || len(d.OutboundPorts.Unexpected) != 0 {
		t.Errorf("got %+v", d.OutboundPorts)
	}
	if !strings.Contains(d.String(), "outbound port exclusions: missing 8080") {
		t.Errorf("message %q", d.String())
	}
	if exp.OutboundPorts[0] != 8080 {
		t.Error("Diff must not reorder its inputs")
	}
	if (Difference{}).String() != "" || !(Difference{}).Empty() {
		t.Error("zero Difference must be empty")
	}
}

// TestDiffLocalProxyMode: the mode is part of what a pod was rendered with, read from the rules
// themselves (a DNAT exists only in PodIP mode), so a pod rendered for one mode and judged
// against the other differs even when every exclusion matches.
func TestDiffLocalProxyMode(t *testing.T) {
	podIP := mustEffective(t, MeshSettings{LocalProxyMode: "PodIP", OutboundPortExclusionList: []int{6379}}, nil)
	localhost := mustEffective(t, MeshSettings{OutboundPortExclusionList: []int{6379}}, nil)
	p, err := ParseContainer(InitContainer(Render(podIP)))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Exclusions()
	if got.LocalProxyMode != LocalProxyModePodIP {
		t.Fatalf("rules rendered for PodIP read as %q", got.LocalProxyMode)
	}
	if d := Diff(podIP.Exclusions(), got); !d.Empty() {
		t.Fatalf("same configuration differs:\n%s", d)
	}
	d := Diff(localhost.Exclusions(), got)
	if d.Empty() || d.LocalProxyMode.Expected != LocalProxyModeLocalhost || d.LocalProxyMode.Actual != LocalProxyModePodIP {
		t.Fatalf("mode difference not reported: %+v", d.LocalProxyMode)
	}
	if want := "local proxy mode: expected Localhost, found PodIP\n"; d.String() != want {
		t.Errorf("String() = %q, want %q", d.String(), want)
	}
	if p, err = ParseContainer(InitContainer(Render(localhost))); err != nil || p.Exclusions().LocalProxyMode != LocalProxyModeLocalhost {
		t.Errorf("rules rendered for Localhost read as %q (err %v)", p.Exclusions().LocalProxyMode, err)
	}
}
