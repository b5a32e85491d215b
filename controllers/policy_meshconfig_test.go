package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

// TestMeshConfigFindings: the MeshConfig controller reports settings that take mesh traffic
// away from the sidecar, against the mesh's Services and the cluster CIDRs it was given, and
// refreshes them when a Service appears.
func TestMeshConfigFindings(t *testing.T) {
	w := newWorld(t, "mcfind", func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundPortExclusionList = []int32{5432}
		s.Traffic.OutboundIPRangeExclusionList = []string{"10.96.0.0/16"}
	})
	cluster, err := redirect.ParseClusterRanges([]string{"10.96.0.0/12"}, []string{"10.244.0.0/16"})
	must(t, err)
	startManager(t, "mcfind", func(o *DriftOptions) { o.ClusterRanges = cluster })

	var got []conditions.Finding
	wait := func(code string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			got = w.meshConfig().Status.Findings
			if findingOf(got, code) == nil {
				return fmt.Errorf("no %s in %v", code, got)
			}
			return nil
		})
	}
	start := time.Now()
	wait(conditions.FindingExclusionOverlapsServiceCIDR)
	t.Logf("findings after %s", time.Since(start).Round(time.Millisecond))
	if f := findingOf(got, conditions.FindingExcludedPortIsServicePort); f != nil {
		t.Fatalf("no Service uses 5432 yet, got %v", f)
	}

	must(t, env.Client.Create(ctx, tcpService(w.app, "db", 5432)))
	wait(conditions.FindingExcludedPortIsServicePort)
	if f := findingOf(got, conditions.FindingExcludedPortIsServicePort); !strings.Contains(f.Message, w.app+"/db:5432") {
		t.Errorf("message does not name the Service: %s", f.Message)
	}
}
