package controllers

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
)

// setMeshConfigStatus writes Ready, Reconciling and Stalled the way kstatus reads them:
// observedGeneration moves only when this generation reached a verdict (ready or stalled), so a
// transient error leaves the object "in progress" rather than claiming a result. Reconciling and
// Stalled are present only while true.
func setMeshConfigStatus(mc *configv1alpha2.MeshConfig, o meshConfigOutcome, now time.Time) {
	st := &mc.Status
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason,
			Message: truncate(msg, 32768), ObservedGeneration: mc.Generation, LastTransitionTime: metav1.NewTime(now)})
	}
	switch {
	case len(o.specErrs) > 0:
		msg := "the redirection settings cannot be rendered, so every new meshed pod would fail to start: " +
			o.specErrs.ToAggregate().Error()
		set(conditions.Ready, metav1.ConditionFalse, conditions.InvalidSpec, msg)
		set(conditions.Stalled, metav1.ConditionTrue, conditions.InvalidSpec, msg)
		meta.RemoveStatusCondition(&st.Conditions, conditions.Reconciling)
		st.ObservedGeneration = mc.Generation
	case o.err != nil:
		set(conditions.Ready, metav1.ConditionFalse, conditions.ReconcileFailed, o.err.Error())
		set(conditions.Reconciling, metav1.ConditionTrue, conditions.ProgressingWithRetry, "retrying after: "+o.err.Error())
		meta.RemoveStatusCondition(&st.Conditions, conditions.Stalled)
	default:
		meta.RemoveStatusCondition(&st.Conditions, conditions.Reconciling)
		meta.RemoveStatusCondition(&st.Conditions, conditions.Stalled)
		st.ObservedGeneration = mc.Generation
		if !o.active {
			set(conditions.Ready, metav1.ConditionTrue, conditions.Succeeded, "spec is valid; this MeshConfig is not the one the operator serves, so no pods are judged against it")
			st.Pods, st.DriftedPods = configv1alpha2.PodSummary{}, nil
			return
		}
		s := o.summary
		st.Pods = configv1alpha2.PodSummary{Meshed: s.Meshed, InSync: s.InSync, Drifted: s.Drifted, Failed: s.Failed}
		st.DriftedPods = s.DriftedPods
		if s.Drifted > 0 {
			set(conditions.Ready, metav1.ConditionFalse, conditions.Drifted, fmt.Sprintf(
				"%d of %d meshed pods run exclusions that differ from this MeshConfig (generation %d); each drifted pod's %s condition names the values and the restart command (status.driftedPods lists up to %d)",
				s.Drifted, s.Meshed, mc.Generation, conditions.PodExclusionsInSync, configv1alpha2.MaxDriftedPods))
			return
		}
		set(conditions.Ready, metav1.ConditionTrue, conditions.Succeeded, summaryMessage(s.Meshed, s.InSync, s.Failed))
	}
}

func summaryMessage(meshed, inSync, failed int32) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d meshed pods, %d in sync", meshed, inSync)
	if failed > 0 {
		fmt.Fprintf(&b, ", %d failed (see their %s and %s conditions)", failed, conditions.PodSidecarInjected, conditions.PodRedirectionApplied)
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
