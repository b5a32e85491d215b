package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func TestTransition(t *testing.T) {
	healthy := Outcome{Generation: 1, Types: types, Summary: "ok"}
	stalled := Outcome{Generation: 1, Types: types, Problems: []Problem{{Type: conditions.Ready, Reason: conditions.Conflict, Message: "port 7000", Stalls: true}}}
	missing := Outcome{Generation: 1, Types: types, Problems: []Problem{{Type: conditions.ResolvedRefs, Reason: conditions.RefNotFound, Message: "no sa"}}}
	pending := Outcome{Generation: 1, Types: types, Problems: []Problem{{Type: conditions.Accepted, Reason: conditions.Pending, Message: "no MeshConfig", Pending: true}}}
	failed := Outcome{Generation: 1, Types: types, Err: errors.New("etcd down")}
	recount := healthy
	recount.Summary = "ok, counted again"
	drifted := healthy
	drifted.Info = []Condition{{Type: conditions.PodsInSync, Status: metav1.ConditionFalse, Reason: conditions.Drifted, Message: "2 pods"}}

	conds := func(os ...Outcome) []metav1.Condition {
		var c []metav1.Condition
		for i, o := range os {
			Apply(&c, o, time.Unix(int64(i), 0))
		}
		return c
	}
	tests := []struct {
		name   string
		before []metav1.Condition
		after  Outcome
		want   string // "Type Reason: message"; "" means no event
	}{
		{"first verdict, healthy", nil, healthy, "Normal Ready: ok"},
		{"first verdict, stalled", nil, stalled, "Warning Conflict: port 7000"},
		{"same verdict again", conds(healthy), healthy, ""},
		{"only Ready's message changed", conds(healthy), recount, ""},
		{"only an informational condition changed", conds(healthy), drifted, ""},
		{"healthy to stalled: one event, from Stalled", conds(healthy), stalled, "Warning Conflict: port 7000"},
		{"stalled to healthy", conds(stalled), healthy, "Normal Ready: ok"},
		{"healthy to a missing reference", conds(healthy), missing, "Warning RefNotFound: no sa"},
		{"healthy to pending", conds(healthy), pending, "Normal Progressing: no MeshConfig"},
		{"healthy to an API error", conds(healthy), failed, "Warning ReconcileFailed: etcd down"},
		{"the same API error again", conds(healthy, failed), failed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := append([]metav1.Condition(nil), tt.before...)
			Apply(&after, tt.after, time.Unix(100, 0))
			got := ""
			if ev := Transition(tt.before, after); ev != nil {
				got = fmt.Sprintf("%s %s: %s", ev.Type, ev.Reason, ev.Message)
			}
			if got != tt.want {
				t.Errorf("event %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTransitionTruncatesLongMessages(t *testing.T) {
	var c []metav1.Condition
	Apply(&c, Outcome{Generation: 1, Summary: strings.Repeat("x", 5000)}, time.Unix(1, 0))
	if ev := Transition(nil, c); ev == nil || len(ev.Message) != maxNote {
		t.Fatalf("event %+v, want a message of %d bytes", ev, maxNote)
	}
}

// fakeRecorder keeps what it is given.
type fakeRecorder struct{ got []string }

func (r *fakeRecorder) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	obj := regarding.(client.Object)
	r.got = append(r.got, fmt.Sprintf("%s %s %s/%s %s: %s", eventtype, action, obj.GetNamespace(), obj.GetName(), reason, fmt.Sprintf(note, args...)))
}

// A reconcile that changes Ready records exactly one event, after the write; the next,
// identical reconcile writes nothing and records nothing.
func TestPatcherRecordsTransitionsOnly(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := policyv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	e := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "shop", Generation: 1}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(e).WithStatusSubresource(e).Build()
	rec := &fakeRecorder{}
	ctx := context.Background()
	reconcile := func(o Outcome) {
		t.Helper()
		obj := &policyv1alpha1.Egress{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(e), obj); err != nil {
			t.Fatal(err)
		}
		p := NewPatcher(obj).WithEvents(rec, func(e *policyv1alpha1.Egress) []metav1.Condition { return e.Status.Conditions })
		Apply(&obj.Status.Conditions, o, time.Unix(100, 0))
		if err := p.Patch(ctx, c, obj); err != nil {
			t.Fatal(err)
		}
	}
	stalled := Outcome{Generation: 1, Types: types, Problems: []Problem{{Type: conditions.Ready, Reason: conditions.Conflict, Message: "port 7000", Stalls: true}}}

	reconcile(stalled)
	if len(rec.got) != 1 || rec.got[0] != "Warning Reconcile shop/redis Conflict: port 7000" {
		t.Fatalf("events after the first verdict: %q", rec.got)
	}
	reconcile(stalled)
	if len(rec.got) != 1 {
		t.Fatalf("a no-op resync recorded %q", rec.got[1:])
	}
	reconcile(Outcome{Generation: 1, Types: types, Summary: "ok"})
	if len(rec.got) != 2 || rec.got[1] != "Normal Reconcile shop/redis Ready: ok" {
		t.Fatalf("events after recovery: %q", rec.got)
	}
	if rec.got[0][:len(corev1.EventTypeWarning)] != corev1.EventTypeWarning {
		t.Errorf("first event %q is not a warning", rec.got[0])
	}
}

func TestInfoConditions(t *testing.T) {
	var c []metav1.Condition
	info := Condition{Type: conditions.PodsInSync, Status: metav1.ConditionFalse, Reason: conditions.Drifted, Message: "2 pods"}
	Apply(&c, Outcome{Generation: 1, Summary: "ok", Info: []Condition{info}}, time.Unix(1, 0))
	got := fmt.Sprint(len(c))
	for _, x := range c {
		got += " " + x.Type + "=" + string(x.Status) + "/" + x.Reason
	}
	if got != "2 PodsInSync=False/Drifted Ready=True/Succeeded" {
		t.Fatalf("conditions %s: an informational condition must not change Ready", got)
	}
	Apply(&c, Outcome{Generation: 2, Err: errors.New("timeout")}, time.Unix(2, 0))
	for _, x := range c {
		if x.Type == conditions.PodsInSync && (x.Reason != conditions.Drifted || x.ObservedGeneration != 1) {
			t.Errorf("an error rewrote %+v; it must keep the last verdict", x)
		}
	}
}
