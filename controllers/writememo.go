package controllers

import (
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	"github.com/meshkeeper/meshkeeper/internal/drift"
)

// writeMemo remembers, per pod, the conditions last written, the resourceVersion of the pod
// the write was computed from and the one the write produced. The cache shows our own write only
// after its watch event arrives; a reconcile in between would otherwise see the old conditions
// and write the same verdict again (and emit its events again). That includes a version written
// by someone else before our write landed (a kubelet's status update): it is older than our
// write, so it cannot show it. Entries go away as soon as the cache reaches our write.
type writeMemo struct {
	mu sync.Mutex
	m  map[types.NamespacedName]memoEntry
}

type memoEntry struct {
	basedOn, wrote string
	conds          []corev1.PodCondition
}

func newWriteMemo() *writeMemo { return &writeMemo{m: map[types.NamespacedName]memoEntry{}} }

// alreadyWritten reports whether conds were written and the cache does not show that write
// yet: it holds the version the write was computed from, or one older than the write (compared
// as the API server orders resourceVersions). Any other answer drops the entry: the cache has
// reached the write, so it is the truth again.
func (w *writeMemo) alreadyWritten(key types.NamespacedName, rv string, conds []corev1.PodCondition) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok {
		return false
	}
	if slices.EqualFunc(e.conds, drift.OwnedConditions(conds), sameVerdict) {
		if e.basedOn == rv {
			return true
		}
		if cmp, err := resourceversion.CompareResourceVersion(rv, e.wrote); err == nil && cmp < 0 {
			return true
		}
	}
	delete(w.m, key)
	return false
}

// record remembers a write computed from the version basedOn that produced the version wrote
// (empty when unknown: then only basedOn counts).
func (w *writeMemo) record(key types.NamespacedName, basedOn, wrote string, conds []corev1.PodCondition) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m[key] = memoEntry{basedOn: basedOn, wrote: wrote, conds: drift.OwnedConditions(conds)}
}

// echo reports whether conds, seen on the cached pod, are our last write arriving back through
// the watch, and drops the entry: the cache has reached the write. The informer updates its
// store before it tells the handlers, so a reconcile after this one reads the write too.
func (w *writeMemo) echo(key types.NamespacedName, conds []corev1.PodCondition) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.m[key]
	if !ok || !slices.EqualFunc(e.conds, drift.OwnedConditions(conds), sameVerdict) {
		return false
	}
	delete(w.m, key)
	return true
}

func (w *writeMemo) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

func sameVerdict(a, b corev1.PodCondition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message
}
