package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

// kstatusOf reads the MeshConfig back from the API server, untyped, and computes its kstatus.
func (w *world) kstatus() *status.Result {
	w.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(configv1alpha2.GroupVersion.String())
	u.SetKind("MeshConfig")
	must(w.t, env.Client.Get(ctx, w.mc, u))
	res, err := status.Compute(u)
	must(w.t, err)
	return res
}

func (w *world) waitKstatus(want status.Status) {
	w.t.Helper()
	eventually(w.t, 20*time.Second, func() error {
		if got := w.kstatus(); got.Status != want {
			return fmt.Errorf("kstatus %s (%s), want %s", got.Status, got.Message, want)
		}
		return nil
	})
}

func TestMeshConfigKstatus(t *testing.T) {
	w := newWorld(t, "kstatus", nil)
	if got := w.kstatus(); got.Status != status.InProgressStatus {
		t.Fatalf("a fresh MeshConfig must read as in progress, got %s (%s)", got.Status, got.Message)
	}
	pod := w.create(w.injected(w.appPod("web", "a")), initExited(0, "Completed"))
	startManager(t, w.mesh)
	w.waitKstatus(status.CurrentStatus)
	mc := w.meshConfig()
	ready := meta.FindStatusCondition(mc.Status.Conditions, conditions.Ready)
	if ready == nil || ready.Reason != conditions.Succeeded || mc.Status.ObservedGeneration != mc.Generation {
		t.Fatalf("status %+v", mc.Status)
	}
	if mc.Status.Pods != (configv1alpha2.PodSummary{Meshed: 1, InSync: 1}) {
		t.Errorf("pods %+v", mc.Status.Pods)
	}
	w.condition(pod.Name, conditions.PodExclusionsInSync, condTrue, conditions.InSync)
}

// TestInvalidMeshConfigIsStalled uses a CRD without CEL rules (as OSM shipped it), so a value the
// injector cannot render reaches the cluster; the controller must say so.
func TestInvalidMeshConfigIsStalled(t *testing.T) {
	w := newWorld(t, "invalid", func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"999.1.1.1/32"}
	})
	h := startManager(t, w.mesh)
	w.waitKstatus(status.FailedStatus)
	mc := w.meshConfig()
	stalled := meta.FindStatusCondition(mc.Status.Conditions, conditions.Stalled)
	ready := meta.FindStatusCondition(mc.Status.Conditions, conditions.Ready)
	if stalled == nil || stalled.Status != "True" || stalled.Reason != conditions.InvalidSpec {
		t.Fatalf("Stalled = %+v", stalled)
	}
	if ready == nil || ready.Status != "False" || ready.Reason != conditions.InvalidSpec {
		t.Fatalf("Ready = %+v", ready)
	}
	if !strings.Contains(stalled.Message, "spec.traffic.outboundIPRangeExclusionList[0]") || !strings.Contains(stalled.Message, "999.1.1.1/32") {
		t.Errorf("Stalled message %q does not name the field and value", stalled.Message)
	}
	if meta.FindStatusCondition(mc.Status.Conditions, conditions.Reconciling) != nil {
		t.Error("a stalled MeshConfig must not also claim to be reconciling")
	}
	if got := h.events.About(w.mc.Namespace, w.mc.Name); strings.Join(got, ",") != "Warning InvalidSpec" {
		t.Errorf("events %q, want one InvalidSpec warning", got)
	}

	// Fixing the value clears Stalled.
	w.updateMeshConfig(func(s *configv1alpha2.MeshConfigSpec) {
		s.Traffic.OutboundIPRangeExclusionList = []string{"99.1.1.1/32"}
	})
	w.waitKstatus(status.CurrentStatus)
	if meta.FindStatusCondition(w.meshConfig().Status.Conditions, conditions.Stalled) != nil {
		t.Error("Stalled must be removed once the spec is valid")
	}
	if got := h.events.About(w.mc.Namespace, w.mc.Name); strings.Join(got, ",") != "Warning InvalidSpec,Normal Ready" {
		t.Errorf("events %q, want the InvalidSpec warning and one Ready", got)
	}
}
