package analysis

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestFindingCodesMatchEngineWarnings(t *testing.T) {
	pairs := [][2]string{
		{conditions.FindingCaptureDisabled, redirect.WarnCaptureDisabled},
		{conditions.FindingExclusionOverlapsServiceCIDR, redirect.WarnExclusionOverlapsServiceCIDR},
		{conditions.FindingExclusionOverlapsPodCIDR, redirect.WarnExclusionOverlapsPodCIDR},
		{conditions.FindingInclusionListBypass, redirect.WarnInclusionListBypass},
		{conditions.FindingInclusionMissesServiceCIDR, redirect.WarnInclusionMissesServiceCIDR},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("finding code %q differs from engine warning code %q", p[0], p[1])
		}
	}
}

func TestAnalyzeMeshConfig(t *testing.T) {
	cluster, err := redirect.ParseClusterRanges([]string{"10.96.0.0/12"}, []string{"10.244.0.0/24", "10.244.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	services := []corev1.Service{
		makeService("shop", "web").clusterIP("10.96.0.20").port(80, 8080).obj(),
		makeService("shop", "redis").clusterIP("10.100.0.7").port(6379, 6379).obj(),
		makeService("shop", "db").headless().port(5432, 5432).obj(),
		makeService("elsewhere", "x").clusterIP("10.96.0.30").port(6379, 6379).obj(),
	}
	monitored := map[string]bool{"shop": true}
	tests := []struct {
		name     string
		mesh     *meshB
		cluster  redirect.ClusterRanges
		want     []string
		contains map[string][]string
	}{
		{"clean", makeMesh().excludeIPs("192.0.2.0/24"), cluster, []string{}, nil},
		{"0.0.0.0/0", makeMesh().excludeIPs("0.0.0.0/0"), cluster, []string{conditions.FindingCaptureDisabled}, nil},
		{"exclusion over the Service CIDR and a Service", makeMesh().excludeIPs("10.96.0.0/16"), cluster,
			[]string{conditions.FindingExclusionCoversServices, conditions.FindingExclusionOverlapsServiceCIDR},
			map[string][]string{conditions.FindingExclusionCoversServices: {"shop/web (10.96.0.20:80)"}}},
		{"exclusion over the Pod CIDR", makeMesh().excludeIPs("10.244.0.0/16"), cluster,
			[]string{conditions.FindingExclusionOverlapsPodCIDR, conditions.FindingExclusionOverlapsPodCIDR}, nil},
		{"inclusion list missing Services", makeMesh().includeIPs("10.96.0.0/16"), cluster,
			[]string{conditions.FindingInclusionMissesServiceCIDR, conditions.FindingInclusionMissesServices, conditions.FindingInclusionListBypass},
			map[string][]string{conditions.FindingInclusionMissesServices: {"shop/redis (10.100.0.7:6379)"}}},
		{"excluded port is a Service port", makeMesh().excludePorts(5432, 9999), cluster,
			[]string{conditions.FindingExcludedPortIsServicePort},
			map[string][]string{conditions.FindingExcludedPortIsServicePort: {"port 5432", "shop/db:5432"}}},
		{"unknown cluster ranges still catch Services", makeMesh().excludeIPs("10.100.0.0/24"), redirect.ClusterRanges{},
			[]string{conditions.FindingExclusionCoversServices, conditions.FindingClusterRangesUnknown}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AnalyzeMeshConfig(MeshConfigInput{MeshConfig: tt.mesh.obj(), Cluster: tt.cluster, Services: services, Monitored: monitored})
			if g := codes(got); !slices.Equal(g, tt.want) {
				t.Fatalf("codes = %v, want %v\n%v", g, tt.want, got)
			}
			for code, subs := range tt.contains {
				for _, s := range subs {
					if f := find(got, code); !strings.Contains(f.Message, s) {
						t.Errorf("%s lacks %q: %s", code, s, f.Message)
					}
				}
			}
			for _, f := range got {
				if f.Objects[0] != "MeshConfig/osm-system/osm-mesh-config" {
					t.Errorf("objects: %v", f.Objects)
				}
			}
		})
	}
}
