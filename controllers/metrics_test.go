package controllers

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/drift"
)

// gathered reads the series of name whose labels are exactly want from the registry the manager
// serves; ok is false when there is none. Reading through the registry, not the vectors, creates
// no series.
func gathered(t testing.TB, name string, want map[string]string) (value float64, ok bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	must(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if maps.Equal(have, want) {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// verdictSeries checks the series of name for every verdict: labels plus the verdict, with the
// value wanted (0 for a verdict not listed).
func verdictSeries(t testing.TB, name string, labels map[string]string, want map[drift.PodVerdict]float64) error {
	t.Helper()
	for _, v := range drift.PodVerdicts {
		l := maps.Clone(labels)
		l["verdict"] = string(v)
		got, ok := gathered(t, name, l)
		if !ok || got != want[v] {
			return fmt.Errorf("%s %v = %v (present %v), want %v", name, l, got, ok, want[v])
		}
	}
	return nil
}

// TestPodVerdictMetrics: each way a meshed pod can be wrong has its own verdict in the metrics,
// per namespace and for the MeshConfig, and they add up to the meshed pods.
func TestPodVerdictMetrics(t *testing.T) {
	w := newWorld(t, "verdicts", nil)
	startManager(t, w.mesh)
	inSync := w.create(w.injected(w.appPod("web", "a")), initExited(0, "Completed"))
	initFailed := w.create(w.injected(w.appPod("web", "b")), initExited(1, "Error"))
	// Created in an injecting namespace with no injector running: the sidecar is missing.
	bare := w.create(w.appPod("web", "c"))
	// OSM's published '&& &&' script: the rules cannot be parsed.
	unreadable := w.create(w.osmPod("legacy", "d", fixture(t, "seed001-ranges-double-and.sh")), initExited(0, "Completed"))
	pending := w.create(w.injected(w.appPod("web", "e")))
	// The pods' conditions first, so a wrong count below is the counting's fault.
	w.condition(inSync.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
	w.condition(initFailed.Name, conditions.PodRedirectionApplied, condFalse, conditions.InitContainerFailed)
	w.condition(bare.Name, conditions.PodSidecarInjected, condFalse, conditions.SidecarMissing)
	w.condition(unreadable.Name, conditions.PodExclusionsInSync, condUnknown, conditions.RulesUnreadable)
	w.condition(pending.Name, conditions.PodExclusionsInSync, condUnknown, conditions.InitContainerPending)

	want := map[drift.PodVerdict]float64{drift.VerdictInSync: 1, drift.VerdictInitFailed: 1, drift.VerdictSidecarMissing: 1,
		drift.VerdictUnreadable: 1, drift.VerdictOther: 1}
	eventually(t, 20*time.Second, func() error {
		if err := verdictSeries(t, "meshkeeper_namespace_pods", map[string]string{"mesh": w.mesh, "namespace": w.app}, want); err != nil {
			return err
		}
		return verdictSeries(t, "meshkeeper_mesh_pods", map[string]string{"namespace": w.mc.Namespace, "name": w.mc.Name}, want)
	})
	if v, ok := gathered(t, "meshkeeper_namespace_pods", map[string]string{"mesh": w.mesh, "namespace": w.app, "verdict": "failed"}); ok {
		t.Errorf("the verdict failed is still exported (%v)", v)
	}
	mc := w.meshConfig()
	if mc.Status.Pods.Meshed != 5 || mc.Status.Pods.InSync != 1 || mc.Status.Pods.Failed != 2 {
		t.Errorf("status.pods %+v: want 5 meshed, 1 in sync, 2 failed (the missing sidecar and the failed init container)", mc.Status.Pods)
	}

	// The init container succeeds on its retry: the pod moves from init_failed to in_sync.
	retried := w.pod(initFailed.Name)
	initExited(0, "Completed")(retried)
	must(t, env.Client.Status().Update(ctx, retried))
	want[drift.VerdictInitFailed], want[drift.VerdictInSync] = 0, 2
	eventually(t, 20*time.Second, func() error {
		return verdictSeries(t, "meshkeeper_namespace_pods", map[string]string{"mesh": w.mesh, "namespace": w.app}, want)
	})
}

// TestFindingTotals: meshkeeper_findings sums the objects' findings by kind, code and severity;
// a new verdict on an object replaces its share, and a code no object reports any more reads 0.
func TestFindingTotals(t *testing.T) {
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_findings"}, []string{"kind", "code", "severity"})
	totals := &findingTotals{gauge: gauge}
	finding := func(code string, sev conditions.Severity) conditions.Finding {
		return conditions.Finding{Code: code, Severity: sev, Message: "m"}
	}
	collision, open := finding(conditions.FindingPortCollision, conditions.SeverityError), finding(conditions.FindingPortOpenToAnyDestination, conditions.SeverityWarning)
	a := objectRef{KindEgress, types.NamespacedName{Namespace: "shop", Name: "a"}}
	b := objectRef{KindEgress, types.NamespacedName{Namespace: "pay", Name: "b"}}
	mc := objectRef{KindMeshConfig, types.NamespacedName{Namespace: "osm-system", Name: "osm-mesh-config"}}
	type series map[string]float64 // "kind/code/severity": value
	for _, step := range []struct {
		name     string
		obj      objectRef
		findings []conditions.Finding
		want     series
	}{
		{"two collisions on a", a, []conditions.Finding{collision, collision, open},
			series{"Egress/PortCollision/Error": 2, "Egress/PortOpenToAnyDestination/Warning": 1}},
		{"one on b adds up", b, []conditions.Finding{collision},
			series{"Egress/PortCollision/Error": 3, "Egress/PortOpenToAnyDestination/Warning": 1}},
		{"the same code on another kind is another series", mc, []conditions.Finding{finding(conditions.FindingExclusionOverlapsServiceCIDR, conditions.SeverityError), finding(conditions.FindingPortCollision, conditions.SeverityError)},
			series{"Egress/PortCollision/Error": 3, "Egress/PortOpenToAnyDestination/Warning": 1, "MeshConfig/ExclusionOverlapsServiceCIDR/Error": 1, "MeshConfig/PortCollision/Error": 1}},
		{"a fixed: its share is replaced, not added", a, []conditions.Finding{open},
			series{"Egress/PortCollision/Error": 1, "Egress/PortOpenToAnyDestination/Warning": 1, "MeshConfig/ExclusionOverlapsServiceCIDR/Error": 1, "MeshConfig/PortCollision/Error": 1}},
		{"b deleted: the code reads 0", b, nil,
			series{"Egress/PortCollision/Error": 0, "Egress/PortOpenToAnyDestination/Warning": 1, "MeshConfig/ExclusionOverlapsServiceCIDR/Error": 1, "MeshConfig/PortCollision/Error": 1}},
		{"a judged again the same: nothing moves", a, []conditions.Finding{open},
			series{"Egress/PortCollision/Error": 0, "Egress/PortOpenToAnyDestination/Warning": 1, "MeshConfig/ExclusionOverlapsServiceCIDR/Error": 1, "MeshConfig/PortCollision/Error": 1}},
	} {
		totals.set(step.obj, tallyFindings(step.obj.kind, step.findings))
		ch := make(chan prometheus.Metric, 16)
		gauge.Collect(ch)
		close(ch)
		got := series{}
		for m := range ch {
			var d dto.Metric
			must(t, m.Write(&d))
			var l []string
			for _, name := range []string{"kind", "code", "severity"} {
				for _, lp := range d.GetLabel() {
					if lp.GetName() == name {
						l = append(l, lp.GetValue())
					}
				}
			}
			got[strings.Join(l, "/")] = d.GetGauge().GetValue()
		}
		if !maps.Equal(got, step.want) {
			keys := slices.Sorted(maps.Keys(got))
			t.Errorf("%s: series %v (%v), want %v", step.name, got, keys, step.want)
		}
	}
}

// findingsOfCode reads meshkeeper_findings for kind, code and severity; absent reads 0.
func findingsOfCode(t testing.TB, kind, code string, sev conditions.Severity) float64 {
	t.Helper()
	v, _ := gathered(t, "meshkeeper_findings", map[string]string{"kind": kind, "code": code, "severity": string(sev)})
	return v
}
