package status

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	"github.com/meshkeeper/meshkeeper/internal/text"
)

// Problem is one reason a positive condition is not True.
type Problem struct {
	// Type is the positive condition type it affects: one of Outcome.Types, or Ready.
	Type    string
	Reason  string
	Message string
	// Stalls: only a change by a person resolves it (kstatus then reads the object as Failed).
	Stalls bool
	// Benign: Type is set False but the object is still healthy (Ready stays True).
	Benign bool
	// Pending: nothing can be decided yet; Type and Ready are Unknown and Reconciling is True.
	Pending bool
}

// Outcome is what one reconcile of one object found.
type Outcome struct {
	// Generation is metadata.generation of the object reconciled.
	Generation int64
	// Types are the positive condition types the kind carries besides Ready, in the order they
	// are judged (Accepted before ResolvedRefs): the first failing one names Ready's reason.
	Types []string
	// Problems found; empty means healthy.
	Problems []Problem
	// Err is an error outside the spec (API errors); the reconcile is retried.
	Err error
	// Summary is Ready's message when healthy.
	Summary string
	// Info are conditions written exactly as given. They report on things outside the object's
	// own health (a MeshConfig's PodsInSync), so they never touch Ready, Reconciling or Stalled,
	// and on Err they keep their last value like every other condition.
	Info []Condition
}

// Condition is one informational condition of Outcome.Info.
type Condition struct {
	Type    string
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// successReason is the True reason of each positive type.
var successReason = map[string]string{
	conditions.Ready:        conditions.Succeeded,
	conditions.Accepted:     conditions.AcceptedReason,
	conditions.ResolvedRefs: conditions.ResolvedRefsReason,
}

// Apply writes the conditions of o onto conds, stamping now on those whose status changes, and
// reports whether the generation reached a verdict (the caller then sets observedGeneration).
// Reconciling and Stalled are present only while True, as the MeshConfig controller does. On Err
// the other conditions keep their last verdict, observedGeneration stays behind, and kstatus
// reads the object as in progress.
func Apply(conds *[]metav1.Condition, o Outcome, now time.Time) (observed bool) {
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: s, Reason: reason, Message: truncate(msg, 32768),
			ObservedGeneration: o.Generation, LastTransitionTime: metav1.NewTime(now)})
	}
	if o.Err != nil {
		set(conditions.Ready, metav1.ConditionFalse, conditions.ReconcileFailed, o.Err.Error())
		set(conditions.Reconciling, metav1.ConditionTrue, conditions.ProgressingWithRetry, "retrying after: "+o.Err.Error())
		meta.RemoveStatusCondition(conds, conditions.Stalled)
		return false
	}

	for _, c := range o.Info {
		set(c.Type, c.Status, c.Reason, c.Message)
	}

	var pending, failing, stalling *Problem
	for _, t := range append(append([]string{}, o.Types...), conditions.Ready) {
		var first *Problem
		for i := range o.Problems {
			p := &o.Problems[i]
			if p.Type != t {
				continue
			}
			if first == nil {
				first = p
			}
			switch {
			case p.Pending && pending == nil:
				pending = p
			case !p.Pending && !p.Benign && failing == nil:
				failing = p
			}
			if p.Stalls && !p.Pending && stalling == nil {
				stalling = p
			}
		}
		if t == conditions.Ready {
			break
		}
		switch {
		case first == nil:
			set(t, metav1.ConditionTrue, successReason[t], "")
		case first.Pending:
			set(t, metav1.ConditionUnknown, conditions.Pending, first.Message)
		default:
			set(t, metav1.ConditionFalse, first.Reason, first.Message)
		}
	}
	more := func(p *Problem) string {
		n := 0
		for i := range o.Problems {
			if !o.Problems[i].Benign && &o.Problems[i] != p {
				n++
			}
		}
		if n == 0 {
			return p.Message
		}
		return fmt.Sprintf("%s (and %d more problems, see status.findings)", p.Message, n)
	}
	switch {
	case pending != nil:
		set(conditions.Ready, metav1.ConditionUnknown, conditions.Progressing, pending.Message)
		set(conditions.Reconciling, metav1.ConditionTrue, conditions.Progressing, pending.Message)
		meta.RemoveStatusCondition(conds, conditions.Stalled)
	case failing != nil:
		set(conditions.Ready, metav1.ConditionFalse, failing.Reason, more(failing))
		meta.RemoveStatusCondition(conds, conditions.Reconciling)
		if stalling != nil {
			set(conditions.Stalled, metav1.ConditionTrue, stalling.Reason, stalling.Message)
		} else {
			meta.RemoveStatusCondition(conds, conditions.Stalled)
		}
	default:
		msg := o.Summary
		for _, p := range o.Problems {
			if p.Benign {
				msg += "; " + p.Message
			}
		}
		set(conditions.Ready, metav1.ConditionTrue, conditions.Succeeded, msg)
		meta.RemoveStatusCondition(conds, conditions.Reconciling)
		meta.RemoveStatusCondition(conds, conditions.Stalled)
	}
	return true
}

func truncate(s string, n int) string { return text.Truncate(s, n) }
