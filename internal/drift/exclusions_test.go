package drift

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/injection"
	"github.com/meshkeeper/meshkeeper/internal/podtest"
	"github.com/meshkeeper/meshkeeper/internal/redirect"
)

func TestCheckExclusionsInSync(t *testing.T) {
	seedPod := func(script string) *podtest.PodBuilder {
		return makePod("bookbuyer-7d9f8c-x").Deployment("bookbuyer", "7d9f8c").Sidecar().OSMInit(fixture(t, script)).InitDone()
	}
	mcA := meshConfig(3, ipExclusions("10.0.0.0/8"), outPorts(6379))
	mcB := meshConfig(4, ipExclusions("10.0.0.0/8", "192.168.0.0/16"), outPorts(6379, 7070))
	ours := func(mc *configv1alpha2.MeshConfig, gen string) *podtest.PodBuilder {
		return makePod("bookbuyer-7d9f8c-x").Deployment("bookbuyer", "7d9f8c").Sidecar().OurInit(effective(t, mc, nil), gen).InitDone()
	}
	// A pod whose digest stamp matches but whose rules are unreadable: only the fast path can
	// call it in sync, which proves the rules were not parsed.
	stampedGarbage := ours(mcA, "3").Obj()
	stampedGarbage.Spec.InitContainers[0].Args = []string{"apply", "--ipv4-rules", "this is not iptables"}

	staleStamp := ours(mcB, "4").Annotate(injection.AnnotationExclusionsDigest, "0000000000000000").Obj()

	podIP := meshConfig(5, func(s *configv1alpha2.MeshConfigSpec) { s.Sidecar.LocalProxyMode = configv1alpha2.LocalProxyModePodIP })

	tests := []struct {
		name     string
		pod      *corev1.Pod
		mc       *configv1alpha2.MeshConfig
		reason   string
		failed   bool
		contains []string
		excludes []string
	}{
		{name: "seed 001: no exclusions configured, none rendered", pod: seedPod("seed001-basic.sh").Obj(), mc: meshConfig(7),
			reason: conditions.InSync, contains: []string{"match MeshConfig osm-system/osm-mesh-config and the pod's annotations"}},
		{name: "seed 001: ranges configured after the pod started", pod: seedPod("seed001-basic.sh").Obj(),
			mc: meshConfig(7, ipExclusions("1.1.1.1/32", "2.2.2.2/24")), reason: conditions.Drifted, failed: true,
			contains: []string{
				"outbound IP range 1.1.1.1/32 from MeshConfig osm-system/osm-mesh-config (generation 7) is not in the osm-init rules",
				"outbound IP range 2.2.2.2/24 from MeshConfig osm-system/osm-mesh-config (generation 7) is not in the osm-init rules",
				"restart the pod: kubectl rollout restart deployment/bookbuyer -n bookbuyer"}},
		{name: "seed 001: ranges rendered (with the stray && fixed)", pod: seedPod("seed001-ranges.sh").Obj(),
			mc: meshConfig(7, ipExclusions("2.2.2.2/24", "1.1.1.1/32")), reason: conditions.InSync},
		{name: "seed 001: the published '&& &&' command is reported, not accepted, and not called drift", pod: seedPod("seed001-ranges-double-and.sh").Obj(),
			mc: meshConfig(7, ipExclusions("1.1.1.1/32", "2.2.2.2/24")), reason: conditions.RulesUnreadable,
			contains: []string{"cannot read the rules of init container osm-init", "1:1049: args[1]: syntax error near unexpected token `&&'",
				"whether the pod is in sync is unknown", "kubectl rollout restart deployment/bookbuyer"}},
		{name: "seed 001: ports from MeshConfig and pod annotation", pod: seedPod("seed001-ports.sh").
			Annotate(redirect.AnnotationOutboundPortExclusionList, "8080").Obj(),
			mc: meshConfig(7, outPorts(6379, 7070)), reason: conditions.InSync},
		{name: "seed 001: port removed from MeshConfig, annotation removed", pod: seedPod("seed001-ports.sh").Obj(),
			mc: meshConfig(8, outPorts(6379)), reason: conditions.Drifted, failed: true,
			contains: []string{
				"outbound port 7070 is in the osm-init rules but neither MeshConfig osm-system/osm-mesh-config (generation 8) nor the pod's annotations ask for it",
				"outbound port 8080 is in the osm-init rules"},
			excludes: []string{"6379"}},
		{name: "seed 001: port asked for by the pod annotation only", pod: seedPod("seed001-ports.sh").
			Annotate(redirect.AnnotationOutboundPortExclusionList, "8080,9000").Obj(),
			mc: meshConfig(7, outPorts(6379, 7070)), reason: conditions.Drifted, failed: true,
			contains: []string{"outbound port 9000 from pod annotation openservicemesh.io/outbound-port-exclusion-list is not in the osm-init rules"}},
		{name: "OSM v1.2 heredoc in sync", pod: seedPod("osm-v12-heredoc.sh").Obj(),
			mc: meshConfig(2, ipExclusions("10.0.0.0/8"), outPorts(7070, 6379), inPorts(9090)), reason: conditions.InSync},
		{name: "OSM v1.2 heredoc after an inbound port was added", pod: seedPod("osm-v12-heredoc.sh").Obj(),
			mc: meshConfig(3, ipExclusions("10.0.0.0/8"), outPorts(7070, 6379), inPorts(9090, 9091)), reason: conditions.Drifted, failed: true,
			contains: []string{"inbound port 9091 from MeshConfig osm-system/osm-mesh-config (generation 3) is not in the osm-init rules"}},
		{name: "our pod, digest matches: in sync without parsing", pod: stampedGarbage, mc: mcA, reason: conditions.InSync},
		{name: "our pod rendered from an older generation", pod: ours(mcA, "3").Obj(), mc: mcB, reason: conditions.Drifted, failed: true,
			contains: []string{"outbound IP range 192.168.0.0/16 from MeshConfig osm-system/osm-mesh-config (generation 4) is not in the meshkeeper-init rules",
				"outbound port 7070 from MeshConfig", "kubectl rollout restart deployment/bookbuyer -n bookbuyer"}},
		{name: "our pod after a value was removed names the generation it was rendered from", pod: ours(mcB, "4").Obj(), mc: mcA,
			reason: conditions.Drifted, failed: true, contains: []string{"192.168.0.0/16 is in the meshkeeper-init rules", "(the pod was rendered from generation 4)"}},
		{name: "stale digest but same meaning", pod: staleStamp, mc: mcB, reason: conditions.InSync},
		{name: "local proxy mode changed to PodIP", pod: ours(meshConfig(4), "4").Obj(), mc: podIP, reason: conditions.Drifted, failed: true,
			contains: []string{"local proxy mode PodIP from MeshConfig osm-system/osm-mesh-config (generation 5) is not in the meshkeeper-init rules"}},
		{name: "invalid MeshConfig value that slipped past admission", pod: seedPod("seed001-basic.sh").Obj(),
			mc: meshConfig(9, ipExclusions("999.1.1.1/32")), reason: conditions.InvalidSpec,
			contains: []string{"spec.traffic.outboundIPRangeExclusionList[0]", "999.1.1.1/32"}},
		{name: "invalid pod annotation", pod: seedPod("seed001-basic.sh").Annotate(redirect.AnnotationOutboundPortExclusionList, "70000").Obj(),
			mc: meshConfig(9), reason: conditions.InvalidSpec, contains: []string{"70000"}},
		{name: "no init container", pod: makePod("p").Sidecar().Obj(), mc: meshConfig(1), reason: conditions.RulesUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckExclusionsInSync(gather(tt.pod, tt.mc))
			documented(t, conditions.PodExclusionsInSync, v)
			reason, msg, failed := v.Reason, v.Message, v.Failed()
			if reason != tt.reason || failed != tt.failed {
				t.Fatalf("got (%s, failed=%v) %q, want (%s, failed=%v)", reason, failed, msg, tt.reason, tt.failed)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("message %q\ndoes not contain %q", msg, c)
				}
			}
			for _, c := range tt.excludes {
				if strings.Contains(msg, c) {
					t.Errorf("message %q\nmentions %q", msg, c)
				}
			}
		})
	}
}

// TestInSyncMessageIgnoresGeneration guards the zero-write property: a MeshConfig change that
// does not touch exclusions must leave the condition text of in-sync pods unchanged.
func TestInSyncMessageIgnoresGeneration(t *testing.T) {
	pod := makePod("p").Sidecar().OSMInit(fixture(t, "seed001-basic.sh")).InitDone().Obj()
	m1 := CheckExclusionsInSync(gather(pod, meshConfig(1))).Message
	m2 := CheckExclusionsInSync(gather(pod, meshConfig(2, func(s *configv1alpha2.MeshConfigSpec) { s.Sidecar.LogLevel = "debug" }))).Message
	if m1 != m2 {
		t.Fatalf("message changed with the generation: %q vs %q", m1, m2)
	}
}

// Unreadable rules say nothing about drift: the pod condition is Unknown, the pod is not counted
// as drifted on the MeshConfig, and no Drifted event is emitted for it.
func TestUnreadableRulesAreUnknown(t *testing.T) {
	pod := makePod("bookbuyer-7d9f8c-x").Deployment("bookbuyer", "7d9f8c").Sidecar().OSMInit(fixture(t, "seed001-ranges-double-and.sh")).InitDone().Obj()
	conds := Evaluate(gather(pod, meshConfig(7, ipExclusions("1.1.1.1/32", "2.2.2.2/24"))))
	c := Find(conds, conditions.PodExclusionsInSync)
	if c == nil || c.Status != corev1.ConditionUnknown || c.Reason != conditions.RulesUnreadable {
		t.Fatalf("ExclusionsInSync = %+v, want Unknown/RulesUnreadable", c)
	}
	var s Summary
	s.Add(pod, conds)
	if s.Counts != (Counts{Meshed: 1, Unreadable: 1}) || len(s.DriftedPods) != 0 {
		t.Errorf("summary %+v: an unreadable pod is meshed, counted unreadable, neither in sync nor drifted", s)
	}
	if ev := Transitions(nil, conds); len(ev) != 0 {
		t.Errorf("events %+v, want none", ev)
	}
}
