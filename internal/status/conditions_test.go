package status

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshkeeper/meshkeeper/api/conditions"
)

var types = []string{conditions.Accepted, conditions.ResolvedRefs}

func TestApply(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		o        Outcome
		observed bool
		want     map[string]string // type -> "Status/Reason"; "" means absent
	}{{
		name: "healthy", o: Outcome{Generation: 2, Types: types, Summary: "ok"}, observed: true,
		want: map[string]string{"Ready": "True/Succeeded", "Accepted": "True/Accepted", "ResolvedRefs": "True/ResolvedRefs", "Stalled": "", "Reconciling": ""},
	}, {
		name: "missing reference: not stalled, may heal",
		o: Outcome{Generation: 2, Types: types, Problems: []Problem{
			{Type: conditions.ResolvedRefs, Reason: conditions.RefNotFound, Message: "sa missing"}}}, observed: true,
		want: map[string]string{"Ready": "False/RefNotFound", "Accepted": "True/Accepted", "ResolvedRefs": "False/RefNotFound", "Stalled": "", "Reconciling": ""},
	}, {
		name: "Accepted problem names Ready before a later ResolvedRefs one; the stalling one names Stalled",
		o: Outcome{Generation: 2, Types: types, Problems: []Problem{
			{Type: conditions.ResolvedRefs, Reason: conditions.TargetPortMismatch, Stalls: true},
			{Type: conditions.Accepted, Reason: conditions.Conflict}}}, observed: true,
		want: map[string]string{"Ready": "False/Conflict", "Accepted": "False/Conflict", "ResolvedRefs": "False/TargetPortMismatch", "Stalled": "True/TargetPortMismatch"},
	}, {
		name: "Ready-level problem", o: Outcome{Generation: 2, Types: types, Problems: []Problem{
			{Type: conditions.Ready, Reason: conditions.Conflict, Stalls: true}}}, observed: true,
		want: map[string]string{"Ready": "False/Conflict", "Accepted": "True/Accepted", "Stalled": "True/Conflict"},
	}, {
		name: "benign problem keeps Ready True", o: Outcome{Generation: 2, Types: types, Problems: []Problem{
			{Type: conditions.Accepted, Reason: conditions.Ignored, Benign: true, Message: "moot"}}}, observed: true,
		want: map[string]string{"Ready": "True/Succeeded", "Accepted": "False/Ignored", "Stalled": ""},
	}, {
		name: "pending", o: Outcome{Generation: 2, Types: types, Problems: []Problem{
			{Type: conditions.Accepted, Reason: conditions.Pending, Pending: true, Message: "no MeshConfig"}}}, observed: true,
		want: map[string]string{"Ready": "Unknown/Progressing", "Accepted": "Unknown/Pending", "ResolvedRefs": "True/ResolvedRefs", "Reconciling": "True/Progressing", "Stalled": ""},
	}, {
		name: "error keeps the last verdict", o: Outcome{Generation: 3, Types: types, Err: errors.New("etcd down")}, observed: false,
		want: map[string]string{"Ready": "False/ReconcileFailed", "Reconciling": "True/ProgressingWithRetry", "Accepted": "True/Accepted", "Stalled": ""},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start from a stalled, healthy-refs status to see what is replaced and what is removed.
			conds := []metav1.Condition{
				{Type: conditions.Accepted, Status: metav1.ConditionTrue, Reason: conditions.AcceptedReason, LastTransitionTime: metav1.NewTime(t0)},
				{Type: conditions.Stalled, Status: metav1.ConditionTrue, Reason: conditions.InvalidSpec, LastTransitionTime: metav1.NewTime(t0)},
			}
			if got := Apply(&conds, tt.o, t0.Add(time.Minute)); got != tt.observed {
				t.Errorf("observed = %v, want %v", got, tt.observed)
			}
			for typ, want := range tt.want {
				c := meta.FindStatusCondition(conds, typ)
				got := ""
				if c != nil {
					got = string(c.Status) + "/" + c.Reason
					if !conditions.Allowed(c.Type, string(c.Status), c.Reason) {
						t.Errorf("%s %s/%s is not in the vocabulary", c.Type, c.Status, c.Reason)
					}
				}
				if got != want {
					t.Errorf("%s = %q, want %q", typ, got, want)
				}
			}
			if c := meta.FindStatusCondition(conds, conditions.Accepted); c.Status == metav1.ConditionTrue && !c.LastTransitionTime.Time.Equal(t0) {
				t.Errorf("Accepted stayed True but its transition time moved to %v", c.LastTransitionTime)
			}
		})
	}
}

func TestApplyIsStable(t *testing.T) {
	o := Outcome{Generation: 1, Types: types, Problems: []Problem{{Type: conditions.Ready, Reason: conditions.Conflict, Message: "m", Stalls: true}}}
	var a []metav1.Condition
	Apply(&a, o, time.Unix(100, 0))
	b := append([]metav1.Condition(nil), a...)
	Apply(&b, o, time.Unix(200, 0))
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("second identical reconcile changed %s: %+v -> %+v", a[i].Type, a[i], b[i])
		}
	}
}
