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
	// meshkeeper_findings sums over every MeshConfig this process judged, earlier tests' included.
	overlapsBefore := findingsOfCode(t, KindMeshConfig, conditions.FindingExclusionOverlapsServiceCIDR, conditions.SeverityError)
	portBefore := findingsOfCode(t, KindMeshConfig, conditions.FindingExcludedPortIsServicePort, conditions.SeverityWarning)
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
	// The metric follows the status, by code: the overlap is counted, the port not yet.
	codes := func(overlaps, port float64) func() error {
		return func() error {
			o := findingsOfCode(t, KindMeshConfig, conditions.FindingExclusionOverlapsServiceCIDR, conditions.SeverityError) - overlapsBefore
			p := findingsOfCode(t, KindMeshConfig, conditions.FindingExcludedPortIsServicePort, conditions.SeverityWarning) - portBefore
			if o != overlaps || p != port {
				return fmt.Errorf("meshkeeper_findings grew by %v for ExclusionOverlapsServiceCIDR and %v for ExcludedPortIsServicePort, want %v and %v", o, p, overlaps, port)
			}
			return nil
		}
	}
	eventually(t, 10*time.Second, codes(1, 0))
	if f := findingOf(got, conditions.FindingExclusionOverlapsServiceCIDR); f.Severity != conditions.SeverityError {
		t.Errorf("ExclusionOverlapsServiceCIDR is %s; the metric above was read at Error", f.Severity)
	}

	must(t, env.Client.Create(ctx, tcpService(w.app, "db", 5432)))
	wait(conditions.FindingExcludedPortIsServicePort)
	if f := findingOf(got, conditions.FindingExcludedPortIsServicePort); !strings.Contains(f.Message, w.app+"/db:5432") {
		t.Errorf("message does not name the Service: %s", f.Message)
	} else if f.Severity != conditions.SeverityWarning {
		t.Errorf("ExcludedPortIsServicePort is %s; the metric is read at Warning", f.Severity)
	}
	eventually(t, 10*time.Second, codes(1, 1))

	// The range no longer overlaps: its code drops back, the port's stays.
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"192.0.2.0/24"}
	})
	eventually(t, 30*time.Second, codes(0, 1))
}
