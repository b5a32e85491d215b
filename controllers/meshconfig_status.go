package controllers

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	configv1alpha2 "github.com/meshkeeper/meshkeeper/api/config/v1alpha2"
	"github.com/meshkeeper/meshkeeper/internal/drift"
	"github.com/meshkeeper/meshkeeper/internal/status"
	"github.com/meshkeeper/meshkeeper/internal/text"
)

// MeshConfigVerdict is what one reconcile of a MeshConfig found.
type MeshConfigVerdict struct {
	// SpecErrs are the redirection engine's objections to the spec.
	SpecErrs field.ErrorList
	// Invalid are the validating webhook's other objections (durations, enums, list limits,
	// cross-field rules) to a spec whose redirection settings render: pods are still judged, but
	// the MeshConfig is not Ready, since admission would have refused it.
	Invalid field.ErrorList
	// Err stopped the reconcile (API errors); it is retried.
	Err error
	// Summary counts the pods of the mesh.
	Summary drift.Summary
}

// SetMeshConfigStatus writes the status of mc through internal/status, like every other kind:
// Ready says whether the spec is valid and served, never whether pods have restarted since, so
// kstatus reads a valid MeshConfig as Current even while pods still run older rules. Those are
// reported by PodsInSync, which kstatus ignores. observedGeneration moves only when this
// generation reached a verdict, and findings always belong to that generation, as on Egress and
// IngressBackend: an invalid spec has none, rather than keeping the previous generation's.
func SetMeshConfigStatus(mc *configv1alpha2.MeshConfig, v MeshConfigVerdict, now time.Time) {
	st := &mc.Status
	o := status.Outcome{Generation: mc.Generation, Err: v.Err}
	podsInSync := func(s metav1.ConditionStatus, reason, msg string) {
		o.Info = []status.Condition{{Type: conditions.PodsInSync, Status: s, Reason: reason, Message: msg}}
	}
	switch {
	case len(v.SpecErrs) > 0:
		msg := "the redirection settings cannot be rendered, so every new meshed pod would fail to start: " +
			v.SpecErrs.ToAggregate().Error()
		o.Problems = []status.Problem{{Type: conditions.Ready, Reason: conditions.InvalidSpec, Message: msg, Stalls: true}}
		podsInSync(metav1.ConditionUnknown, conditions.InvalidSpec, "pods are not judged while the spec is invalid: the exclusions they should have are unknown")
		st.Findings = nil
	case v.Err != nil:
	default:
		s := v.Summary
		st.Pods = configv1alpha2.PodSummary{Meshed: s.Meshed, InSync: s.InSync, Drifted: s.Drifted, Failed: s.Failed()}
		st.DriftedPods = s.DriftedPods
		o.Summary = "spec is valid and served; " + summaryMessage(s)
		podsInSync(s.PodsInSync(mc.Generation))
		if len(v.Invalid) > 0 {
			o.Problems = []status.Problem{{Type: conditions.Ready, Reason: conditions.InvalidSpec, Stalls: true,
				Message: "the spec holds values admission refuses (it was stored past the validating webhook); the redirection settings render, so pods are still judged: " +
					v.Invalid.ToAggregate().Error()}}
		}
	}
	if status.Apply(&st.Conditions, o, now) {
		st.ObservedGeneration = mc.Generation
	}
}

// summaryMessage is Ready's account of the pods: counts only, since the pods' verdict and what to
// do about it is PodsInSync's message.
func summaryMessage(s drift.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d meshed pods, %d in sync", s.Meshed, s.InSync)
	if s.Drifted > 0 {
		fmt.Fprintf(&b, ", %d drifted", s.Drifted)
	}
	if s.Failed() > 0 {
		fmt.Fprintf(&b, ", %d failed", s.Failed())
	}
	if s.Drifted > 0 || s.Failed() > 0 {
		fmt.Fprintf(&b, " (see the %s condition)", conditions.PodsInSync)
	}
	return b.String()
}

// meshConfigConditions reads the conditions status.Patcher compares for transition events.
func meshConfigConditions(mc *configv1alpha2.MeshConfig) []metav1.Condition {
	return mc.Status.Conditions
}

func truncate(s string, n int) string { return text.Truncate(s, n) }
