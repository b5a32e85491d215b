package osmtest_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/meshkeeper/meshkeeper/internal/osmtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// The drift fixture was taken from an OSM v1.2 pod; the renderer must produce it byte for byte.
func TestInitScriptMatchesOSMFixture(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "drift", "testdata", "osm-v12-heredoc.sh"))
	if err != nil {
		t.Fatal(err)
	}
	got := osmtest.InitScript(osmtest.InitRules{
		OutboundIPRangeExclusions: []string{"10.0.0.0/8"},
		OutboundPortExclusions:    []int{6379, 7070},
		InboundPortExclusions:     []int{9090},
	})
	if got != string(want) {
		t.Errorf("InitScript:\n%s\nwant the fixture:\n%s", got, want)
	}
}

func TestMergeRulesInOSMOrder(t *testing.T) {
	global := osmtest.InitRules{
		LocalProxyMode:             "PodIP",
		OutboundIPRangeExclusions:  []string{"169.254.169.254/32", "10.1.0.0/16"},
		OutboundPortExclusions:     []int{5432, 6379},
		InboundPortExclusions:      []int{9090},
		NetworkInterfaceExclusions: []string{"eth1"},
	}
	got, err := osmtest.MergeRules(global, map[string]string{
		osmtest.AnnotationOutboundPortExclusions:   "6379, 8080",
		osmtest.AnnotationInboundPortExclusions:    "9091",
		osmtest.AnnotationOutboundIPRangeExclusion: "10.1.0.0/16,192.168.0.0/16",
		osmtest.AnnotationOutboundIPRangeInclusion: "10.96.0.0/12",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := osmtest.InitRules{
		LocalProxyMode:             "PodIP",
		OutboundIPRangeExclusions:  []string{"10.1.0.0/16", "192.168.0.0/16", "169.254.169.254/32"},
		OutboundIPRangeInclusions:  []string{"10.96.0.0/12"},
		OutboundPortExclusions:     []int{5432, 6379, 8080},
		InboundPortExclusions:      []int{9090, 9091},
		NetworkInterfaceExclusions: []string{"eth1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeRules = %+v\nwant %+v", got, want)
	}
}

func TestMergeRulesRefusesWhatOSMRefused(t *testing.T) {
	for ann, value := range map[string]string{
		osmtest.AnnotationOutboundPortExclusions:   "0",
		osmtest.AnnotationInboundPortExclusions:    "http",
		osmtest.AnnotationOutboundIPRangeExclusion: "10.0.0.1",
	} {
		if _, err := osmtest.MergeRules(osmtest.InitRules{}, map[string]string{ann: value}); err == nil {
			t.Errorf("%s=%q: no error", ann, value)
		}
	}
	// OSM let these through: ports above 65535 and IPv6 ranges.
	if _, err := osmtest.MergeRules(osmtest.InitRules{}, map[string]string{
		osmtest.AnnotationOutboundPortExclusions:   "70000",
		osmtest.AnnotationOutboundIPRangeExclusion: "fd00::/8",
	}); err != nil {
		t.Errorf("OSM accepted these annotations: %v", err)
	}
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// Whatever the fake renders, meshkeeper's drift parser must read back as the same exclusions.
func TestInitScriptParsesBack(t *testing.T) {
	cases := map[string]struct {
		rules osmtest.InitRules
		want  redirect.Exclusions
	}{
		"none": {
			rules: osmtest.InitRules{},
			want:  redirect.Exclusions{ProxyUID: osmtest.ProxyUID, LocalProxyMode: redirect.LocalProxyModeLocalhost},
		},
		"everything": {
			rules: osmtest.InitRules{
				OutboundIPRangeExclusions:  []string{"192.168.0.0/16", "169.254.169.254/32"},
				OutboundPortExclusions:     []int{5432, 8080},
				InboundPortExclusions:      []int{9090, 9091},
				NetworkInterfaceExclusions: []string{"eth1", "net2"},
			},
			want: redirect.Exclusions{
				OutboundIPRanges: prefixes("169.254.169.254/32", "192.168.0.0/16"),
				OutboundPorts:    []uint16{5432, 8080},
				InboundPorts:     []uint16{9090, 9091},
				Interfaces:       []string{"eth1", "net2"},
				ProxyUID:         osmtest.ProxyUID,
				LocalProxyMode:   redirect.LocalProxyModeLocalhost,
			},
		},
		"inclusions and PodIP": {
			rules: osmtest.InitRules{
				LocalProxyMode:            osmtest.LocalProxyModePodIP,
				OutboundIPRangeExclusions: []string{"10.0.0.0/8"},
				OutboundIPRangeInclusions: []string{"10.96.0.0/12", "10.244.0.0/16"},
			},
			want: redirect.Exclusions{
				OutboundIPRanges:          prefixes("10.0.0.0/8"),
				OutboundIPRangeInclusions: prefixes("10.96.0.0/12", "10.244.0.0/16"),
				ProxyUID:                  osmtest.ProxyUID,
				LocalProxyMode:            redirect.LocalProxyModePodIP,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			parsed, err := redirect.ParseContainer(redirect.Container{
				Name: osmtest.InitContainerName, Command: []string{"/bin/sh"}, Args: []string{"-c", osmtest.InitScript(tc.rules)},
			})
			if err != nil {
				t.Fatalf("parsing:\n%s\n%v", osmtest.InitScript(tc.rules), err)
			}
			if d := redirect.Diff(tc.want, parsed.Exclusions()); !d.Empty() {
				t.Errorf("parsed exclusions differ: %s\n%+v", d, parsed.Exclusions())
			}
		})
	}
}
