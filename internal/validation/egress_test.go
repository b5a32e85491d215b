package validation

import (
	"testing"

	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func TestEgress(t *testing.T) {
	smi, pol := policyv1alpha1.MatchGroupSMISpecs, policyv1alpha1.MatchGroupPolicy
	tests := []struct {
		name string
		in   *policyv1alpha1.Egress
		want expect
	}{
		{"http with hosts", MakeEgress("x").Port(80, "http").Hosts("httpbin.org").Obj(), expect{}},
		{"HTTP in upper case", MakeEgress("x").Port(80, "HTTP").Hosts("httpbin.org").Obj(), expect{}},
		{"https with wildcard host", MakeEgress("x").Port(443, "https").Hosts("*.example.com").Obj(), expect{}},
		{"tcp with ips", MakeEgress("x").Port(5432, "tcp").IPs("203.0.113.0/24", "2001:db8::/32").Obj(), expect{}},
		{"tcp-server-first with ips", MakeEgress("x").Port(3306, "tcp-server-first").IPs("203.0.113.7/32").Obj(), expect{}},
		{"mixed http and tcp", MakeEgress("x").Port(80, "http").Port(5432, "tcp").Hosts("a.example.com").IPs("203.0.113.0/24").Obj(), expect{}},
		{"http match", MakeEgress("x").Port(80, "http").Hosts("a.example.com").Match(smi, "HTTPRouteGroup", "routes").Obj(), expect{}},
		{"upstream setting match", MakeEgress("x").Port(443, "https").Hosts("a.example.com").Match(pol, "UpstreamTrafficSetting", "u").Obj(), expect{}},

		{"unknown protocol", MakeEgress("x").Port(53, "udp").IPs("10.0.0.0/8").Obj(),
			expect{errs: []string{"spec.ports[0].protocol", `"udp"`}}},
		{"http without hosts", MakeEgress("x").Port(80, "http").Obj(),
			expect{errs: []string{"spec.hosts", "port 80 is http"}}},
		{"http with only ipAddresses", MakeEgress("x").Port(80, "http").Hosts("a.example.com").IPs("10.0.0.0/8").Obj(),
			expect{errs: []string{"spec.ipAddresses", "every port is http"}}},
		{"tcp with only hosts", MakeEgress("x").Port(5432, "tcp").Hosts("db.example.com").IPs("10.0.0.0/8").Obj(),
			expect{errs: []string{"spec.hosts", "every port is tcp"}}},
		{"tcp without ips warns", MakeEgress("x").Port(5432, "tcp").Obj(),
			expect{warns: []string{"spec.ports[0]", "tcp port 5432 has no ipAddresses"}}},
		{"https without hosts or ips warns", MakeEgress("x").Port(443, "https").Obj(),
			expect{warns: []string{"https port 443 has neither hosts nor ipAddresses"}}},
		{"catch-all range warns", MakeEgress("x").Port(5432, "tcp").IPs("0.0.0.0/0").Obj(),
			expect{warns: []string{"spec.ipAddresses[0]", "0.0.0.0/0"}}},
		{"bad CIDR", MakeEgress("x").Port(5432, "tcp").IPs("10.0.0.300/8").Obj(),
			expect{errs: []string{"spec.ipAddresses[0]", "10.0.0.300/8"}}},
		{"address without prefix", MakeEgress("x").Port(5432, "tcp").IPs("10.0.0.1").Obj(),
			expect{errs: []string{"spec.ipAddresses[0]", "prefix length"}}},
		{"duplicate range after masking", MakeEgress("x").Port(5432, "tcp").IPs("10.0.0.0/8", "10.1.2.3/8").Obj(),
			expect{errs: []string{"spec.ipAddresses[1]", "Duplicate"}}},
		{"bad host", MakeEgress("x").Port(443, "https").Hosts("exa mple.com").Obj(),
			expect{errs: []string{"spec.hosts[0]", "exa mple.com"}}},
		{"duplicate host ignores case", MakeEgress("x").Port(443, "https").Hosts("a.example.com", "A.example.com").Obj(),
			expect{errs: []string{"spec.hosts[1]", "Duplicate"}}},
		{"duplicate port", MakeEgress("x").Port(443, "https").Port(443, "HTTPS").Hosts("a.example.com").Obj(),
			expect{errs: []string{"spec.ports[1]", "Duplicate"}}},
		{"conflicting port", MakeEgress("x").Port(443, "https").Port(443, "tcp").Hosts("a.example.com").IPs("10.0.0.0/8").Obj(),
			expect{errs: []string{"spec.ports[1].protocol", "already declared as https"}}},
		{"port zero", MakeEgress("x").Port(0, "tcp").IPs("10.0.0.0/8").Obj(),
			expect{errs: []string{"spec.ports[0].number"}}},
		{"no ports", MakeEgress("x").Obj(), expect{errs: []string{"spec.ports"}}},
		{"no sources", func() *policyv1alpha1.Egress {
			e := MakeEgress("x").Port(80, "http").Hosts("a.example.com").Obj()
			e.Spec.Sources = nil
			return e
		}(), expect{errs: []string{"spec.sources: Required"}}},
		{"wrong source kind", MakeEgress("x").Source("Service", "svc", "app").Port(80, "http").Hosts("a.example.com").Obj(),
			expect{errs: []string{"spec.sources[1].kind", `"Service"`}}},
		{"source without namespace", MakeEgress("x").Source("ServiceAccount", "sa", "").Port(80, "http").Hosts("a.example.com").Obj(),
			expect{errs: []string{"spec.sources[1].namespace"}}},
		{"duplicate source", MakeEgress("x").Source("ServiceAccount", "client", "app").Port(80, "http").Hosts("a.example.com").Obj(),
			expect{errs: []string{"spec.sources[1]", "Duplicate"}}},
		{"route group on tcp policy", MakeEgress("x").Port(5432, "tcp").IPs("10.0.0.0/8").Match(smi, "HTTPRouteGroup", "r").Obj(),
			expect{errs: []string{"spec.matches[0].kind", "http ports only"}}},
		{"match with wrong group", MakeEgress("x").Port(80, "http").Hosts("a.example.com").Match("specs.smi-spec.io/v1alpha3", "HTTPRouteGroup", "r").Obj(),
			expect{errs: []string{"spec.matches[0]", "v1alpha3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.check(t, Egress(tt.in))
		})
	}
}
