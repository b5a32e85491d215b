package status

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

// Event is a Kubernetes event worth recording about an object.
type Event struct {
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// maxNote is the longest note the events API accepts.
const maxNote = 1024

// Transition returns the one event a status change is worth, or nil. Only Ready and Stalled are
// looked at, and only their status and reason: a reconcile that rewrites a message (a new pod
// count) or finds what it found last time stays silent, so a resync never adds to the event
// stream, and a change that moves both conditions at once is told once, by the condition that
// says the most (Stalled when it became True, Ready otherwise).
func Transition(before, after []metav1.Condition) *Event {
	r0, r1 := meta.FindStatusCondition(before, conditions.Ready), meta.FindStatusCondition(after, conditions.Ready)
	s0, s1 := meta.FindStatusCondition(before, conditions.Stalled), meta.FindStatusCondition(after, conditions.Stalled)
	if same(r0, r1) && same(s0, s1) {
		return nil
	}
	var ev Event
	switch {
	case s1 != nil && s1.Status == metav1.ConditionTrue:
		ev = Event{Type: corev1.EventTypeWarning, Reason: s1.Reason, Message: s1.Message}
	case r1 == nil:
		return nil
	case r1.Status == metav1.ConditionTrue:
		ev = Event{Type: corev1.EventTypeNormal, Reason: conditions.Ready, Message: r1.Message}
	case r1.Status == metav1.ConditionFalse:
		ev = Event{Type: corev1.EventTypeWarning, Reason: r1.Reason, Message: r1.Message}
	default:
		ev = Event{Type: corev1.EventTypeNormal, Reason: r1.Reason, Message: r1.Message}
	}
	ev.Message = truncate(ev.Message, maxNote)
	return &ev
}

// same reports whether a condition kept its presence, status and reason.
func same(a, b *metav1.Condition) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Status == b.Status && a.Reason == b.Reason
}
