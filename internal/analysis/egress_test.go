package analysis

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// seed003Egress is the policy of seed 003: tcp to the external Redis 10.0.0.6 on 7000-7003.
func seed003Egress() *egressB {
	return makeEgress("shop", "redis").source("shop", "frontend").ips("10.0.0.6/32").
		port(7000, "tcp").port(7001, "tcp").port(7002, "tcp").port(7003, "tcp")
}

func TestAnalyzeEgress(t *testing.T) {
	monitored := map[string]bool{"shop": true, "mesh-b": true}
	sa := []types.NamespacedName{{Namespace: "shop", Name: "frontend"}}
	pods := []corev1.Pod{makePod("shop", "frontend-1", "frontend"), makePod("shop", "frontend-2", "frontend"), makePod("shop", "other", "other")}
	tests := []struct {
		name     string
		in       EgressInput
		want     []string // codes, sorted as AnalyzeEgress sorts them
		contains map[string][]string
	}{{
		name: "clean policy",
		in:   EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa, Pods: pods},
		want: []string{},
	}, {
		name: "seed 003: ClusterIP Service on 7000 in a monitored namespace",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa, Pods: pods,
			Services: []corev1.Service{makeService("mesh-b", "rediscluster").port(7000, 7000).obj()}},
		want: []string{conditions.FindingPortCollision},
		contains: map[string][]string{conditions.FindingPortCollision: {
			"mesh-b/rediscluster", "(ClusterIP, in monitored namespace mesh-b)", "port 7000", "10.0.0.6/32:7000", "shop/frontend-1, shop/frontend-2", "service accounts shop/frontend"}},
	}, {
		name: "headless Service colliding on two ports is one finding",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa, Pods: pods,
			Services: []corev1.Service{makeService("shop", "cache").headless().port(7001, 7001).port(7003, 7003).obj()}},
		want:     []string{conditions.FindingPortCollision},
		contains: map[string][]string{conditions.FindingPortCollision: {"shop/cache (Headless", "port 7001, 7003", "10.0.0.6/32:7001"}},
	}, {
		name: "headless Service collides through its target port",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa,
			Services: []corev1.Service{makeService("shop", "cache").headless().port(80, 7002).obj()}},
		want:     []string{conditions.FindingPortCollision},
		contains: map[string][]string{conditions.FindingPortCollision: {"port 7002", "no pod runs as shop/frontend yet"}},
	}, {
		name: "ExternalName Service collides",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa,
			Services: []corev1.Service{makeService("shop", "alias").externalName("redis.example.com").port(7000, 7000).obj()}},
		want:     []string{conditions.FindingPortCollision},
		contains: map[string][]string{conditions.FindingPortCollision: {"(ExternalName"}},
	}, {
		name: "Service in an unmonitored namespace, a UDP port, another port: no collision",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa,
			Services: []corev1.Service{
				makeService("outside", "r").port(7000, 7000).obj(),
				makeService("shop", "dns").udpPort(7000).obj(),
				makeService("shop", "web").port(80, 8080).obj(),
			}},
		want: []string{},
	}, {
		name: "collision with a destination that bypasses the sidecar is reported as shadowed only",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().excludeIPs("10.0.0.0/24").mesh(), Monitored: monitored, ServiceAccounts: sa,
			Services: []corev1.Service{makeService("shop", "r").port(7000, 7000).obj()}},
		want:     []string{conditions.FindingDestinationShadowed},
		contains: map[string][]string{conditions.FindingDestinationShadowed: {"inside outbound IP range exclusion 10.0.0.0/24", "10.0.0.6/32:7000", "10.0.0.6/32:7003"}},
	}, {
		name: "collision persists when egress is open (the seed's ALLOW_ANY case)",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().egressOpen().mesh(), Monitored: monitored, ServiceAccounts: sa,
			Services: []corev1.Service{makeService("shop", "r").port(7000, 7000).obj()}},
		want: []string{conditions.FindingPortCollision, conditions.FindingEgressMoot},
	}, {
		name: "moot: enableEgress true",
		in:   EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().egressOpen().excludePorts(7000).mesh(), Monitored: monitored, ServiceAccounts: sa},
		want: []string{conditions.FindingEgressMoot},
	}, {
		name: "feature flag off",
		in:   EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().noEgressPolicy().mesh(), Monitored: monitored, ServiceAccounts: sa},
		want: []string{conditions.FindingEgressPolicyDisabled},
	}, {
		name:     "MeshConfig missing stops everything else",
		in:       EgressInput{Egress: seed003Egress().obj(), Mesh: MeshOf(meshRef, nil), Monitored: monitored},
		want:     []string{conditions.FindingMeshConfigNotFound},
		contains: map[string][]string{conditions.FindingMeshConfigNotFound: {"osm-system/osm-mesh-config"}},
	}, {
		name:     "source ServiceAccount missing",
		in:       EgressInput{Egress: seed003Egress().source("shop", "ghost").obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa},
		want:     []string{conditions.FindingSourceServiceAccountNotFound},
		contains: map[string][]string{conditions.FindingSourceServiceAccountNotFound: {"shop/ghost"}},
	}, {
		name: "tcp without ipAddresses and http open every destination",
		in: EgressInput{Egress: makeEgress("shop", "wide").source("shop", "frontend").hosts("example.com").port(5432, "tcp").port(80, "http").obj(),
			Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa},
		want: []string{conditions.FindingPortOpenToAnyDestination, conditions.FindingPortOpenToAnyDestination},
	}, {
		name: "port exclusion shadows a port on every address",
		in: EgressInput{Egress: makeEgress("shop", "pg").source("shop", "frontend").port(5432, "tcp").obj(),
			Mesh: makeMesh().excludePorts(5432).mesh(), Monitored: monitored, ServiceAccounts: sa},
		want:     []string{conditions.FindingDestinationShadowed, conditions.FindingPortOpenToAnyDestination},
		contains: map[string][]string{conditions.FindingDestinationShadowed: {"any address:5432", "port 5432 is in the outbound port exclusion list"}},
	}, {
		name: "partial overlap with an exclusion",
		in: EgressInput{Egress: makeEgress("shop", "net").source("shop", "frontend").ips("10.1.0.0/16").port(443, "https").obj(),
			Mesh: makeMesh().excludeIPs("10.1.2.0/24").mesh(), Monitored: monitored, ServiceAccounts: sa},
		want:     []string{conditions.FindingDestinationShadowed},
		contains: map[string][]string{conditions.FindingDestinationShadowed: {"partly bypasses", "partly inside outbound IP range exclusion 10.1.2.0/24"}},
	}, {
		name:     "outside the inclusion list",
		in:       EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().includeIPs("10.96.0.0/12").mesh(), Monitored: monitored, ServiceAccounts: sa},
		want:     []string{conditions.FindingDestinationShadowed},
		contains: map[string][]string{conditions.FindingDestinationShadowed: {"outside the outbound IP range inclusion list"}},
	}, {
		name: "collision with every current pod excluding the destination by annotation",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa,
			Services: []corev1.Service{makeService("shop", "r").port(7000, 7000).obj()},
			Pods:     []corev1.Pod{makePod("shop", "frontend-x", "frontend", redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.6/32")}},
		want:     []string{conditions.FindingPortCollision, conditions.FindingDestinationShadowed},
		contains: map[string][]string{conditions.FindingPortCollision: {"route these destinations around their sidecar through annotations, but every new pod"}},
	}, {
		name: "pod annotation shadows the destination for that pod only",
		in: EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: monitored, ServiceAccounts: sa,
			Pods: []corev1.Pod{makePod("shop", "frontend-1", "frontend"),
				makePod("shop", "frontend-x", "frontend", redirect.AnnotationOutboundIPRangeExclusionList, "10.0.0.6/32")}},
		want: []string{conditions.FindingDestinationShadowed},
		contains: map[string][]string{conditions.FindingDestinationShadowed: {
			"redirection annotations of pods shop/frontend-x", "inside outbound IP range exclusion 10.0.0.6/32"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AnalyzeEgress(tt.in)
			if g := codes(got); !slices.Equal(g, tt.want) {
				t.Fatalf("codes = %v, want %v\n%v", g, tt.want, got)
			}
			for code, subs := range tt.contains {
				f := find(got, code)
				for _, s := range subs {
					if !strings.Contains(f.Message, s) {
						t.Errorf("%s message lacks %q:\n%s", code, s, f.Message)
					}
				}
			}
			for _, f := range got {
				if len(f.Objects) == 0 || f.Objects[0] != "Egress/"+tt.in.Egress.Namespace+"/"+tt.in.Egress.Name {
					t.Errorf("%s: objects should start with the Egress itself: %v", f.Code, f.Objects)
				}
				if f.Condition != "" && !conditions.Allowed(f.Condition, "False", f.Reason) && f.Reason != conditions.Pending {
					t.Errorf("%s: reason %s is not in the vocabulary for %s=False", f.Code, f.Reason, f.Condition)
				}
			}
		})
	}
}

func TestPortCollisionNamesEverything(t *testing.T) {
	in := EgressInput{Egress: seed003Egress().obj(), Mesh: makeMesh().mesh(), Monitored: map[string]bool{"shop": true},
		ServiceAccounts: []types.NamespacedName{{Namespace: "shop", Name: "frontend"}},
		Services:        []corev1.Service{makeService("shop", "rediscluster").port(7000, 7000).obj()},
		Pods:            []corev1.Pod{makePod("shop", "frontend-1", "frontend")}}
	f := find(AnalyzeEgress(in), conditions.FindingPortCollision)
	if f == nil {
		t.Fatal("no PortCollision")
	}
	want := []string{"Egress/shop/redis", "Service/shop/rediscluster", "ServiceAccount/shop/frontend", "Pod/shop/frontend-1"}
	if !slices.Equal(f.Objects, want) {
		t.Errorf("objects = %v, want %v", f.Objects, want)
	}
	if f.Severity != conditions.SeverityError || f.Condition != conditions.Ready || f.Reason != conditions.Conflict || !f.Stalls {
		t.Errorf("effect = %s %s=%s stalls=%v", f.Severity, f.Condition, f.Reason, f.Stalls)
	}
	api := f.API()
	if api.Code != "PortCollision" || len(api.Message) > 1024 {
		t.Errorf("API form: %+v", api)
	}
}

func TestToAPIOrderAndCap(t *testing.T) {
	var fs []Finding
	for i := 0; i < 40; i++ {
		fs = append(fs, Finding{Code: "W", Severity: conditions.SeverityWarning, Message: strings.Repeat("x", i)})
	}
	fs = append(fs, Finding{Code: "E", Severity: conditions.SeverityError, Message: strings.Repeat("y", 2000)})
	got := ToAPI(fs)
	if len(got) != conditions.MaxFindings {
		t.Fatalf("len = %d", len(got))
	}
	if got[0].Code != "E" || len(got[0].Message) != 1024 || !strings.HasSuffix(got[0].Message, "...") {
		t.Errorf("first = %s (%d bytes)", got[0].Code, len(got[0].Message))
	}
	if ToAPI(nil) != nil {
		t.Error("no findings must give nil")
	}
}
