package status

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshkeeper/meshkeeper/api/conditions"
	policyv1alpha1 "github.com/meshkeeper/meshkeeper/api/policy/v1alpha1"
)

func egressClient(t *testing.T, statusSubresource bool, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := policyv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...)
	if statusSubresource {
		b = b.WithStatusSubresource(objs...)
	}
	return b.Build()
}

// A 404 on the status write of an object that exists is a missing status subresource (OSM's
// CRDs), reported as such; it used to be taken for a deleted object and dropped without a word.
func TestPatchTellsMissingSubresourceFromDeletion(t *testing.T) {
	ctx := context.Background()
	e := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "shop", Generation: 1}}
	c := egressClient(t, false, e)
	obj := &policyv1alpha1.Egress{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(e), obj); err != nil {
		t.Fatal(err)
	}
	p := NewPatcher(obj)
	Apply(&obj.Status.Conditions, Outcome{Generation: 1, Types: types, Summary: "ok"}, time.Unix(100, 0))
	err := p.Patch(ctx, c, obj)
	if !errors.Is(err, ErrNoStatusSubresource) {
		t.Fatalf("Patch on a CRD without status subresource = %v, want ErrNoStatusSubresource", err)
	}

	// The same write for an object deleted meanwhile is not an error.
	gone := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: "shop", Generation: 1}}
	Apply(&gone.Status.Conditions, Outcome{Generation: 1, Types: types, Summary: "ok"}, time.Unix(100, 0))
	if err := p.Patch(ctx, egressClient(t, true, e), gone); err != nil {
		t.Fatalf("Patch of a deleted object = %v, want nil", err)
	}
}

// Without a status subresource nothing is written, and events follow the verdicts held in
// memory: a healthy first verdict is silent, a warning is told, then only transitions.
func TestPatcherWithoutSubresource(t *testing.T) {
	ctx := context.Background()
	e := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "shop", Generation: 1}}
	c := egressClient(t, false, e)
	rec := &fakeRecorder{}
	memo := NewMemo()
	reconcile := func(o Outcome) {
		t.Helper()
		obj := &policyv1alpha1.Egress{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(e), obj); err != nil {
			t.Fatal(err)
		}
		p := NewPatcher(obj).WithEvents(rec, func(e *policyv1alpha1.Egress) []metav1.Condition { return e.Status.Conditions }).
			WithoutSubresource(memo)
		Apply(&obj.Status.Conditions, o, time.Unix(100, 0))
		if err := p.Patch(ctx, c, obj); err != nil {
			t.Fatal(err)
		}
	}
	healthy := Outcome{Generation: 1, Types: types, Summary: "ok"}
	stalled := Outcome{Generation: 1, Types: types, Problems: []Problem{{Type: conditions.Ready, Reason: conditions.Conflict, Message: "port 7000", Stalls: true}}}

	reconcile(healthy)
	if len(rec.got) != 0 {
		t.Fatalf("a healthy first verdict recorded %q", rec.got)
	}
	reconcile(healthy)
	reconcile(stalled)
	reconcile(stalled)
	if len(rec.got) != 1 || rec.got[0] != "Warning Reconcile shop/redis Conflict: port 7000" {
		t.Fatalf("events = %q, want one Conflict warning", rec.got)
	}
	reconcile(healthy)
	if len(rec.got) != 2 || rec.got[1] != "Normal Reconcile shop/redis Ready: ok" {
		t.Fatalf("events after recovery = %q", rec.got)
	}
	if got, ok := memo.Conditions(client.ObjectKeyFromObject(e)); !ok || len(got) == 0 {
		t.Error("the memo holds no verdict")
	}

	// After a restart (empty memo) an unhealthy verdict is told again, a healthy one is not.
	memo = NewMemo()
	reconcile(stalled)
	if len(rec.got) != 3 {
		t.Fatalf("an unhealthy first verdict after a restart was not told: %q", rec.got)
	}
	stored := &policyv1alpha1.Egress{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(e), stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Status.Conditions) != 0 {
		t.Errorf("something was written: %+v", stored.Status)
	}
}

// A verdict judged on one version of an object is not written over another: the user's edit
// that landed meanwhile is judged first. Nothing is written and no event is recorded.
func TestPatchRefusesAStaleVerdict(t *testing.T) {
	ctx := context.Background()
	e := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "shop", Generation: 1}}
	c := egressClient(t, true, e)
	obj := &policyv1alpha1.Egress{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(e), obj); err != nil {
		t.Fatal(err)
	}
	rec := &fakeRecorder{}
	p := NewPatcher(obj).WithEvents(rec, func(e *policyv1alpha1.Egress) []metav1.Condition { return e.Status.Conditions })

	edited := obj.DeepCopy()
	edited.Spec.Sources = []policyv1alpha1.EgressSourceSpec{{Kind: "ServiceAccount", Name: "web", Namespace: "shop"}}
	if err := c.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}

	Apply(&obj.Status.Conditions, Outcome{Generation: 1, Types: types, Summary: "ok"}, time.Unix(100, 0))
	if err := p.Patch(ctx, c, obj); !errors.Is(err, ErrStale) {
		t.Fatalf("Patch of a verdict on a replaced version = %v, want ErrStale", err)
	}
	stored := &policyv1alpha1.Egress{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(e), stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Status.Conditions) != 0 || len(rec.got) != 0 {
		t.Errorf("a stale verdict was written (%+v) or told (%q)", stored.Status.Conditions, rec.got)
	}
}
