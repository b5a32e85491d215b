package drift

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// PodVerdict is the single word a meshed pod is counted under, in the MeshConfig's status and in
// the metrics. A pod's three conditions can disagree in several ways at once (an init container
// that failed on rules that also drifted); counting it once, under the problem to fix first,
// keeps the counts adding up to the meshed pods. The values are metric label values, hence
// snake_case.
type PodVerdict string

const (
	// VerdictSidecarMissing: the pod should carry the sidecar and does not, so none of its
	// traffic goes through the mesh; only a new pod fixes it.
	VerdictSidecarMissing PodVerdict = "sidecar_missing"
	// VerdictInitFailed: the sidecar is there but nothing redirects traffic to it: the init
	// container failed, or is missing.
	VerdictInitFailed PodVerdict = "init_failed"
	// VerdictDrifted: the pod runs exclusions that differ from the desired ones.
	VerdictDrifted PodVerdict = "drifted"
	// VerdictUnreadable: the pod's rules cannot be parsed, so whether it drifted is unknown.
	VerdictUnreadable PodVerdict = "unreadable"
	// VerdictInSync: the pod runs what it should.
	VerdictInSync PodVerdict = "in_sync"
	// VerdictOther: not judged yet (init container pending, no desired state, invalid
	// settings).
	VerdictOther PodVerdict = "other"
)

// PodVerdicts lists every verdict, in the order they are checked, so that each can be reported,
// at zero when no pod has it, rather than left out.
var PodVerdicts = []PodVerdict{VerdictSidecarMissing, VerdictInitFailed, VerdictDrifted, VerdictUnreadable, VerdictInSync, VerdictOther}

// PodVerdictOf reads the verdict from a pod's conditions (those Evaluate computed, or those
// written on the pod). meshed is false for a pod that neither carries nor should carry the
// sidecar, or has no SidecarInjected condition: such a pod is not counted at all.
func PodVerdictOf(conds []corev1.PodCondition) (verdict PodVerdict, meshed bool) {
	sidecar := Find(conds, conditions.PodSidecarInjected)
	switch {
	case sidecar == nil:
		return "", false
	case sidecar.Status == corev1.ConditionFalse && sidecar.Reason == conditions.SidecarMissing:
		return VerdictSidecarMissing, true
	case sidecar.Status != corev1.ConditionTrue:
		return "", false
	}
	if redir := Find(conds, conditions.PodRedirectionApplied); redir != nil && redir.Status == corev1.ConditionFalse {
		return VerdictInitFailed, true
	}
	excl := Find(conds, conditions.PodExclusionsInSync)
	switch {
	case excl == nil:
	case excl.Status == corev1.ConditionTrue:
		return VerdictInSync, true
	case excl.Status == corev1.ConditionFalse && excl.Reason == conditions.Drifted:
		return VerdictDrifted, true
	case excl.Status == corev1.ConditionUnknown && excl.Reason == conditions.RulesUnreadable:
		return VerdictUnreadable, true
	}
	return VerdictOther, true
}
