package status

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Patcher remembers an object as it was read, so that the reconcile can change its status freely
// and write it once at the end, only when something changed.
type Patcher[T client.Object] struct {
	before T
	rec    events.EventRecorder
	conds  func(T) []metav1.Condition
}

// NewPatcher snapshots obj. Call it right after reading obj.
func NewPatcher[T client.Object](obj T) *Patcher[T] {
	return &Patcher[T]{before: obj.DeepCopyObject().(T)}
}

// WithEvents makes Patch record the event of a Ready or Stalled transition (see Transition)
// once the new status is written. conds returns the conditions of an object of the kind. A nil
// recorder records nothing. Every kind records its events here, so they all say the same
// things at the same moments.
func (p *Patcher[T]) WithEvents(rec events.EventRecorder, conds func(T) []metav1.Condition) *Patcher[T] {
	p.rec, p.conds = rec, conds
	return p
}

// Changed reports whether obj differs from the snapshot.
func (p *Patcher[T]) Changed(obj T) bool {
	return !equality.Semantic.DeepEqual(p.before, obj)
}

// Patch sends a merge patch of obj's status subresource against the snapshot, or nothing when
// obj is unchanged. An object deleted in the meantime is not an error. The transition event is
// recorded only after a successful write: a failed one is retried, and the retry tells it.
func (p *Patcher[T]) Patch(ctx context.Context, c client.Client, obj T) error {
	if !p.Changed(obj) {
		return nil
	}
	err := c.Status().Patch(ctx, obj, client.MergeFrom(p.before))
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if p.rec != nil && p.conds != nil {
		if ev := Transition(p.conds(p.before), p.conds(obj)); ev != nil {
			p.rec.Eventf(obj, nil, ev.Type, ev.Reason, "Reconcile", "%s", ev.Message)
		}
	}
	return nil
}
