package status

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Patcher remembers an object as it was read, so that the reconcile can change its status freely
// and write it once at the end, only when something changed.
type Patcher[T client.Object] struct {
	before T
}

// NewPatcher snapshots obj. Call it right after reading obj.
func NewPatcher[T client.Object](obj T) *Patcher[T] {
	return &Patcher[T]{before: obj.DeepCopyObject().(T)}
}

// Changed reports whether obj differs from the snapshot.
func (p *Patcher[T]) Changed(obj T) bool {
	return !equality.Semantic.DeepEqual(p.before, obj)
}

// Patch sends a merge patch of obj's status subresource against the snapshot, or nothing when
// obj is unchanged. An object deleted in the meantime is not an error.
func (p *Patcher[T]) Patch(ctx context.Context, c client.Client, obj T) error {
	if !p.Changed(obj) {
		return nil
	}
	return client.IgnoreNotFound(c.Status().Patch(ctx, obj, client.MergeFrom(p.before)))
}
