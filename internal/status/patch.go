package status

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrNoStatusSubresource is returned when the API server answers 404 to a status write for an
// object that exists: its CRD has no status subresource (OSM's MeshConfig and Egress CRDs). It is
// never read as "the object was deleted".
var ErrNoStatusSubresource = errors.New("the CRD has no status subresource")

// ErrStale is returned when the object changed between the read a verdict was judged on and the
// verdict's write: nothing was written, and the object needs another reconcile, from a cache that
// shows the change. Callers requeue it rather than report a failure.
var ErrStale = errors.New("the object changed while it was judged")

// Patcher remembers an object as it was read, so that the reconcile can change its status freely
// and write it once at the end, only when something changed.
type Patcher[T client.Object] struct {
	before T
	rec    events.EventRecorder
	conds  func(T) []metav1.Condition
	memo   *Memo
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

// WithoutSubresource is for kinds whose CRD cannot store a status: Patch then writes nothing and
// the verdict lives in memo, which is what transitions (and so events) are judged against.
// A nil memo keeps the normal status write.
func (p *Patcher[T]) WithoutSubresource(memo *Memo) *Patcher[T] {
	p.memo = memo
	return p
}

// Changed reports whether obj differs from the snapshot.
func (p *Patcher[T]) Changed(obj T) bool {
	return !equality.Semantic.DeepEqual(p.before, obj)
}

// Patch sends a merge patch of obj's status subresource against the snapshot, or nothing when
// obj is unchanged. The patch carries the snapshot's resourceVersion: a verdict judged on one
// version never lands on another (a spec edited while it was judged would otherwise be stored
// with the previous spec's verdict, and the transition judged against a status that is no longer
// there); the object changed, so it is judged again (ErrStale). An object deleted in the meantime is not an error; a 404 for an object that
// still exists is ErrNoStatusSubresource. The transition event is recorded only after a
// successful write: a failed one is retried, and the retry tells it.
func (p *Patcher[T]) Patch(ctx context.Context, c client.Client, obj T) error {
	if p.memo != nil {
		p.remember(obj)
		return nil
	}
	if !p.Changed(obj) {
		return nil
	}
	err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(p.before, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return p.notFound(ctx, c, obj, err)
	}
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	if err != nil {
		return err
	}
	if p.rec != nil && p.conds != nil {
		p.record(obj, Transition(p.conds(p.before), p.conds(obj)))
	}
	return nil
}

// notFound tells a deleted object from a missing status subresource: both answer 404.
func (p *Patcher[T]) notFound(ctx context.Context, c client.Client, obj T, err error) error {
	fresh := obj.DeepCopyObject().(T)
	switch gerr := c.Get(ctx, client.ObjectKeyFromObject(obj), fresh); {
	case apierrors.IsNotFound(gerr):
		return nil
	case gerr != nil:
		return errors.Join(err, gerr)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return fmt.Errorf("writing the status of %s %s: %w (the API server answered 404 for an object that exists)",
		gvk.Kind, client.ObjectKeyFromObject(obj), ErrNoStatusSubresource)
}

// remember judges the transition against the last verdict held in memory, records its event and
// keeps the new verdict. The first verdict after a start is told only when it is not healthy, so
// a restart does not repeat one Ready event per object.
func (p *Patcher[T]) remember(obj T) {
	if p.conds == nil {
		return
	}
	now := p.conds(obj)
	last, seen := p.memo.swap(client.ObjectKeyFromObject(obj), now)
	ev := Transition(last, now)
	if !seen && ev != nil && ev.Type != corev1.EventTypeWarning {
		ev = nil
	}
	p.record(obj, ev)
}

func (p *Patcher[T]) record(obj T, ev *Event) {
	if p.rec != nil && ev != nil {
		p.rec.Eventf(obj, nil, ev.Type, ev.Reason, "Reconcile", "%s", ev.Message)
	}
}

// Memo holds the last verdict of each object of a kind whose CRD cannot store a status.
type Memo struct {
	mu   sync.Mutex
	last map[client.ObjectKey][]metav1.Condition
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{last: map[client.ObjectKey][]metav1.Condition{}} }

// Forget drops an object's verdict, once the object is deleted.
func (m *Memo) Forget(key client.ObjectKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, key)
}

// Conditions returns the last verdict held for key.
func (m *Memo) Conditions(key client.ObjectKey) ([]metav1.Condition, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.last[key]
	return c, ok
}

func (m *Memo) swap(key client.ObjectKey, now []metav1.Condition) ([]metav1.Condition, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.last[key]
	m.last[key] = now
	return last, ok
}
