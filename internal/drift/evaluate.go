package drift

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// Step ties a check to the pod condition type it sets.
type Step struct {
	Type  corev1.PodConditionType
	Check Check
	// StopOnFailure leaves the later condition types out when this check fails: without a
	// sidecar there are no rules to judge, and writing "Unknown" on every un-meshed pod would
	// only add noise.
	StopOnFailure bool
}

// Chain is the order pods are judged in. When a step cannot tell yet (Unknown), the later steps
// are reported Unknown with the same reason: their answer depends on it. An init container
// running again after a successful run (Verdict.Rerun) is the exception: the later steps judge
// the rules it applied before and applies again.
var Chain = []Step{
	{Type: conditions.PodSidecarInjected, Check: CheckSidecarInjected, StopOnFailure: true},
	{Type: conditions.PodRedirectionApplied, Check: CheckRedirectionApplied},
	{Type: conditions.PodExclusionsInSync, Check: CheckExclusionsInSync},
}

// OwnedTypes are the pod condition types this package writes, those of Chain; nothing else is
// ever touched.
var OwnedTypes = func() []corev1.PodConditionType {
	out := make([]corev1.PodConditionType, len(Chain))
	for i, s := range Chain {
		out[i] = s.Type
	}
	return out
}()

// Owned reports whether t is one of our condition types.
func Owned(t corev1.PodConditionType) bool { return slices.Contains(OwnedTypes, t) }

// OwnedConditions returns the conditions of ours among conds, in their order: what a status
// patch may send, what a write is remembered by and what the slim pod cache keeps.
func OwnedConditions(conds []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range conds {
		if Owned(c.Type) {
			out = append(out, c)
		}
	}
	return out
}

// HasOwnedCondition reports whether any of conds is ours.
func HasOwnedCondition(conds []corev1.PodCondition) bool {
	return slices.ContainsFunc(conds, func(c corev1.PodCondition) bool { return Owned(c.Type) })
}

// Evaluate runs the chain and returns one condition per type it reached, stamped with in.Now.
func Evaluate(in Input) []corev1.PodCondition {
	out := make([]corev1.PodCondition, 0, len(Chain))
	now := metav1.NewTime(in.Now)
	var blocked *corev1.PodCondition
	for _, step := range Chain {
		if blocked != nil {
			out = append(out, corev1.PodCondition{Type: step.Type, Status: corev1.ConditionUnknown,
				Reason: blocked.Reason, Message: blocked.Message, LastTransitionTime: now})
			continue
		}
		v := step.Check(in)
		c := corev1.PodCondition{Type: step.Type, Status: v.Status,
			Reason: v.Reason, Message: v.Message, LastTransitionTime: now}
		out = append(out, c)
		if v.Failed() && step.StopOnFailure {
			break
		}
		if c.Status == corev1.ConditionUnknown && !v.Rerun {
			blocked = &out[len(out)-1]
		}
	}
	return out
}

// Relevant says whether a pod deserves conditions at all: it carries the sidecar, should carry
// it, or already has our conditions (which must then be kept truthful).
func Relevant(in Input, computed []corev1.PodCondition) bool {
	if len(computed) > 0 && computed[0].Type == conditions.PodSidecarInjected &&
		(computed[0].Status == corev1.ConditionTrue || computed[0].Reason == conditions.SidecarMissing) {
		return true
	}
	return HasOwnedCondition(in.Pod.Status.Conditions)
}

// SetPodConditions merges computed into existing. Only our condition types are touched; the
// kubelet's and anyone else's are copied through unchanged. lastTransitionTime moves only when
// the status changes, and lastProbeTime is never set, so a re-evaluation that reaches the same
// verdict produces changed == false and therefore no API write. existing is not modified.
func SetPodConditions(existing []corev1.PodCondition, computed ...corev1.PodCondition) (updated []corev1.PodCondition, changed bool) {
	updated = slices.Clone(existing)
	for _, c := range computed {
		if !Owned(c.Type) {
			continue
		}
		i := slices.IndexFunc(updated, func(e corev1.PodCondition) bool { return e.Type == c.Type })
		if i < 0 {
			updated = append(updated, c)
			changed = true
			continue
		}
		old := updated[i]
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		c.LastProbeTime = old.LastProbeTime
		updated[i] = c
		changed = true
	}
	return updated, changed
}

// Find returns the condition of type t, or nil.
func Find(conds []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
