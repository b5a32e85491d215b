package drift

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// Event is a Kubernetes event worth emitting for a pod.
type Event struct {
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// warnOn are the verdicts that deserve a Warning event when a pod first reaches them.
var warnOn = map[corev1.PodConditionType]string{
	conditions.PodExclusionsInSync:   conditions.Drifted,
	conditions.PodRedirectionApplied: conditions.InitContainerFailed,
	conditions.PodSidecarInjected:    conditions.SidecarMissing,
}

// Transitions lists the events for a change from before to after. Only transitions produce
// events, never steady states, so a periodic re-evaluation stays silent.
func Transitions(before, after []corev1.PodCondition) []Event {
	var out []Event
	for _, t := range OwnedTypes {
		now := Find(after, t)
		if now == nil {
			continue
		}
		was := Find(before, t)
		if was != nil && was.Status == now.Status && was.Reason == now.Reason {
			continue
		}
		switch {
		case now.Status == corev1.ConditionFalse && now.Reason == warnOn[t]:
			out = append(out, Event{Type: corev1.EventTypeWarning, Reason: now.Reason, Message: now.Message})
		case t == conditions.PodExclusionsInSync && now.Status == corev1.ConditionTrue &&
			was != nil && was.Status == corev1.ConditionFalse:
			out = append(out, Event{Type: corev1.EventTypeNormal, Reason: conditions.InSync, Message: now.Message})
		}
	}
	return out
}
