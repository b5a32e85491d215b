package diagnose

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
	"github.com/meshkeeper/meshkeeper/internal/analysis"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestRoute(t *testing.T) {
	ranges001 := script(t, "seed001-ranges.sh")
	pod := makePod("a").OSMInit(ranges001).Sidecar().Running(initOK).Obj()
	mc := makeMeshConfig(ranges("1.1.1.1/32", "2.2.2.2/24"), egressOn)
	mesh := RouteInput{Pod: pod, MeshConfigRef: meshRef, MeshConfig: mc,
		Namespaces: []corev1.Namespace{*meshedNamespace(), *namespace("legacy", map[string]string{injection.LabelMonitoredBy: "osm"}, nil)},
		Services:   []corev1.Service{service("legacy", "admin-ui", "10.96.0.115", 7000)},
		Egresses:   []policyv1alpha1.Egress{redisEgress(7000, 7003)},
		Selection:  injection.SelectOptions{MeshName: "osm"}}
	cases := []struct {
		name    string
		in      RouteInput
		to      string
		uid     uint32
		path    Path
		status  Status
		outcome analysis.Outcome
		has     []string
	}{
		{"excluded range leaves directly, naming the rule and the setting", mesh, "2.2.2.9:443", 0, PathBypass, StatusPass, "",
			[]string{"PROXY_OUTPUT", "-d 2.2.2.0/24 -j RETURN", "inside outbound IP range exclusion 2.2.2.0/24"}},
		{"the proxy's own UID is never redirected", mesh, "10.0.0.6:7000", 1500, PathBypass, StatusPass, "",
			[]string{"--uid-owner 1500", "UID 1500"}},
		{"seed 003: the mesh Service listener takes the Egress destination", mesh, "10.0.0.6:7000", 0, PathSidecar, StatusFail, analysis.OutcomeServiceListener,
			[]string{"legacy/admin-ui", "PORT COLLISION", "Egress test/redis"}},
		{"seed 003: the other Redis port is allowed by the Egress", mesh, "10.0.0.6:7003", 0, PathSidecar, StatusPass, analysis.OutcomeEgressPolicy,
			[]string{"allowed by Egress test/redis port 7003/tcp"}},
		{"nothing allows it", mesh, "10.0.0.6:7001", 0, PathSidecar, StatusFail, analysis.OutcomeDenied, []string{"denied"}},
		{"the mesh Service itself", mesh, "10.96.0.115:7000", 0, PathSidecar, StatusPass, analysis.OutcomeMeshService, []string{"legacy/admin-ui"}},
		{"IPv6: OSM rendered no IPv6 table", mesh, "[fd00::1]:80", 0, PathBypass, StatusWarn, "", []string{"no IPv6 table"}},
		{"unknown mesh objects make a pass a warning", func() RouteInput {
			in := mesh
			in.Services, in.Egresses, in.PolicyUnknown = nil, nil, "offline"
			return in
		}(), "10.0.0.6:7003", 0, PathSidecar, StatusFail, analysis.OutcomeDenied, []string{"not read (offline)"}},
		{"rules given as iptables-save replace the init container", func() RouteInput {
			in := mesh
			p, err := redirect.Parse([]byte("*nat\n:OUTPUT ACCEPT [0:0]\n:PROXY_OUTPUT - [0:0]\n-A OUTPUT -p tcp -j PROXY_OUTPUT\n-A PROXY_OUTPUT -d 10.0.0.0/8 -j RETURN\n-A PROXY_OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n"))
			if err != nil {
				t.Fatal(err)
			}
			in.Rules, in.RulesSource = p, "dump.txt"
			return in
		}(), "10.0.0.6:7000", 0, PathBypass, StatusWarn, "", []string{"dump.txt", "-d 10.0.0.0/8", "differ from the configuration"}},
		{"no init container: nothing redirects", RouteInput{Pod: makePod("b").Sidecar().Obj(), MeshConfigRef: meshRef}, "10.0.0.6:7000", 0, PathBypass, StatusFail, "",
			[]string{"no meshkeeper-init or osm-init"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Route(tc.in, netip.MustParseAddrPort(tc.to), tc.uid)
			if err != nil {
				t.Fatal(err)
			}
			if r.Path != tc.path || r.Status != tc.status || r.Outcome != tc.outcome {
				t.Errorf("path %s status %s outcome %q, want %s %s %q (%s)", r.Path, r.Status, r.Outcome, tc.path, tc.status, tc.outcome, r.Summary)
			}
			text := strings.Join(append([]string{r.Summary, r.Rule, r.Setting, r.RulesSource, r.Listener}, append(r.Egress, r.Notes...)...), "\n")
			for _, s := range tc.has {
				if !strings.Contains(text, s) {
					t.Errorf("result lacks %q:\n%s", s, text)
				}
			}
		})
	}
}

func TestRouteUnreadableInitContainer(t *testing.T) {
	pod := makePod("a").OSMInit(script(t, "seed001-ranges-double-and.sh")).Sidecar().Obj()
	if _, err := Route(RouteInput{Pod: pod, MeshConfigRef: meshRef}, netip.MustParseAddrPort("1.1.1.1:80"), 0); err == nil || !strings.Contains(err.Error(), "osm-init") {
		t.Fatalf("want an error naming osm-init, got %v", err)
	}
}
